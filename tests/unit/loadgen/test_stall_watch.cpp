#include "loadgen/stall_watch.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace echolab::load {
namespace {

using namespace std::chrono_literals;

TEST(StallWatch, SilenceWithRequestsOutstandingForTheThresholdIsAStall) {
  StallWatch watch(1s);
  watch.observe(100ms, 10, 5);
  watch.observe(200ms, 20, 5);  // the last answers
  watch.observe(300ms, 20, 5);
  watch.observe(1'100ms, 20, 5);
  EXPECT_EQ(watch.ongoing(), std::nullopt);  // 900 ms: not yet
  watch.observe(1'200ms, 20, 5);
  EXPECT_EQ(watch.ongoing(), 1s);
  watch.observe(2'500ms, 21, 5);  // answered again
  EXPECT_EQ(watch.ongoing(), std::nullopt);
  ASSERT_EQ(watch.stalls().size(), 1U);
  EXPECT_EQ(watch.stalls()[0].start, 200ms);
  EXPECT_EQ(watch.stalls()[0].length, 2'300ms);
}

TEST(StallWatch, ASilenceShorterThanTheThresholdIsNone) {
  StallWatch watch(1s);
  watch.observe(0ms, 0, 1);
  watch.observe(500ms, 0, 1);
  watch.observe(999ms, 1, 1);
  watch.finish(1'500ms);
  EXPECT_TRUE(watch.stalls().empty());
}

TEST(StallWatch, TimeWithNothingOutstandingIsNotAStall) {
  // A hold between two intervals: no answer for 5 s, but nothing was asked either.
  StallWatch watch(1s);
  watch.observe(0ms, 0, 3);
  watch.observe(100ms, 3, 0);
  for (auto now = 200ms; now <= 5s; now += 100ms) {
    watch.observe(now, 3, 0);
  }
  watch.observe(5'100ms, 3, 3);  // the next interval's requests
  watch.observe(5'200ms, 6, 0);
  watch.finish(6s);
  EXPECT_TRUE(watch.stalls().empty());
}

TEST(StallWatch, AStallStillGoingAtTheEndIsCutThere) {
  StallWatch watch(1s);
  watch.observe(0ms, 0, 2);
  watch.observe(500ms, 4, 2);
  watch.observe(600ms, 4, 2);
  watch.finish(3s);
  ASSERT_EQ(watch.stalls().size(), 1U);
  EXPECT_EQ(watch.stalls()[0].start, 500ms);
  EXPECT_EQ(watch.stalls()[0].length, 2'500ms);
}

TEST(StallWatch, AServerThatNeverAnswersStalledFromTheStart) {
  StallWatch watch(1s);
  watch.observe(10ms, 0, 1);
  watch.observe(20ms, 0, 1);
  watch.finish(2s);
  ASSERT_EQ(watch.stalls().size(), 1U);
  EXPECT_EQ(watch.stalls()[0].start, 0ms);
  EXPECT_EQ(watch.stalls()[0].length, 2s);
}

TEST(StallWatch, LooksATenthOfTheThresholdApartWithinBounds) {
  EXPECT_EQ(StallWatch::period_for(1s), 100ms);
  EXPECT_EQ(StallWatch::period_for(200ms), 20ms);
  EXPECT_EQ(StallWatch::period_for(1ms), 1ms);
  EXPECT_EQ(StallWatch::period_for(1h), 100ms);
}

}  // namespace
}  // namespace echolab::load
