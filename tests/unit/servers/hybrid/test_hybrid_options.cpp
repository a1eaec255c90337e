#include "servers/hybrid/hybrid_options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace echolab::hybrid {
namespace {

// Parses `args` as the hybrid server's command line; the exit code parse_command_line gives
// (-1 to go on).
int parse(HybridOptions& options, std::vector<std::string> args) {
  CLI::App app{"test", "echolab-hybrid"};
  add_hybrid_options(app, options);
  args.insert(args.begin(), "echolab-hybrid");
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  return parse_command_line(app, static_cast<int>(argv.size()), argv.data());
}

TEST(HybridOptions, DefaultsAreOneWorkerPerCpuOnReusePortAndPorts8084And9104) {
  HybridOptions options;
  ASSERT_EQ(parse(options, {}), -1);
  EXPECT_EQ(options.workers, 0u);
  EXPECT_EQ(options.sharing, PortSharing::reuse_port);
  EXPECT_EQ(options.server.model, Model::hybrid);
  EXPECT_EQ(options.server.listen.port, 8084);
  EXPECT_EQ(options.server.metrics_listen.port, 9104);
}

TEST(HybridOptions, ParsesWorkersAndSharedListener) {
  HybridOptions options;
  ASSERT_EQ(parse(options, {"--workers", "3", "--shared-listener"}), -1);
  EXPECT_EQ(options.workers, 3u);
  EXPECT_EQ(options.sharing, PortSharing::shared_listener);
}

TEST(HybridOptions, RefusesWorkersOutOfRangeOrNotANumber) {
  for (const char* bad : {"-1", "1025", "two"}) {
    HybridOptions options;
    EXPECT_EQ(parse(options, {"--workers", bad}), 2) << bad;
  }
}

TEST(ResolvedWorkerCount, ZeroMeansOnePerCpuAndAtLeastOne) {
  EXPECT_EQ(resolved_worker_count(0, 8), 8u);
  EXPECT_EQ(resolved_worker_count(0, 0), 1u);  // hardware_concurrency() may not know
  EXPECT_EQ(resolved_worker_count(3, 8), 3u);
}

}  // namespace
}  // namespace echolab::hybrid
