#include "loadgen/shard.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "loadgen/load_options.hpp"

namespace echolab::load {
namespace {

TEST(Shard, ParsesIOfN) {
  const Shard shard = parse_shard("2/3");
  EXPECT_EQ(shard.index, 2U);
  EXPECT_EQ(shard.count, 3U);
  EXPECT_EQ(shard.to_string(), "2/3");
  EXPECT_TRUE(parse_shard("1/1").whole());
  EXPECT_FALSE(parse_shard("3/3").whole());
}

TEST(Shard, RefusesWhatIsNotIOfN) {
  for (const char* text : {"0/3", "4/3", "1/0", "0/0", "x", "", "1/", "/2", "1/2/3", "-1/2", "1/-2",
                           "a/2", "1 /2", "2"}) {
    EXPECT_THROW(parse_shard(text), std::invalid_argument) << text;
  }
}

// Every split of `total` connections into `count` shards: each connection in exactly one
// shard, at the index it has in the whole run, and shares at most one apart.
TEST(Shard, SharesCoverEveryConnectionOnceAndDifferByAtMostOne) {
  for (std::size_t total = 1; total <= 60; ++total) {
    for (std::size_t count = 1; count <= total; ++count) {
      std::vector<std::size_t> shares;
      std::multiset<std::size_t> indices;
      for (std::size_t index = 1; index <= count; ++index) {
        const Shard shard{.index = index, .count = count};
        shares.push_back(shard.connections_of(total));
        for (std::size_t nth = 0; nth < shares.back(); ++nth) {
          indices.insert(shard.global_index(nth));
        }
      }
      const auto [fewest, most] = std::minmax_element(shares.begin(), shares.end());
      EXPECT_LE(*most - *fewest, 1U) << total << " in " << count;
      EXPECT_GE(*fewest, 1U) << total << " in " << count;
      ASSERT_EQ(indices.size(), total) << total << " in " << count;
      std::size_t expected = 0;
      for (const std::size_t index : indices) {
        EXPECT_EQ(index, expected++) << total << " in " << count;
      }
    }
  }
}

TEST(Shard, TenConnectionsInThreeShards) {
  EXPECT_EQ((Shard{.index = 1, .count = 3}.connections_of(10)), 4U);
  EXPECT_EQ((Shard{.index = 2, .count = 3}.connections_of(10)), 3U);
  EXPECT_EQ((Shard{.index = 3, .count = 3}.connections_of(10)), 3U);
  EXPECT_EQ((Shard{.index = 2, .count = 3}.global_index(0)), 1U);
  EXPECT_EQ((Shard{.index = 2, .count = 3}.global_index(2)), 7U);
}

TEST(ShardOption, TakesItsShareOfConnectionsRateAndThreads) {
  double rate_sum = 0;
  std::size_t connection_sum = 0;
  for (const char* shard : {"1/3", "2/3", "3/3"}) {
    const auto parsed = parse_command_line(
        {"--shard", shard, "-c", "10", "-t", "4", "--rate", "1000", "127.0.0.1:8082"});
    ASSERT_TRUE(parsed.options.has_value()) << parsed.message;
    EXPECT_EQ(parsed.options->connections, 10U);  // the run, described once
    connection_sum += parsed.options->shard_connections();
    rate_sum += *parsed.options->shard_rate();
    EXPECT_DOUBLE_EQ(*parsed.options->shard_rate(),
                     100.0 * static_cast<double>(parsed.options->shard_connections()));
    EXPECT_EQ(parsed.options->threads,
              std::min<std::size_t>(4, parsed.options->shard_connections()));
  }
  EXPECT_EQ(connection_sum, 10U);
  EXPECT_DOUBLE_EQ(rate_sum, 1000.0);
}

void expect_refused(const std::vector<std::string>& arguments, const std::string& mentioned) {
  const CommandLine result = parse_command_line(arguments);
  EXPECT_FALSE(result.options.has_value());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.message.find(mentioned), std::string::npos) << result.message;
  EXPECT_EQ(result.message.find('\n'), std::string::npos) << result.message;
}

TEST(ShardOption, BadValuesAreRefusedInOneLineNamingTheFlag) {
  for (const char* bad : {"0/3", "4/3", "1/0", "x"}) {
    expect_refused({"--shard", bad, "127.0.0.1:8082"}, "--shard");
  }
  // A shard left without a connection would measure nothing.
  expect_refused({"--shard", "3/3", "-c", "2", "127.0.0.1:8082"}, "--shard 3/3");
}

}  // namespace
}  // namespace echolab::load
