#include "loadgen/second_series.hpp"

#include <gtest/gtest.h>

namespace echolab::load {
namespace {

using std::chrono::milliseconds;

const Clock::time_point kStart{std::chrono::hours(1)};

TEST(SecondSeries, EachEventCountsInTheSecondItHappenedFromTheStart) {
  SecondSeries series(kStart);
  series.record_replies(kStart + milliseconds(10), 2, 1'000);
  series.record_replies(kStart + milliseconds(999), 1, 3'000);
  series.record_replies(kStart + milliseconds(1'000), 4, 5'000);  // the first instant of second 1
  series.count_error(kStart + milliseconds(2'500), ErrorKind::reset);
  series.finish(kStart + milliseconds(3'000));

  const auto& seconds = series.seconds();
  ASSERT_EQ(seconds.size(), 3u);  // exactly 3 s: seconds 0, 1 and 2, the last one full
  EXPECT_EQ(seconds[0].requests, 3u);
  EXPECT_EQ(seconds[0].latency_ns().count(), 3u);
  EXPECT_EQ(seconds[0].latency_ns().max(), 3'000u);
  EXPECT_EQ(seconds[1].requests, 4u);
  EXPECT_EQ(seconds[1].latency_ns().min(), 5'000u);
  EXPECT_EQ(seconds[2].requests, 0u);
  EXPECT_EQ(seconds[2].errors[static_cast<std::size_t>(ErrorKind::reset)], 1u);
  EXPECT_EQ(seconds[2].total_errors(), 1u);
  EXPECT_DOUBLE_EQ(seconds[2].duration_s, 1.0);
}

TEST(SecondSeries, TheLastSecondIsPartialAndTakesWhatCameAfterTheEnd) {
  SecondSeries series(kStart);
  series.record_replies(kStart + milliseconds(500), 1, 1'000);
  series.record_replies(kStart + milliseconds(2'600), 1, 2'000);  // after the end: a racing handler
  series.finish(kStart + milliseconds(1'250));

  const auto& seconds = series.seconds();
  ASSERT_EQ(seconds.size(), 2u);
  EXPECT_DOUBLE_EQ(seconds[0].duration_s, 1.0);
  EXPECT_DOUBLE_EQ(seconds[1].duration_s, 0.25);
  EXPECT_EQ(seconds[1].requests, 1u);
  EXPECT_EQ(seconds[1].latency_ns().count(), 1u);
}

TEST(SecondSeries, SecondsWithoutEventsAreThereEmpty) {
  SecondSeries series(kStart);
  series.record_replies(kStart + milliseconds(4'200), 1, 1'000);
  series.finish(kStart + milliseconds(5'000));
  ASSERT_EQ(series.seconds().size(), 5u);
  for (std::size_t second = 0; second < 4; ++second) {
    EXPECT_EQ(series.seconds()[second].requests, 0u) << "second " << second;
  }
  EXPECT_EQ(series.seconds()[4].requests, 1u);
}

TEST(SecondSeries, MergeAddsSecondBySecondAndShiftsByTheOffset) {
  SecondSeries first(kStart);
  first.record_replies(kStart + milliseconds(100), 1, 1'000);
  first.finish(kStart + milliseconds(1'500));
  SecondSeries second(kStart);
  second.record_replies(kStart + milliseconds(200), 2, 9'000);
  second.finish(kStart + milliseconds(1'500));

  SecondSeries merged;
  merged.merge(first);
  merged.merge(second, 1);
  ASSERT_EQ(merged.seconds().size(), 3u);
  EXPECT_EQ(merged.seconds()[0].requests, 1u);
  EXPECT_EQ(merged.seconds()[1].requests, 2u);
  EXPECT_EQ(merged.seconds()[1].latency_ns().max(), 9'000u);
  // second 1 is the first's partial second and the second's full one
  EXPECT_DOUBLE_EQ(merged.seconds()[1].duration_s, 1.0);
  EXPECT_DOUBLE_EQ(merged.seconds()[2].duration_s, 0.5);
}

TEST(SecondSeries, MergedLatencyIsTheHistogramOfEverySampleOfTheSecond) {
  SecondSeries first(kStart);
  SecondSeries second(kStart);
  for (int i = 0; i < 99; ++i) {
    first.record_replies(kStart + milliseconds(10), 1, 100);
  }
  second.record_replies(kStart + milliseconds(10), 1, 1'000'000);
  first.finish(kStart + milliseconds(1'000));
  second.finish(kStart + milliseconds(1'000));
  first.merge(second);
  const LatencyHistogram latency = first.seconds()[0].latency_ns();
  EXPECT_EQ(latency.count(), 100u);
  EXPECT_EQ(latency.value_at_percentile(99.0), 100u);
  EXPECT_EQ(latency.max(), 1'000'000u);
}

TEST(SecondSeries, ConnectionsOpenAddUpInAMergeAndUnfinishedConnectsGoToTheLastSecond) {
  SecondSeries first(kStart);
  first.finish(kStart + milliseconds(2'000));
  first.set_connections_open(0, 5);
  first.set_connections_open(7, 1);  // past the end: not a second of the run
  SecondSeries second(kStart);
  second.finish(kStart + milliseconds(2'000));
  second.set_connections_open(0, 3);
  first.merge(second);
  first.count_errors_at_end(ErrorKind::connect_unfinished, 2);
  ASSERT_EQ(first.seconds().size(), 2u);
  EXPECT_EQ(first.seconds()[0].connections_open, 8u);
  EXPECT_FALSE(first.seconds()[1].connections_open.has_value());
  EXPECT_EQ(first.seconds()[1].errors[static_cast<std::size_t>(ErrorKind::connect_unfinished)], 2u);
}

}  // namespace
}  // namespace echolab::load
