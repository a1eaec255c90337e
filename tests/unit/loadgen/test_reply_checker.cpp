#include "loadgen/reply_checker.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace echolab::load {
namespace {

// Larger than any reply of these tests.
constexpr std::size_t kNoSizeLimit = std::size_t{1} << 30;

constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";

ReplyScan scan(ReplyChecker& checker, std::string_view bytes) {
  return checker.scan(std::span<const char>(bytes.data(), bytes.size()));
}

// Feeds one byte at a time and adds up the replies, as the worst-case fragmentation.
std::size_t replies_byte_by_byte(ReplyChecker& checker, std::string_view bytes) {
  std::size_t replies = 0;
  for (const char c : bytes) {
    const ReplyScan result = scan(checker, std::string_view(&c, 1));
    EXPECT_FALSE(result.bad) << result.problem;
    replies += result.replies;
  }
  return replies;
}

std::string http_reply(std::string_view body, std::string_view extra_headers = "") {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra_headers) + "\r\n" + std::string(body);
}

TEST(HttpReplyChecker, CountsPipelinedRepliesInOneRead) {
  const auto checker = make_reply_checker(WireProtocol::http, "", kNoSizeLimit);
  const std::string three = std::string(kOk) + std::string(kOk) + std::string(kOk);
  const ReplyScan result = scan(*checker, three);
  EXPECT_FALSE(result.bad) << result.problem;
  EXPECT_EQ(result.replies, 3u);
  EXPECT_FALSE(result.server_closes);
}

TEST(HttpReplyChecker, CountsRepliesSplitAcrossReads) {
  const auto checker = make_reply_checker(WireProtocol::http, "", kNoSizeLimit);
  EXPECT_EQ(replies_byte_by_byte(*checker, std::string(kOk) + std::string(kOk)), 2u);
}

