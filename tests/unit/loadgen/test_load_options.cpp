#include "loadgen/load_options.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace echolab::load {
namespace {

using namespace std::chrono_literals;

CommandLine parse(const std::vector<std::string>& arguments) {
  return parse_command_line(arguments);
}

// A usage error: exit 2 and one line that names `mentioned`.
void expect_usage_error(const std::vector<std::string>& arguments, const std::string& mentioned) {
  const CommandLine result = parse(arguments);
  EXPECT_FALSE(result.options.has_value());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.message.find(mentioned), std::string::npos)
      << "message: " << result.message << "\nexpected to mention: " << mentioned;
  EXPECT_EQ(result.message.find('\n'), std::string::npos) << result.message;
}

TEST(ParseTarget, HostPortAndBracketedIpv6) {
  const Target v4 = parse_target("127.0.0.1:8082");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 8082);
  const Target v6 = parse_target("[::1]:9000");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 9000);
  EXPECT_EQ(v6.to_string(), "[::1]:9000");
  EXPECT_EQ(parse_target("server.example:80").host, "server.example");
}

TEST(ParseTarget, RejectsMissingOrBadPorts) {
  for (const char* text :
       {"localhost", ":80", "host:", "host:0", "host:65536", "host:8o", "[::1]"}) {
    EXPECT_THROW(parse_target(text), std::invalid_argument) << text;
  }
}

TEST(ParseCommandLine, DefaultsAreAClosedHttpGetLoop) {
  const CommandLine result = parse({"127.0.0.1:8082"});
  ASSERT_TRUE(result.options.has_value()) << result.message;
  const LoadOptions& options = *result.options;
  EXPECT_EQ(options.protocol, WireProtocol::http);
  EXPECT_EQ(options.method, HttpMethod::get);
  EXPECT_EQ(options.path, "/");
  EXPECT_EQ(options.mode(), LoopMode::closed);
  EXPECT_EQ(options.run_time(), 10s);
  EXPECT_EQ(options.pipeline, 1u);
  EXPECT_FALSE(options.sends_payload());
}

TEST(ParseCommandLine, WrkStyleShortFlags) {
  const CommandLine result = parse({"-c100", "-t2", "-d5s", "127.0.0.1:8082"});
  ASSERT_TRUE(result.options.has_value()) << result.message;
  EXPECT_EQ(result.options->connections, 100u);
  EXPECT_EQ(result.options->threads, 2u);
  EXPECT_EQ(result.options->duration, 5s);
}

TEST(ParseCommandLine, EveryOptionIsRead) {
  const CommandLine result =
      parse({"--protocol", "http",     "--method",      "post",       "--path",    "/echo",
             "--payload",  "512",      "--connections", "300",        "--threads", "3",
             "--duration", "20s",      "--ramp",        "2s",         "--timeout", "750ms",
             "--json",     "out.json", "--quiet",       "127.0.0.1:1"});
  ASSERT_TRUE(result.options.has_value()) << result.message;
  const LoadOptions& options = *result.options;
  EXPECT_EQ(options.method, HttpMethod::post);
  EXPECT_EQ(options.path, "/echo");
  EXPECT_EQ(options.payload_bytes, 512u);
  EXPECT_EQ(options.connections, 300u);
  EXPECT_EQ(options.threads, 3u);
  EXPECT_EQ(options.duration, 20s);
  EXPECT_EQ(options.ramp, 2s);
  EXPECT_EQ(options.timeout, 750ms);
  EXPECT_EQ(options.json_path, "out.json");
  EXPECT_TRUE(options.quiet);
  EXPECT_TRUE(options.sends_payload());
}

TEST(ParseCommandLine, HoldModeRunsForRampPlusHold) {
  const CommandLine result = parse(
      {"--connections", "10000", "--ramp", "10s", "--hold", "30s", "--interval", "2s", "h:1"});
  ASSERT_TRUE(result.options.has_value()) << result.message;
  EXPECT_EQ(result.options->mode(), LoopMode::hold);
  EXPECT_EQ(result.options->run_time(), 40s);
  EXPECT_EQ(result.options->interval, 2s);
}

TEST(ParseCommandLine, RateMakesAnOpenLoop) {
  const CommandLine result = parse({"--rate", "5000", "h:1"});
  ASSERT_TRUE(result.options.has_value()) << result.message;
  EXPECT_EQ(result.options->mode(), LoopMode::open);
  EXPECT_DOUBLE_EQ(*result.options->rate, 5000.0);
}

