#include "servers/prefork/prefork_options.hpp"

#include <vector>

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

namespace echolab::prefork {
namespace {

// Parses like main() does; returns parse_command_line's answer.
int parse(PreforkOptions& options, std::vector<std::string> args) {
  CLI::App app{"test", "echolab-prefork"};
  add_prefork_options(app, options);
  args.insert(args.begin(), "echolab-prefork");
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (auto& arg : args) {
    argv.push_back(arg.data());
  }
  return parse_command_line(app, static_cast<int>(argv.size()), argv.data());
}

TEST(PreforkOptions, DefaultsAreSizedForTenThousandConnections) {
  PreforkOptions options;
  EXPECT_EQ(parse(options, {}), -1);
  EXPECT_EQ(options.max_workers, 10'000u);
  EXPECT_EQ(options.max_connections_per_child, 0u);
  EXPECT_EQ(options.server.listen.port, 8081);
  EXPECT_EQ(options.server.metrics_listen.port, 9101);
  EXPECT_EQ(options.worker_cap(), 10'000u);
}

TEST(PreforkOptions, TheConnectionCapIsTheWorkerCap) {
  PreforkOptions options;
  ASSERT_EQ(parse(options, {"--max-connections", "50"}), -1);
  EXPECT_EQ(options.worker_cap(), 50u);
  PreforkOptions fewer_workers;
  ASSERT_EQ(
      parse(fewer_workers, {"--max-workers", "20", "--start-servers", "4", "--min-spare", "2"}),
      -1);
  EXPECT_EQ(fewer_workers.worker_cap(), 20u);
}

TEST(PreforkOptions, InconsistentSparesAreABadValue) {
  PreforkOptions options;
  EXPECT_EQ(parse(options, {"--min-spare", "20", "--max-spare", "10"}), 2);
  PreforkOptions too_many_at_start;
  EXPECT_EQ(parse(too_many_at_start, {"--max-workers", "10", "--start-servers", "11", "--min-spare",
                                      "1", "--max-spare", "5"}),
            2);
  PreforkOptions not_a_number;
  EXPECT_EQ(parse(not_a_number, {"--max-connections-per-child", "many"}), 2);
}

}  // namespace
}  // namespace echolab::prefork
