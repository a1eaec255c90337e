#include "common/server/server_options.hpp"

#include <gtest/gtest.h>

#include <vector>

#include <CLI/CLI.hpp>

#include "common/server/duration.hpp"

namespace echolab {
namespace {

int parse(CLI::App& app, std::vector<std::string> args) {
  args.insert(args.begin(), "echolab-test");
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  return parse_command_line(app, static_cast<int>(argv.size()), argv.data());
}

TEST(Endpoint, ParsesHostAndPort) {
  const Endpoint v4 = parse_endpoint("127.0.0.1:8081");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 8081);
  const Endpoint v6 = parse_endpoint("[::1]:9000");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.to_string(), "[::1]:9000");
}

TEST(Endpoint, RejectsMissingOrBadPorts) {
  for (const char* bad : {"8080", ":80", "host:", "host:65536", "host:80x"}) {
    EXPECT_THROW(parse_endpoint(bad), std::invalid_argument) << bad;
  }
}

TEST(Duration, ParsesUnitsAndBareSeconds) {
  EXPECT_EQ(parse_duration("30s"), std::chrono::seconds(30));
  EXPECT_EQ(parse_duration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_duration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(parse_duration("1h"), std::chrono::hours(1));
  EXPECT_EQ(parse_duration("250us"), std::chrono::microseconds(250));
  EXPECT_EQ(parse_duration("40ns"), std::chrono::nanoseconds(40));
  EXPECT_EQ(parse_duration("1.5"), std::chrono::milliseconds(1500));
  EXPECT_EQ(parse_duration("3"), std::chrono::seconds(3));
}

TEST(Duration, RejectsWhatIsNotADuration) {
  for (const char* bad : {"", "soon", "s", "ms", "10 s", "10sec", "5d", "-1s", "1e30s"}) {
    EXPECT_THROW(parse_duration(bad), std::invalid_argument) << bad;
  }
}

TEST(ServerOptions, DefaultsFollowTheModelsPorts) {
  EXPECT_EQ(default_options(Model::prefork).listen.port, 8081);
  EXPECT_EQ(default_options(Model::threads).metrics_listen.port, 9102);
  EXPECT_EQ(default_options(Model::pool).listen.port, 8083);
  EXPECT_FALSE(default_options(Model::pool).protocol.fault_injection);
}

TEST(ServerOptions, ParsesEverySharedFlag) {
  CLI::App app;
  ServerOptions options = default_options(Model::pool);
  add_server_options(app, options);
  ASSERT_EQ(parse(app, {"--listen", "127.0.0.1:1", "--metrics-listen", "127.0.0.1:2",
                        "--idle-timeout", "250ms", "--shutdown-timeout", "3s", "--max-connections",
                        "7", "--protocol", "raw", "--max-header-bytes", "1024", "--max-body-bytes",
                        "10", "--fault-injection"}),
            -1);
  EXPECT_EQ(options.listen.port, 1);
  EXPECT_EQ(options.metrics_listen.port, 2);
  EXPECT_EQ(options.timeouts.idle, std::chrono::milliseconds(250));
  EXPECT_EQ(options.shutdown_timeout, std::chrono::seconds(3));
  EXPECT_EQ(options.max_connections, 7u);
  EXPECT_EQ(options.protocol.mode, ProtocolMode::raw);
  EXPECT_EQ(options.protocol.limits.max_header_bytes, 1024u);
  EXPECT_EQ(options.protocol.limits.max_body_bytes, 10u);
  EXPECT_TRUE(options.protocol.fault_injection);
}

TEST(ServerOptions, BadValuesExitWith2NamingTheFlag) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--listen", "nowhere"},
                                             {"--idle-timeout", "soon"},
                                             {"--max-connections", "0"},
                                             {"--protocol", "smtp"},
                                             {"--no-such-flag"}}) {
    CLI::App app{"test", "echolab-test"};
    ServerOptions options;
    add_server_options(app, options);
    testing::internal::CaptureStderr();
    EXPECT_EQ(parse(app, args), 2) << args[0];
    const std::string error = testing::internal::GetCapturedStderr();
    EXPECT_NE(error.find(args[0]), std::string::npos) << error;
    EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1) << error;
  }
}

TEST(ServerOptions, EveryDurationFlagHasAMinimumOfOneMillisecond) {
  for (const char* flag : {"--idle-timeout", "--header-timeout", "--body-timeout", "--send-timeout",
                           "--linger-timeout", "--shutdown-timeout"}) {
    for (const char* too_short : {"0", "0s", "0.5ms", "999us", "10ns"}) {
      CLI::App app{"test", "echolab-test"};
      ServerOptions options;
      add_server_options(app, options);
      testing::internal::CaptureStderr();
      EXPECT_EQ(parse(app, {flag, too_short}), 2) << flag << " " << too_short;
      const std::string error = testing::internal::GetCapturedStderr();
      EXPECT_NE(error.find(flag), std::string::npos) << error;
      EXPECT_NE(error.find("below the minimum of 1ms"), std::string::npos) << error;
      EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1) << error;
    }
    CLI::App app{"test", "echolab-test"};
    ServerOptions options;
    add_server_options(app, options);
    EXPECT_EQ(parse(app, {flag, "1ms"}), -1) << flag;
  }
  CLI::App app{"test", "echolab-test"};
  ServerOptions options;
  add_server_options(app, options);
  ASSERT_EQ(parse(app, {"--idle-timeout", "1ms", "--shutdown-timeout", "1000us"}), -1);
  EXPECT_EQ(options.timeouts.idle, std::chrono::milliseconds(1));
  EXPECT_EQ(options.shutdown_timeout, std::chrono::milliseconds(1));
}

TEST(ServerOptions, HelpExitsWith0) {
  CLI::App app{"test", "echolab-test"};
  ServerOptions options;
  add_server_options(app, options);
  testing::internal::CaptureStdout();
  EXPECT_EQ(parse(app, {"--help"}), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("--fault-injection"), std::string::npos);
}

}  // namespace
}  // namespace echolab