TEST(ParseCommandLine, RawEchoSendsThePayload) {
  const CommandLine result = parse({"--protocol", "raw", "--payload", "16", "h:1"});
  ASSERT_TRUE(result.options.has_value()) << result.message;
  EXPECT_EQ(result.options->protocol, WireProtocol::raw);
  EXPECT_TRUE(result.options->sends_payload());
}

TEST(ParseCommandLine, MaxResponseBytesHasARoomyDefault) {
  const CommandLine defaults = parse({"h:1"});
  ASSERT_TRUE(defaults.options.has_value()) << defaults.message;
  // The servers echo up to 1 MiB; the head of the reply must fit as well.
  EXPECT_GT(defaults.options->max_response_bytes, std::size_t{1} << 20);
  const CommandLine set = parse({"--max-response-bytes", "65536", "h:1"});
  ASSERT_TRUE(set.options.has_value()) << set.message;
  EXPECT_EQ(set.options->max_response_bytes, 65536u);
}

TEST(ParseCommandLine, AttackModes) {
  const CommandLine slow = parse({"--slow-headers", "1500ms", "-c", "50", "h:1"});
  ASSERT_TRUE(slow.options.has_value()) << slow.message;
  EXPECT_EQ(slow.options->attack(), AttackMode::slow_headers);
  EXPECT_EQ(slow.options->slow_headers_interval, 1500ms);

  const CommandLine never = parse({"--never-read", "--pipeline", "16", "h:1"});
  ASSERT_TRUE(never.options.has_value()) << never.message;
  EXPECT_EQ(never.options->attack(), AttackMode::never_read);
  EXPECT_EQ(never.options->pipeline, 16u);

  EXPECT_EQ(parse({"h:1"}).options->attack(), AttackMode::none);
}

TEST(ParseCommandLine, NoMoreThreadsThanConnections) {
  const CommandLine result = parse({"-c", "3", "-t", "8", "h:1"});
  ASSERT_TRUE(result.options.has_value()) << result.message;
  EXPECT_EQ(result.options->threads, 3u);
}

TEST(ParseCommandLine, HelpListsEveryOptionAndExitsZero) {
  const CommandLine result = parse({"--help"});
  EXPECT_FALSE(result.options.has_value());
  EXPECT_EQ(result.exit_code, 0);
  for (const char* option : {"--protocol",
                             "--method",
                             "--path",
                             "--payload",
                             "--connections",
                             "--threads",
                             "--duration",
                             "--ramp",
                             "--hold",
                             "--interval",
                             "--pipeline",
                             "--rate",
                             "--timeout",
                             "--new-connection-per-request",
                             "--max-response-bytes",
                             "--slow-headers",
                             "--never-read",
                             "--metrics-listen",
                             "--metrics-linger",
                             "--json",
                             "--quiet",
                             "HOST:PORT"}) {
    EXPECT_NE(result.message.find(option), std::string::npos) << option;
  }
}

TEST(ParseCommandLine, BadFlagsAndValuesNameThemselves) {
  expect_usage_error({}, "HOST:PORT");
  expect_usage_error({"--bogus", "h:1"}, "--bogus");
  expect_usage_error({"--connections", "lots", "h:1"}, "--connections");
  expect_usage_error({"--connections", "0", "h:1"}, "--connections");
  expect_usage_error({"--threads", "-2", "h:1"}, "--threads");
  expect_usage_error({"--duration", "5q", "h:1"}, "--duration");
  expect_usage_error({"--timeout", "soon", "h:1"}, "--timeout");
  expect_usage_error({"--protocol", "quic", "h:1"}, "--protocol");
  expect_usage_error({"--method", "DELETE", "h:1"}, "--method");
  expect_usage_error({"--rate", "0", "h:1"}, "--rate");
  expect_usage_error({"--pipeline", "0", "h:1"}, "--pipeline");
  expect_usage_error({"--max-response-bytes", "lots", "h:1"}, "--max-response-bytes");
  expect_usage_error({"--max-response-bytes", "100", "h:1"}, "--max-response-bytes");
  expect_usage_error({"--max-response-bytes", "0", "h:1"}, "--max-response-bytes");
  expect_usage_error({"--slow-headers", "often", "h:1"}, "--slow-headers");
  expect_usage_error({"--slow-headers", "0s", "h:1"}, "--slow-headers");
  expect_usage_error({"--never-read=maybe", "h:1"}, "--never-read");
  expect_usage_error({"localhost"}, "HOST:PORT");
  expect_usage_error({"h:99999"}, "HOST:PORT");
}

