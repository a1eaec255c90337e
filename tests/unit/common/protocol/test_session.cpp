#include "common/protocol/session.hpp"
#include "tests/unit/allocation_failure.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>

namespace echolab {
namespace {

constexpr std::string_view kGetResponse =
    "HTTP/1.1 200 OK\r\nServer: echolab\r\nContent-Type: text/plain\r\nContent-Length: "
    "13\r\n\r\nHello, World!";

ProtocolConfig config_with(ProtocolMode mode = ProtocolMode::detect, bool faults = false) {
  ProtocolConfig config;
  config.mode = mode;
  config.fault_injection = faults;
  return config;
}

// Feeds `input` in pieces of `step` bytes and returns everything the session answered.
struct Exchange {
  std::string output;
  std::size_t requests = 0;
  std::vector<int> errors;
  std::vector<FaultAction> faults;
  bool closed = false;
};

Exchange converse(Session& session, std::string_view input, std::size_t step = 0) {
  Exchange result;
  if (step == 0) {
    step = input.empty() ? 1 : input.size();
  }
  for (std::size_t at = 0; at < input.size(); at += step) {
    const std::string_view piece = input.substr(at, step);
    FeedResult fed = session.feed(std::span<const char>(piece.data(), piece.size()));
    result.requests += fed.requests;
    result.errors.insert(result.errors.end(), fed.error_statuses.begin(), fed.error_statuses.end());
    result.faults.insert(result.faults.end(), fed.faults.begin(), fed.faults.end());
    result.output += session.output();
    session.output_sent(session.output().size());
  }
  result.closed = session.close_after_flush();
  return result;
}

Exchange converse(std::string_view input, const ProtocolConfig& config = config_with(),
                  std::size_t step = 0) {
  Session session(config);
  return converse(session, input, step);
}

std::string post(std::string_view body, std::string_view extra = {}) {
  return "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n" + std::string(extra) + "\r\n" + std::string(body);
}

std::string status_line(std::string_view output) {
  return std::string(output.substr(0, output.find("\r\n")));
}

TEST(SessionHttp, GetAnyPathAnswersFixedBody) {
  const Exchange result = converse("GET /any/path?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(result.output, kGetResponse);
  EXPECT_EQ(result.requests, 1u);
  EXPECT_FALSE(result.closed);
}

TEST(SessionHttp, PostAndPutEchoTheBody) {
  EXPECT_TRUE(converse(post("hello")).output.ends_with("Content-Length: 5\r\n\r\nhello"));
  const Exchange put = converse("PUT / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_TRUE(put.output.ends_with("\r\n\r\nabc"));
  EXPECT_EQ(status_line(put.output), "HTTP/1.1 200 OK");
}

TEST(SessionHttp, EchoesBinaryBodiesWithNulBytes) {
  const std::string body("a\0b\xff\x01", 5);
  EXPECT_TRUE(converse(post(body)).output.ends_with("\r\n\r\n" + body));
}

TEST(SessionHttp, ChunkedBodyIsDecodedAndEchoed) {
  const Exchange result = converse(
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
      "world\r\n0\r\n\r\n");
  EXPECT_TRUE(result.output.ends_with("Content-Length: 11\r\n\r\nhello world"));
}

TEST(SessionHttp, HeadAnswersHeadersOnly) {
  const Exchange result = converse("HEAD / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(result.output.ends_with("Content-Length: 13\r\n\r\n"));
}

TEST(SessionHttp, OtherMethodsGet405AndKeepTheConnection) {
  const Exchange result = converse(
      "DELETE / HTTP/1.1\r\n\r\n"
      "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_line(result.output), "HTTP/1.1 405 Method Not Allowed");
  EXPECT_NE(result.output.find("Allow: GET, HEAD, POST, PUT"), std::string::npos);
  EXPECT_TRUE(result.output.ends_with(kGetResponse));
  EXPECT_EQ(result.errors, std::vector<int>{405});
  EXPECT_FALSE(result.closed);
}

TEST(SessionHttp, EveryRequestFedOneByteAtATime) {
  const std::string input =
      "GET / HTTP/1.1\r\n\r\n" + post("byte by byte") +
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  const Exchange whole = converse(input);
  const Exchange bytewise = converse(input, config_with(), 1);
  EXPECT_EQ(bytewise.output, whole.output);
  EXPECT_EQ(bytewise.requests, 3u);
  EXPECT_TRUE(bytewise.output.ends_with("\r\n\r\nabc"));
}

TEST(SessionHttp, SixteenPipelinedRequestsInOneBuffer) {
  std::string input;
  std::string expected;
  for (int i = 0; i < 16; ++i) {
    input += "GET /p" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
    expected += kGetResponse;
  }
  const Exchange result = converse(input);
  EXPECT_EQ(result.requests, 16u);
  EXPECT_EQ(result.output, expected);
}

TEST(SessionHttp, PipelinedRequestSplitAcrossReads) {
  const std::string input = post("first") + post("second");
  for (std::size_t step : {3u, 7u, 50u}) {
    const Exchange result = converse(input, config_with(), step);
    EXPECT_EQ(result.requests, 2u) << "step " << step;
    EXPECT_TRUE(result.output.ends_with("second")) << "step " << step;
  }
}

TEST(SessionHttp, Http10ClosesUnlessKeepAliveIsAsked) {
  const Exchange plain = converse("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(plain.requests, 1u);
  EXPECT_TRUE(plain.closed);
  EXPECT_NE(plain.output.find("Connection: close"), std::string::npos);

  const Exchange kept = converse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_FALSE(kept.closed);
  EXPECT_NE(kept.output.find("Connection: keep-alive"), std::string::npos);
}

TEST(SessionHttp, ConnectionCloseIsHonouredAndLaterBytesDropped) {
  const Exchange result =
      converse("GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(result.requests, 1u);
  EXPECT_TRUE(result.closed);
}

TEST(SessionHttp, TheNthRequestOfTheCapSaysCloseAndIsTheLast) {
  ProtocolConfig config = config_with();
  config.limits.max_requests_per_connection = 3;
  std::string input;
  for (int i = 0; i < 4; ++i) {
    input += "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  Session session(config);
  const Exchange first_two = converse(session, input.substr(0, input.size() / 2));
  EXPECT_EQ(first_two.requests, 2u);
  EXPECT_FALSE(first_two.closed);
  EXPECT_EQ(first_two.output.find("Connection: close"), std::string::npos);
  const Exchange rest = converse(session, input.substr(input.size() / 2));
  EXPECT_EQ(rest.requests, 1u);  // the fourth is dropped: the third said close
  EXPECT_TRUE(rest.closed);
  EXPECT_NE(rest.output.find("Connection: close"), std::string::npos);
}

TEST(SessionHttp, NoCapKeepsTheConnectionAlive) {
  ProtocolConfig config = config_with();
  config.limits.max_requests_per_connection = 0;
  std::string input;
  for (int i = 0; i < 1'100; ++i) {
    input += "GET / HTTP/1.1\r\n\r\n";
  }
  const Exchange result = converse(input, config);
  EXPECT_EQ(result.requests, 1'100u);
  EXPECT_FALSE(result.closed);
}

TEST(SessionHttp, AfterTheEndOfKeepAliveTheRequestInFlightIsTheLast) {
  Session session(config_with());
  converse(session, "GET / HTTP/1.1\r\nHo");
  session.end_keep_alive();
  const Exchange result = converse(session, "st: x\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(result.requests, 1u);
  EXPECT_TRUE(result.closed);
  EXPECT_NE(result.output.find("Connection: close"), std::string::npos);
}

TEST(SessionHttp, EndOfKeepAliveBeforeDetectionReachesTheParser) {
  Session session(config_with());
  session.end_keep_alive();
  const Exchange result = converse(session, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(result.closed);
}

TEST(SessionHttp, ExpectContinueGets100BeforeTheBody) {
  Session session(config_with());
  const Exchange head =
      converse(session, "POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(head.output, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_TRUE(converse(session, "ok").output.ends_with("\r\n\r\nok"));
}

TEST(SessionHttp, MalformedRequestGets400AndCloses) {
  const Exchange result = converse("GET / HTTP/1.1\r\nBad Header\r\n\r\n");
  EXPECT_EQ(status_line(result.output), "HTTP/1.1 400 Bad Request");
  EXPECT_NE(result.output.find("Connection: close"), std::string::npos);
  EXPECT_EQ(result.errors, std::vector<int>{400});
  EXPECT_TRUE(result.closed);
}

TEST(SessionHttp, BadBytesAfterAGoodRequest) {
  const Exchange result = converse("GET / HTTP/1.1\r\n\r\n\x01\x02garbage\r\n\r\n");
  EXPECT_TRUE(result.output.starts_with(kGetResponse));
  EXPECT_NE(result.output.find("HTTP/1.1 400 Bad Request", kGetResponse.size()), std::string::npos);
  EXPECT_EQ(result.requests, 2u);
  EXPECT_TRUE(result.closed);
}

// A request whose header section (request line through the blank line) is `size` bytes.
std::string request_with_header_section(std::size_t size) {
  const std::string head = "GET / HTTP/1.1\r\nX-Pad: ";
  const std::string tail = "\r\n\r\n";
  return head + std::string(size - head.size() - tail.size(), 'a') + tail;
}

TEST(SessionHttpLimits, HeaderSectionAtTheLimitPassesOneMoreGets431) {
  ProtocolConfig config = config_with();
  config.limits.max_header_bytes = 1024;
  EXPECT_EQ(status_line(converse(request_with_header_section(1024), config).output),
            "HTTP/1.1 200 OK");
  const Exchange over = converse(request_with_header_section(1025), config);
  EXPECT_EQ(status_line(over.output), "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_TRUE(over.closed);
  // Byte by byte, the limit is caught before the header section ends.
  const Exchange streamed = converse(request_with_header_section(1025), config, 1);
  EXPECT_EQ(streamed.errors, std::vector<int>{431});
}

TEST(SessionHttpLimits, DefaultHeaderLimitIs8KiB) {
  EXPECT_EQ(converse(request_with_header_section(8192)).errors.size(), 0u);
  EXPECT_EQ(converse(request_with_header_section(8193)).errors, std::vector<int>{431});
}

TEST(SessionHttpLimits, BodyAtTheLimitPassesOneMoreGets413) {
  ProtocolConfig config = config_with();
  config.limits.max_body_bytes = 100;
  EXPECT_EQ(status_line(converse(post(std::string(100, 'b')), config).output), "HTTP/1.1 200 OK");
  const Exchange over = converse(post(std::string(101, 'b')), config);
  EXPECT_EQ(status_line(over.output), "HTTP/1.1 413 Content Too Large");
  EXPECT_TRUE(over.closed);
}

TEST(SessionHttpLimits, ChunkedBodyOverTheLimitGets413) {
  ProtocolConfig config = config_with();
  config.limits.max_body_bytes = 8;
  const std::string at_limit =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n";
  EXPECT_TRUE(converse(at_limit, config).errors.empty());
  const std::string over =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n5\r\nefghi\r\n0\r\n\r\n";
  EXPECT_EQ(converse(over, config).errors, std::vector<int>{413});
}

TEST(SessionHttpLimits, DefaultBodyLimitIs1MiB) {
  EXPECT_TRUE(converse(post(std::string(1 << 20, 'x'))).errors.empty());
  EXPECT_EQ(converse(post(std::string((1 << 20) + 1, 'x'))).errors, std::vector<int>{413});
}

TEST(SessionFaults, OffByDefaultAnswer404SayingSo) {
  for (const char* path : {"/crash", "/sleep?ms=5", "/burn?us=5"}) {
    const Exchange result = converse("GET " + std::string(path) + " HTTP/1.1\r\n\r\n");
    EXPECT_EQ(status_line(result.output), "HTTP/1.1 404 Not Found") << path;
    EXPECT_NE(result.output.find("fault injection is off"), std::string::npos);
    EXPECT_TRUE(result.faults.empty());
    EXPECT_FALSE(result.closed);
  }
}

TEST(SessionFaults, EnabledTheyAreReportedAsActions) {
  const ProtocolConfig faults_on = config_with(ProtocolMode::detect, true);
  const Exchange result = converse(
      "GET /sleep?ms=20 HTTP/1.1\r\n\r\nGET /burn?us=300 HTTP/1.1\r\n\r\nGET /crash "
      "HTTP/1.1\r\n\r\n",
      faults_on);
  ASSERT_EQ(result.faults.size(), 3u);
  EXPECT_EQ(result.faults[0],
            (FaultAction{FaultAction::Kind::sleep, std::chrono::milliseconds(20)}));
  EXPECT_EQ(result.faults[1],
            (FaultAction{FaultAction::Kind::burn, std::chrono::microseconds(300)}));
  EXPECT_EQ(result.faults[2].kind, FaultAction::Kind::crash);
}

TEST(SessionFaults, BadParameterGets400AndKeepsTheConnection) {
  const Exchange result =
      converse("GET /sleep?ms=abc HTTP/1.1\r\n\r\n", config_with(ProtocolMode::detect, true));
  EXPECT_EQ(status_line(result.output), "HTTP/1.1 400 Bad Request");
  EXPECT_TRUE(result.faults.empty());
  EXPECT_FALSE(result.closed);
}

TEST(SessionMemoryRoutes, OffByDefaultAnswer404) {
  for (const char* path : {"/leak?prefix=canary0042", "/corrupt"}) {
    const Exchange result = converse("GET " + std::string(path) + " HTTP/1.1\r\n\r\n");
    EXPECT_EQ(status_line(result.output), "HTTP/1.1 404 Not Found") << path;
  }
}

std::string fake_scan(std::string_view prefix) { return "scanned for " + std::string(prefix); }

TEST(SessionMemoryRoutes, LeakAnswersWhatTheScannerReturns) {
  Session session(config_with(ProtocolMode::detect, true), fake_scan);
  const Exchange result = converse(session, "GET /leak?prefix=canary0042 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_line(result.output), "HTTP/1.1 200 OK");
  EXPECT_TRUE(result.output.ends_with("\r\n\r\nscanned for canary0042"));
  EXPECT_TRUE(result.faults.empty());
}

TEST(SessionMemoryRoutes, LeakWithoutAScannerIs501AndABadPrefix400) {
  const ProtocolConfig faults_on = config_with(ProtocolMode::detect, true);
  EXPECT_EQ(status_line(converse("GET /leak?prefix=canary0042 HTTP/1.1\r\n\r\n", faults_on).output),
            "HTTP/1.1 501 Not Implemented");
  const Exchange bad = converse("GET /leak?prefix=x HTTP/1.1\r\n\r\n", faults_on);
  EXPECT_EQ(status_line(bad.output), "HTTP/1.1 400 Bad Request");
  EXPECT_FALSE(bad.closed);
}

// The greeting belongs to the process, so the corruption runs in a child of its own, where it
// must show on every other session of that process (and the tests here keep theirs intact).
TEST(SessionMemoryRoutes, CorruptChangesTheGreetingOfEverySessionOfTheProcess) {
  EXPECT_EXIT(
      {
        Session bystander(config_with());
        const bool intact_before =
            converse(bystander, "GET / HTTP/1.1\r\n\r\n").output == kGetResponse;
        converse("GET /corrupt HTTP/1.1\r\n\r\n", config_with(ProtocolMode::detect, true));
        const std::string after = converse(bystander, "GET / HTTP/1.1\r\n\r\n").output;
        const bool corrupted = after.ends_with("\r\n\r\nHeap smashed!");
        std::exit(intact_before && corrupted ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(converse("GET / HTTP/1.1\r\n\r\n").output, kGetResponse);
}

TEST(SessionRaw, EchoesBytesUnchangedIncludingNul) {
  const std::string bytes("\x00\x01raw\xff\n", 7);
  const Exchange result = converse(bytes);
  EXPECT_EQ(result.output, bytes);
}

TEST(SessionRaw, DetectionWaitsForAmbiguousPrefixes) {
  Session session(config_with());
  EXPECT_EQ(converse(session, "GE").output, "");
  EXPECT_EQ(session.protocol(), Protocol::undecided);
  EXPECT_EQ(converse(session, "X marks").output, "GEX marks");
  EXPECT_EQ(session.protocol(), Protocol::raw);
}

TEST(SessionRaw, DetectionByteByByteStillFindsHttp) {
  const Exchange result = converse("GET / HTTP/1.1\r\n\r\n", config_with(), 1);
  EXPECT_EQ(result.output, kGetResponse);
}

TEST(SessionRaw, ForcedRawEchoesHttpLookingBytes) {
  const std::string request = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(converse(request, config_with(ProtocolMode::raw)).output, request);
}

TEST(SessionRaw, ForcedHttpRejectsRawBytes) {
  EXPECT_EQ(converse("hello\n", config_with(ProtocolMode::http)).errors, std::vector<int>{400});
}

TEST(SessionRaw, ControlLinesOnlyWithFaultInjection) {
  const std::string lines = "data\n/sleep?ms=7\r\n/crash extra\n/burn?us=9\n";
  EXPECT_TRUE(converse(lines).faults.empty());
  const Exchange on = converse(lines, config_with(ProtocolMode::detect, true), 3);
  EXPECT_EQ(on.output, lines);
  ASSERT_EQ(on.faults.size(), 2u);
  EXPECT_EQ(on.faults[0].duration, std::chrono::milliseconds(7));
  EXPECT_EQ(on.faults[1].duration, std::chrono::microseconds(9));
}

TEST(SessionState, IdleOnlyBetweenRequests) {
  Session session(config_with());
  EXPECT_TRUE(session.idle());
  converse(session, "GET / HT");
  EXPECT_FALSE(session.idle());
  converse(session, "TP/1.1\r\n\r\n");
  EXPECT_TRUE(session.idle());
}

TEST(SessionState, PhaseFollowsTheRequest) {
  Session session(config_with());
  EXPECT_EQ(session.phase(), RequestPhase::idle);
  converse(session, "POST / HTTP/1.1\r\nContent-Length: 4\r\n");
  EXPECT_EQ(session.phase(), RequestPhase::header);
  converse(session, "\r\nab");
  EXPECT_EQ(session.phase(), RequestPhase::body);
  converse(session, "cd");
  EXPECT_EQ(session.phase(), RequestPhase::idle);
}

TEST(SessionState, ATimeOutInARequestAnswers408AndCloses) {
  Session session(config_with());
  converse(session, "GET / HTTP/1.1\r\nHost: x\r\n");
  const FeedResult result = session.time_out();
  EXPECT_EQ(result.error_statuses, std::vector<int>{408});
  EXPECT_EQ(status_line(session.output()), "HTTP/1.1 408 Request Timeout");
  EXPECT_TRUE(session.close_after_flush());
}

TEST(SessionState, ATimeOutBetweenRequestsClosesSilently) {
  Session session(config_with());
  converse(session, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(session.time_out().error_statuses.empty());
  EXPECT_TRUE(session.output().empty());
  EXPECT_TRUE(session.close_after_flush());
}

// The parser keeps a reference to the configuration: a moved Session must still parse.
TEST(SessionState, AMovedSessionKeepsParsing) {
  ProtocolConfig config = config_with();
  config.limits.max_body_bytes = 3;
  auto first = std::make_unique<Session>(config);
  converse(*first, "GET / HTTP/1.1\r\n");
  Session moved(std::move(*first));
  first.reset();
  const Exchange rest = converse(moved, "\r\n" + post("abcd"));
  EXPECT_EQ(rest.errors, std::vector<int>{413});
  EXPECT_EQ(rest.requests, 2u);
}

// After a large request the buffers it grew are given back; an idle keep-alive connection
// holds only its base size.
TEST(SessionState, BuffersShrinkBackAfterALargeBody) {
  Session session(config_with());
  const std::string body(std::size_t{512} * 1024, 'b');
  const Exchange exchange = converse(session, post(body), std::size_t{16} * 1024);
  EXPECT_EQ(exchange.requests, 1u);
  EXPECT_FALSE(exchange.closed);
  EXPECT_LE(session.output().capacity(), 16u * 1024);
  EXPECT_TRUE(session.idle());
}

TEST(SessionHttpLimits, ChunkExtensionsCountAgainstTheBody) {
  ProtocolConfig config = config_with();
  config.limits.max_body_bytes = 64;
  config.limits.max_header_bytes = 256;
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string endless_extension = "1;ext=" + std::string(4096, 'a');
  const Exchange result = converse(head + endless_extension, config, 100);
  EXPECT_EQ(result.errors, std::vector<int>{413});
  EXPECT_TRUE(result.closed);
}

TEST(SessionHttpLimits, LeadingZerosOfAChunkSizeCannotStreamForever) {
  ProtocolConfig config = config_with();
  config.limits.max_body_bytes = 64;
  config.limits.max_header_bytes = 256;
  const std::string zeros =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(8192, '0');
  const Exchange result = converse(zeros, config, 512);
  EXPECT_EQ(result.errors, std::vector<int>{413});
}

TEST(SessionHttpLimits, TrailersCountAgainstTheHeaderLimit) {
  ProtocolConfig config = config_with();
  config.limits.max_header_bytes = 128;
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n";
  const Exchange small = converse(head + "X-t: 1\r\n\r\n", config);
  EXPECT_TRUE(small.errors.empty());
  EXPECT_EQ(status_line(small.output), "HTTP/1.1 200 OK");
  std::string big = head;
  for (int i = 0; i < 40; ++i) {
    big += "X-trailer: value\r\n";
  }
  const Exchange over = converse(big + "\r\n", config);
  EXPECT_EQ(over.errors, std::vector<int>{431});
}

// Out of memory inside a parser callback (C code calling C++) is answered 503 through the
// parser's own error path: the answers queued before it in the same read are still sent.
FeedResult feed_with_large_allocations_failing(Session& session, const std::string& input) {
  const LargeAllocationsFail out_of_memory(2048);
  return session.feed(std::span<const char>(input.data(), input.size()));
}

TEST(SessionOutOfMemory, InTheUrlAnswers503AfterTheAnswersBeforeIt) {
  if (!kAllocationsCanFail) {
    GTEST_SKIP() << "no replaced operator new under ThreadSanitizer";
  }
  Session session(config_with());
  const std::string input =
      "GET / HTTP/1.1\r\n\r\nGET /" + std::string(4000, 'a') + " HTTP/1.1\r\n\r\n";
  const FeedResult result = feed_with_large_allocations_failing(session, input);
  EXPECT_EQ(result.requests, 2u);
  EXPECT_EQ(result.error_statuses, std::vector<int>{503});
  EXPECT_TRUE(session.output().starts_with(kGetResponse));
  EXPECT_EQ(status_line(session.output().substr(kGetResponse.size())),
            "HTTP/1.1 503 Service Unavailable");
  EXPECT_TRUE(session.close_after_flush());
}

TEST(SessionOutOfMemory, InTheBodyAnswers503AfterTheAnswersBeforeIt) {
  if (!kAllocationsCanFail) {
    GTEST_SKIP() << "no replaced operator new under ThreadSanitizer";
  }
  Session session(config_with());
  const std::string input = "GET / HTTP/1.1\r\n\r\n" + post(std::string(4000, 'b'));
  const FeedResult result = feed_with_large_allocations_failing(session, input);
  EXPECT_EQ(result.error_statuses, std::vector<int>{503});
  EXPECT_TRUE(session.output().starts_with(kGetResponse));
  EXPECT_TRUE(session.close_after_flush());
}

}  // namespace
}  // namespace echolab
