#include "loadgen/schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace echolab::load {
namespace {

using namespace std::chrono_literals;

const Clock::time_point kStart = Clock::time_point(1'000s);

TEST(OpenLoopSchedule, RequestKIsDueKPeriodsAfterTheStart) {
  const OpenLoopSchedule schedule(kStart, 10ms);
  EXPECT_EQ(schedule.due(0), kStart);
  EXPECT_EQ(schedule.due(1), kStart + 10ms);
  EXPECT_EQ(schedule.due(250), kStart + 2'500ms);
}

TEST(OpenLoopSchedule, CountsTheRequestsDueByAMoment) {
  const OpenLoopSchedule schedule(kStart, 10ms);
  EXPECT_EQ(schedule.due_by(kStart - 1ns), 0U);
  EXPECT_EQ(schedule.due_by(kStart), 1U);  // request 0 is due at the start
  EXPECT_EQ(schedule.due_by(kStart + 10ms - 1ns), 1U);
  EXPECT_EQ(schedule.due_by(kStart + 10ms), 2U);
  EXPECT_EQ(schedule.due_by(kStart + 2'500ms), 251U);
  // The edge is the sender's own rounding: request 3 of a 1/3 s period is due at 1 s exactly.
  const auto thirds = OpenLoopSchedule::for_connection(kStart, 3.0, 1, 0);
  EXPECT_EQ(thirds.due_by(kStart + 1s - 1ns), 3U);
  EXPECT_EQ(thirds.due_by(kStart + 1s), 4U);
}

TEST(OpenLoopSchedule, DoesNotDriftWhenThePeriodIsNotWholeNanoseconds) {
  // Three requests per second: 333,333,333.3 ns apart.
  const auto schedule = OpenLoopSchedule::for_connection(kStart, 3.0, 1, 0);
  EXPECT_EQ(schedule.due(3), kStart + 1s);
  EXPECT_EQ(schedule.due(3'000'000), kStart + 1'000'000s);
  EXPECT_EQ(schedule.due(1), kStart + 333'333'333ns);
}

TEST(OpenLoopSchedule, ConnectionsShareTheRateEvenly) {
  // 1,000 requests/s over 4 connections: together one request every millisecond.
  constexpr std::size_t kConnections = 4;
  std::vector<Clock::time_point> due_times;
  for (std::size_t connection = 0; connection < kConnections; ++connection) {
    const auto schedule =
        OpenLoopSchedule::for_connection(kStart, 1'000.0, kConnections, connection);
    EXPECT_EQ(schedule.period_ns(), 4e6);
    EXPECT_EQ(schedule.due(0), kStart + std::chrono::milliseconds(connection));
    for (std::uint64_t k = 0; k < 250; ++k) {
      due_times.push_back(schedule.due(k));
    }
  }
  std::sort(due_times.begin(), due_times.end());
  ASSERT_EQ(due_times.size(), 1'000u);
  for (std::size_t i = 0; i < due_times.size(); ++i) {
    EXPECT_EQ(due_times[i], kStart + std::chrono::milliseconds(i)) << i;
  }
}

TEST(RampOffset, SpreadsConnectionsEvenlyOverTheRamp) {
  EXPECT_EQ(ramp_offset(0, 1'000, 2s), 0ns);
  EXPECT_EQ(ramp_offset(500, 1'000, 2s), 1s);
  EXPECT_EQ(ramp_offset(999, 1'000, 2s), 1'998ms);
  for (std::size_t i = 1; i < 1'000; ++i) {
    EXPECT_LT(ramp_offset(i - 1, 1'000, 10s), ramp_offset(i, 1'000, 10s));
  }
}

TEST(RampOffset, NoRampOpensEverythingAtTheStart) {
  EXPECT_EQ(ramp_offset(0, 10, 0s), 0ns);
  EXPECT_EQ(ramp_offset(9, 10, 0s), 0ns);
  EXPECT_EQ(ramp_offset(0, 0, 5s), 0ns);
}

}  // namespace
}  // namespace echolab::load
