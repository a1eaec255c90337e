#include "servers/prefork/spare_server_policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace echolab::prefork {
namespace {

constexpr SparePolicyLimits kLimits{/*min_spare=*/5, /*max_spare=*/10, /*max_workers=*/100};

TEST(SpareServerPolicy, DoesNothingBetweenMinAndMaxSpare) {
  const auto decision = decide_spare_servers({7, 0, 20}, kLimits, 8, true);
  EXPECT_EQ(decision.spawn, 0u);
  EXPECT_EQ(decision.retire, 0u);
  EXPECT_EQ(decision.next_spawn_rate, 1u);  // satisfied: the rate starts over
}

TEST(SpareServerPolicy, ForksAtLeastTheShortfall) {
  const auto decision = decide_spare_servers({1, 0, 10}, kLimits, 1, false);
  EXPECT_EQ(decision.spawn, 4u);
  EXPECT_EQ(decision.next_spawn_rate, 2u);
}

TEST(SpareServerPolicy, DoublesTheRateWhileShort) {
  std::size_t rate = 1;
  std::size_t total = 10;
  std::vector<std::size_t> spawned;
  for (int round = 0; round < 5; ++round) {
    // A ramp eats every spare before the next round.
    const auto decision = decide_spare_servers({4, 0, total}, {5, 10, 10'000}, rate, false);
    spawned.push_back(decision.spawn);
    total += decision.spawn;
    rate = decision.next_spawn_rate;
  }
  EXPECT_EQ(spawned, (std::vector<std::size_t>{1, 2, 4, 8, 16}));
}

TEST(SpareServerPolicy, CapsTheRatePerRound) {
  const auto decision = decide_spare_servers({0, 0, 10}, {5, 10, 100'000}, kMaxSpawnRate, false);
  EXPECT_EQ(decision.spawn, kMaxSpawnRate);
  EXPECT_EQ(decision.next_spawn_rate, kMaxSpawnRate);
  const auto large_shortfall = decide_spare_servers({0, 0, 0}, {5000, 6000, 100'000}, 1, false);
  EXPECT_EQ(large_shortfall.spawn, kMaxSpawnRate);
}

TEST(SpareServerPolicy, NeverForksPastMaxWorkers) {
  EXPECT_EQ(decide_spare_servers({0, 0, 98}, kLimits, 64, false).spawn, 2u);
  const auto full = decide_spare_servers({0, 0, 100}, kLimits, 64, false);
  EXPECT_EQ(full.spawn, 0u);
  EXPECT_EQ(full.next_spawn_rate, 64u);  // still short: keep the rate for when room appears
}

TEST(SpareServerPolicy, CountsStartingChildrenAsSpares) {
  const auto decision = decide_spare_servers({0, 6, 50}, kLimits, 16, false);
  EXPECT_EQ(decision.spawn, 0u);
}

TEST(SpareServerPolicy, RetiresTheSurplusOnlyWhenDueAndNothingStarts) {
  EXPECT_EQ(decide_spare_servers({25, 0, 60}, kLimits, 1, true).retire, 15u);
  EXPECT_EQ(decide_spare_servers({25, 0, 60}, kLimits, 1, false).retire, 0u);
  EXPECT_EQ(decide_spare_servers({25, 3, 60}, kLimits, 1, true).retire, 0u);
  EXPECT_EQ(decide_spare_servers({10, 0, 60}, kLimits, 1, true).retire, 0u);
}

TEST(SpareServerPolicy, ATenThousandConnectionRampIsMetInFewRounds) {
  // Every round, connections take all idle children: the master must fork 10,000 children
  // in a bounded number of rounds, never more than the cap.
  const SparePolicyLimits limits{32, 256, 10'000};
  std::size_t total = 64;
  std::size_t rate = 1;
  int rounds = 0;
  while (total < limits.max_workers && rounds < 100) {
    const auto decision = decide_spare_servers({0, 0, total}, limits, rate, false);
    total += decision.spawn;
    rate = decision.next_spawn_rate;
    ++rounds;
  }
  EXPECT_EQ(total, limits.max_workers);
  EXPECT_LE(rounds, 20);
}

TEST(SpareServerPolicy, AThousandConnectionsASecondNeverWaitMoreThanARound) {
  // The c10k ramp: 1,000 connections/s, 10 per 10 ms maintenance round. A child forked in a
  // round is ready by the next one; a connection with no idle child waits in the backlog.
  // With the default spares, no connection may wait longer than the round it arrived in.
  constexpr std::size_t kArrivalsPerRound = 10;
  const SparePolicyLimits limits{32, 256, 10'064};
  std::size_t idle = 64;
  std::size_t busy = 0;
  std::size_t waiting = 0;
  std::size_t rate = 1;
  std::size_t most_waiting = 0;
  for (int round = 0; round < 1'000; ++round) {
    waiting += kArrivalsPerRound;
    const std::size_t taken = std::min(idle, waiting);
    idle -= taken;
    busy += taken;
    waiting -= taken;
    most_waiting = std::max(most_waiting, waiting);
    const auto decision = decide_spare_servers({idle, 0, idle + busy}, limits, rate, false);
    rate = decision.next_spawn_rate;
    idle += decision.spawn;  // ready by the next round
  }
  EXPECT_EQ(busy, 10'000u);
  EXPECT_EQ(most_waiting, 0u);
}

}  // namespace
}  // namespace echolab::prefork
