#include "servers/prefork/spare_server_policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace echolab::prefork {
namespace {

constexpr SparePolicyLimits kLimits{/*min_spare=*/5, /*max_spare=*/10, /*max_workers=*/100};

TEST(SpareServerPolicy, DoesNothingBetweenMinAndMaxSpare) {
  const auto decision = decide_spare_servers({7, 0, 20}, kLimits, true);
  EXPECT_EQ(decision.spawn, 0u);
  EXPECT_EQ(decision.retire, 0u);
}

TEST(SpareServerPolicy, ForksTheShortfall) {
  EXPECT_EQ(decide_spare_servers({1, 0, 10}, kLimits, false).spawn, 4u);
}

TEST(SpareServerPolicy, ForksAChildForEveryConnectionWaitingInTheBacklog) {
  EXPECT_EQ(decide_spare_servers({0, 0, 10, 7}, kLimits, false).spawn, 12u);
  // Idle children take waiting connections first: only what they cannot take is forked.
  EXPECT_EQ(decide_spare_servers({6, 0, 10, 3}, kLimits, false).spawn, 2u);
}

TEST(SpareServerPolicy, CapsTheForksPerRound) {
  EXPECT_EQ(decide_spare_servers({0, 0, 0}, {5000, 6000, 100'000}, false).spawn, kMaxSpawnRate);
  EXPECT_EQ(decide_spare_servers({0, 0, 0, 5000}, {5, 10, 100'000}, false).spawn, kMaxSpawnRate);
}

TEST(SpareServerPolicy, NeverForksPastMaxWorkers) {
  EXPECT_EQ(decide_spare_servers({0, 0, 98, 50}, kLimits, false).spawn, 2u);
  EXPECT_EQ(decide_spare_servers({0, 0, 100, 50}, kLimits, false).spawn, 0u);
}

TEST(SpareServerPolicy, CountsStartingChildrenAsSpares) {
  EXPECT_EQ(decide_spare_servers({0, 6, 50}, kLimits, false).spawn, 0u);
  EXPECT_EQ(decide_spare_servers({0, 6, 50, 3}, kLimits, false).spawn, 2u);
}

TEST(SpareServerPolicy, RetiresTheSurplusOnlyWhenDueAndNothingStartsOrWaits) {
  EXPECT_EQ(decide_spare_servers({25, 0, 60}, kLimits, true).retire, 15u);
  EXPECT_EQ(decide_spare_servers({25, 0, 60}, kLimits, false).retire, 0u);
  EXPECT_EQ(decide_spare_servers({25, 3, 60}, kLimits, true).retire, 0u);
  EXPECT_EQ(decide_spare_servers({10, 0, 60}, kLimits, true).retire, 0u);
}

TEST(SpareServerPolicy, TenThousandConnectionsAtOnceAreMetInFewRounds) {
  const SparePolicyLimits limits{32, 256, 10'000};
  std::size_t total = 64;
  int rounds = 0;
  while (total < limits.max_workers && rounds < 100) {
    // Every child is busy; the rest of the 10,000 connections wait in the backlog.
    total += decide_spare_servers({0, 0, total, 10'000 - total}, limits, false).spawn;
    ++rounds;
  }
  EXPECT_EQ(total, limits.max_workers);
  EXPECT_LE(rounds, 10);
}

struct Ramp {
  std::size_t busy = 0;
  std::size_t most_waiting = 0;  // after the idle children took what they could
  std::size_t most_idle = 0;
};

// A ramp of `arrivals` connections per maintenance round until 10,000 are open. A child
// forked in a round is ready by the next one.
Ramp ramp(std::size_t arrivals) {
  const SparePolicyLimits limits{32, 256, 10'064};
  Ramp result;
  std::size_t idle = 64;
  std::size_t waiting = 0;
  for (std::size_t opened = 0; opened < 10'000 || waiting > 0;) {
    const std::size_t arriving = std::min(arrivals, 10'000 - opened);
    opened += arriving;
    waiting += arriving;
    const std::size_t taken = std::min(idle, waiting);
    idle -= taken;
    waiting -= taken;
    result.busy += taken;
    result.most_waiting = std::max(result.most_waiting, waiting);
    idle += decide_spare_servers({idle, 0, idle + result.busy, waiting}, limits, false).spawn;
    result.most_idle = std::max(result.most_idle, idle);
  }
  return result;
}

TEST(SpareServerPolicy, AThousandConnectionsASecondNeverWait) {
  // The c10k ramp: 1,000 connections/s are 10 per 10 ms round.
  const Ramp result = ramp(10);
  EXPECT_EQ(result.busy, 10'000u);
  EXPECT_EQ(result.most_waiting, 0u);
  // Nor are children forked only to be retired: every fork and exit costs the machine that
  // serves the ramp.
  EXPECT_LE(result.most_idle, 256u);
}

TEST(SpareServerPolicy, WhenRoundsAreLateAConnectionWaitsOneRoundAtMost) {
  // A loaded machine: the master runs every 100 ms, and 100 connections come each time.
  const Ramp result = ramp(100);
  EXPECT_EQ(result.busy, 10'000u);
  EXPECT_LT(result.most_waiting, 100u);
  EXPECT_LE(result.most_idle, 256u);
}

}  // namespace
}  // namespace echolab::prefork