TEST(HttpReplyChecker, StatusOtherThan200IsBad) {
  const auto checker = make_reply_checker(WireProtocol::http, "", kNoSizeLimit);
  const ReplyScan result =
      scan(*checker, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(result.bad);
  EXPECT_EQ(result.replies, 0u);
  EXPECT_NE(result.problem.find("503"), std::string::npos) << result.problem;
}

TEST(HttpReplyChecker, BrokenFramingIsBad) {
  const auto checker = make_reply_checker(WireProtocol::http, "", kNoSizeLimit);
  EXPECT_TRUE(scan(*checker, "HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\n").bad);
  checker->restart();
  EXPECT_TRUE(scan(*checker, "SSH-2.0-OpenSSH_9.2\r\n").bad);
}

TEST(HttpReplyChecker, PostEchoMustCarryThePayloadBack) {
  const std::string payload = "abcdefghij\n";
  const auto checker = make_reply_checker(WireProtocol::http, payload, kNoSizeLimit);
  const ReplyScan good = scan(*checker, http_reply(payload));
  EXPECT_FALSE(good.bad) << good.problem;
  EXPECT_EQ(good.replies, 1u);

  std::string flipped = payload;
  flipped[4] ^= 1;
  const ReplyScan wrong = scan(*checker, http_reply(flipped));
  EXPECT_TRUE(wrong.bad);
  EXPECT_EQ(wrong.replies, 0u);

  checker->restart();
  EXPECT_TRUE(scan(*checker, http_reply(payload.substr(0, 5))).bad);
  checker->restart();
  EXPECT_TRUE(scan(*checker, http_reply(payload + "x")).bad);
}

TEST(HttpReplyChecker, ChunkedEchoIsReassembled) {
  const auto checker = make_reply_checker(WireProtocol::http, "hello world", kNoSizeLimit);
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  EXPECT_EQ(replies_byte_by_byte(*checker, chunked), 1u);
}

TEST(HttpReplyChecker, ConnectionCloseIsReported) {
  const auto checker = make_reply_checker(WireProtocol::http, "", kNoSizeLimit);
  const ReplyScan result = scan(*checker, http_reply("bye", "Connection: close\r\n"));
  EXPECT_EQ(result.replies, 1u);
  EXPECT_TRUE(result.server_closes);
}

TEST(HttpReplyChecker, BodyEndingWithTheConnectionCompletesAtEnd) {
  const auto checker = make_reply_checker(WireProtocol::http, "", kNoSizeLimit);
  const ReplyScan body = scan(*checker, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome body");
  EXPECT_FALSE(body.bad);
  EXPECT_EQ(body.replies, 0u);
  EXPECT_EQ(checker->scan_end().replies, 1u);
}

TEST(HttpReplyChecker, RestartDropsAPartialReply) {
  const auto checker = make_reply_checker(WireProtocol::http, "", kNoSizeLimit);
  scan(*checker, "HTTP/1.1 200 OK\r\nContent-Len");
  checker->restart();
  const ReplyScan result = scan(*checker, kOk);
  EXPECT_FALSE(result.bad) << result.problem;
  EXPECT_EQ(result.replies, 1u);
}

TEST(HttpReplyChecker, AReplyOfExactlyTheLimitPassesOneByteMoreIsCut) {
  const std::string reply = http_reply("0123456789");
  const auto fits = make_reply_checker(WireProtocol::http, "", reply.size());
  EXPECT_EQ(replies_byte_by_byte(*fits, reply + reply), 2u);  // the limit is per reply

  const auto cut = make_reply_checker(WireProtocol::http, "", reply.size() - 1);
  const ReplyScan result = scan(*cut, reply);
  EXPECT_TRUE(result.bad);
  EXPECT_TRUE(result.oversized);
  EXPECT_EQ(result.replies, 0u);
  EXPECT_NE(result.problem.find("--max-response-bytes"), std::string::npos) << result.problem;
}

TEST(HttpReplyChecker, AnEndlessChunkedReplyIsCutOnceOverTheLimit) {
  constexpr std::size_t kLimit = 4096;
  const auto checker = make_reply_checker(WireProtocol::http, "", kLimit);
  ReplyScan result = scan(*checker, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "100\r\n" + std::string(256, 'x') + "\r\n";
  std::size_t fed = 0;
  while (!result.bad && fed < 10 * kLimit) {
    result = scan(*checker, chunk);
    fed += chunk.size();
  }
  EXPECT_TRUE(result.oversized);
  EXPECT_LE(fed, kLimit + chunk.size());  // cut within the read that crossed the limit
}

TEST(HttpReplyChecker, PipelinedRepliesAreCountedOneByOneAgainstTheLimit) {
  const std::string small = http_reply("ok");
  const std::string large = http_reply(std::string(200, 'y'));
  const auto checker = make_reply_checker(WireProtocol::http, "", small.size() + 10);
  const ReplyScan result = scan(*checker, small + small + large);
  EXPECT_EQ(result.replies, 2u);
  EXPECT_TRUE(result.oversized);
}

TEST(HttpStatusOf, ReadsTheCodeOfAStatusLineOnly) {
  EXPECT_EQ(http_status_of("HTTP/1.1 408 Request Timeout\r\n"), 408);
  EXPECT_EQ(http_status_of("HTTP/1.0 200 "), 200);
  EXPECT_EQ(http_status_of("HTTP/1.1 40"), std::nullopt);  // not yet
  EXPECT_EQ(http_status_of("SSH-2.0-OpenSSH_9"), std::nullopt);
  EXPECT_EQ(http_status_of("HTTP/1.1 4x8 Bad"), std::nullopt);
  EXPECT_EQ(http_status_of(""), std::nullopt);
}

TEST(RawEchoChecker, CountsEachPayloadEchoedBack) {
  const auto checker = make_reply_checker(WireProtocol::raw, "0123456789", kNoSizeLimit);
  EXPECT_EQ(scan(*checker, "0123456789").replies, 1u);
  EXPECT_EQ(scan(*checker, "01234567890123456789").replies, 2u);
  EXPECT_EQ(replies_byte_by_byte(*checker, "012345678901234"), 1u);
  EXPECT_EQ(scan(*checker, "56789").replies, 1u);
}

TEST(RawEchoChecker, AFlippedByteIsABadReplyAtItsPosition) {
  const auto checker = make_reply_checker(WireProtocol::raw, "0123456789", kNoSizeLimit);
  EXPECT_EQ(scan(*checker, "01234").replies, 0u);
  const ReplyScan result = scan(*checker, "56x89");
  EXPECT_TRUE(result.bad);
  EXPECT_EQ(result.replies, 0u);
  EXPECT_NE(result.problem.find("byte 7"), std::string::npos) << result.problem;
}

TEST(RawEchoChecker, EndOfStreamCompletesNothing) {
  const auto checker = make_reply_checker(WireProtocol::raw, "abc", kNoSizeLimit);
  scan(*checker, "ab");
  EXPECT_EQ(checker->scan_end().replies, 0u);
}

}  // namespace
}  // namespace echolab::load