TEST(ParseCommandLine, ConflictingOptionsAreRefused) {
  expect_usage_error({"--hold", "5s", "--duration", "5s", "h:1"}, "--duration");
  expect_usage_error({"--hold", "5s", "--rate", "100", "h:1"}, "--rate");
  expect_usage_error({"--interval", "1s", "h:1"}, "--interval");
  expect_usage_error({"--pipeline", "4", "--rate", "100", "h:1"}, "--pipeline");
  expect_usage_error({"--pipeline", "4", "--new-connection-per-request", "h:1"}, "--pipeline");
  expect_usage_error({"--new-connection-per-request", "--hold", "1s", "h:1"},
                     "--new-connection-per-request");
  expect_usage_error({"--protocol", "raw", "--method", "POST", "h:1"}, "--method");
  expect_usage_error({"--protocol", "raw", "--payload", "0", "h:1"}, "--payload");
  expect_usage_error({"--payload", "100", "h:1"}, "--payload");
  expect_usage_error({"--path", "nope", "h:1"}, "--path");
  expect_usage_error({"--ramp", "10s", "--duration", "5s", "h:1"}, "--ramp");
  expect_usage_error({"--duration", "0s", "h:1"}, "--duration");
  expect_usage_error({"--timeout", "0ms", "h:1"}, "--timeout");
  expect_usage_error({"--protocol", "raw", "--max-response-bytes", "4096", "h:1"},
                     "--max-response-bytes");
  expect_usage_error(
      {"--method", "POST", "--payload", "8192", "--max-response-bytes", "4096", "h:1"},
      "--max-response-bytes");
}

TEST(ParseCommandLine, AttackModesRefuseWhatDoesNotApply) {
  expect_usage_error({"--slow-headers", "1s", "--never-read", "h:1"}, "--never-read");
  expect_usage_error({"--never-read", "--rate", "100", "h:1"}, "--rate");
  expect_usage_error({"--never-read", "--hold", "5s", "h:1"}, "--hold");
  expect_usage_error({"--slow-headers", "1s", "--protocol", "raw", "--payload", "8", "h:1"},
                     "--protocol raw");
  expect_usage_error({"--never-read", "--new-connection-per-request", "h:1"},
                     "--new-connection-per-request");
  expect_usage_error({"--slow-headers", "1s", "--pipeline", "4", "h:1"}, "--pipeline");
  expect_usage_error({"--slow-headers", "1s", "--method", "POST", "h:1"}, "--method");
  expect_usage_error({"--never-read", "--max-response-bytes", "4096", "h:1"},
                     "--max-response-bytes");
}

TEST(ParseCommandLine, MetricsListenAndLinger) {
  const CommandLine plain = parse({"h:1"});
  ASSERT_TRUE(plain.options.has_value());
  EXPECT_FALSE(plain.options->metrics_listen.has_value());
  EXPECT_EQ(plain.options->metrics_linger, std::chrono::nanoseconds{0});

  const CommandLine metered =
      parse({"--metrics-listen", "0.0.0.0:9110", "--metrics-linger", "6s", "h:1"});
  ASSERT_TRUE(metered.options.has_value());
  ASSERT_TRUE(metered.options->metrics_listen.has_value());
  EXPECT_EQ(metered.options->metrics_listen->host, "0.0.0.0");
  EXPECT_EQ(metered.options->metrics_listen->port, 9110);
  EXPECT_EQ(metered.options->metrics_linger, std::chrono::seconds(6));

  expect_usage_error({"--metrics-listen", "9110", "h:1"}, "--metrics-listen");
  expect_usage_error({"--metrics-listen", "0.0.0.0:70000", "h:1"}, "--metrics-listen");
  expect_usage_error({"--metrics-linger", "6s", "h:1"}, "--metrics-linger");
  expect_usage_error({"--metrics-listen", "0.0.0.0:9110", "--metrics-linger", "later", "h:1"},
                     "--metrics-linger");
}

}  // namespace
}  // namespace echolab::load
