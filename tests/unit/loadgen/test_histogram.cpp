#include "loadgen/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace echolab::load {
namespace {

// Percentiles given in hundredths, so the exact rank is integer arithmetic.
constexpr std::uint64_t kPercentilesTimes100[] = {5000, 9000, 9900, 9990, 9999, 10000};

// The value of rank ceil(p * n) in the sorted samples: the definition the histogram follows.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, std::uint64_t p_x100) {
  const std::uint64_t n = sorted.size();
  const std::uint64_t rank = std::max<std::uint64_t>(1, (p_x100 * n + 9999) / 10000);
  return sorted[rank - 1];
}

void expect_within_precision(const LatencyHistogram& histogram,
                             const std::vector<std::uint64_t>& samples) {
  std::vector<std::uint64_t> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  for (const std::uint64_t p_x100 : kPercentilesTimes100) {
    const auto exact = exact_percentile(sorted, p_x100);
    const double percentile = static_cast<double>(p_x100) / 100.0;
    const auto reported = histogram.value_at_percentile(percentile);
    EXPECT_GE(reported, exact) << "p" << percentile;
    EXPECT_LE(static_cast<double>(reported),
              static_cast<double>(exact) * (1 + LatencyHistogram::kRelativePrecision))
        << "p" << percentile;
  }
}

std::vector<std::uint64_t> log_uniform_samples(std::size_t count, double low, double high,
                                               std::uint32_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> exponent(std::log(low), std::log(high));
  std::vector<std::uint64_t> samples(count);
  for (auto& sample : samples) {
    sample = static_cast<std::uint64_t>(std::exp(exponent(random)));
  }
  return samples;
}

TEST(LatencyHistogram, EmptyReportsZeroes) {
  const LatencyHistogram histogram;
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.min(), 0u);
  EXPECT_EQ(histogram.max(), 0u);
  EXPECT_EQ(histogram.mean(), 0.0);
  EXPECT_EQ(histogram.value_at_percentile(50), 0u);
  EXPECT_EQ(histogram.value_at_percentile(100), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (std::uint64_t value = 1; value <= 200; ++value) {
    histogram.record(value);
  }
  EXPECT_EQ(histogram.value_at_percentile(50), 100u);
  EXPECT_EQ(histogram.value_at_percentile(99), 198u);
  EXPECT_EQ(histogram.value_at_percentile(100), 200u);
  EXPECT_EQ(histogram.min(), 1u);
  EXPECT_DOUBLE_EQ(histogram.mean(), 100.5);
}

TEST(LatencyHistogram, PercentilesMatchASortWithinPrecision) {
  // From 1 us to 1 hour, in nanoseconds: every range of the histogram is exercised.
  const auto samples = log_uniform_samples(200'000, 1e3, 3.6e12, 7);
  LatencyHistogram histogram;
  for (const auto sample : samples) {
    histogram.record(sample);
  }
  EXPECT_EQ(histogram.count(), samples.size());
  expect_within_precision(histogram, samples);
}

TEST(LatencyHistogram, NarrowLoopbackLikeDistribution) {
  // Most samples near 40 us with a long tail: the shape of a loopback run.
  std::mt19937_64 random(11);
  std::lognormal_distribution<double> latency(std::log(40'000.0), 0.6);
  std::vector<std::uint64_t> samples(100'000);
  LatencyHistogram histogram;
  for (auto& sample : samples) {
    sample = static_cast<std::uint64_t>(latency(random));
    histogram.record(sample);
  }
  expect_within_precision(histogram, samples);
}

TEST(LatencyHistogram, MaxAndMinAreExact) {
  LatencyHistogram histogram;
  histogram.record(123'456'789);
  histogram.record(1'000);
  histogram.record(987'654'321);
  EXPECT_EQ(histogram.max(), 987'654'321u);
  EXPECT_EQ(histogram.min(), 1'000u);
  EXPECT_EQ(histogram.value_at_percentile(100), 987'654'321u);
  // p99 of three samples is the largest; never reported above the true maximum.
  EXPECT_LE(histogram.value_at_percentile(99), histogram.max());
}

TEST(LatencyHistogram, ValuesBeyondTheRangeStillReachMax) {
  LatencyHistogram histogram;
  const std::uint64_t two_hours_ns = 7'200'000'000'000;
  ASSERT_GT(two_hours_ns, LatencyHistogram::kHighestTrackable);
  histogram.record(two_hours_ns);
  histogram.record(5);
  EXPECT_EQ(histogram.max(), two_hours_ns);
  EXPECT_EQ(histogram.value_at_percentile(100), two_hours_ns);
  EXPECT_EQ(histogram.value_at_percentile(50), 5u);
}

TEST(LatencyHistogram, TracksAtLeastOneHourInMicrosecondsOrNanoseconds) {
  const std::uint64_t one_hour_ns = 3'600'000'000'000;
  EXPECT_GE(LatencyHistogram::kHighestTrackable, one_hour_ns);
  LatencyHistogram histogram;
  histogram.record(one_hour_ns);
  histogram.record(one_hour_ns - 1'000'000'000);
  const auto p50 = histogram.value_at_percentile(50);
  EXPECT_GE(p50, one_hour_ns - 1'000'000'000);
  EXPECT_LE(static_cast<double>(p50), (one_hour_ns - 1e9) * (1 + 1.0 / 128));
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  const auto first = log_uniform_samples(50'000, 1e4, 1e8, 1);
  const auto second = log_uniform_samples(30'000, 1e5, 1e9, 2);
  LatencyHistogram a;
  LatencyHistogram b;
  LatencyHistogram all;
  for (const auto sample : first) {
    a.record(sample);
    all.record(sample);
  }
  for (const auto sample : second) {
    b.record(sample);
    all.record(sample);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_NEAR(a.mean(), all.mean(), all.mean() * 1e-12);
  for (const double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    EXPECT_EQ(a.value_at_percentile(p), all.value_at_percentile(p)) << p;
  }
  std::vector<std::uint64_t> both = first;
  both.insert(both.end(), second.begin(), second.end());
  expect_within_precision(a, both);
}

TEST(LatencyHistogram, MergingAnEmptyHistogramChangesNothing) {
  LatencyHistogram histogram;
  histogram.record(50'000);
  histogram.merge(LatencyHistogram{});
  EXPECT_EQ(histogram.count(), 1u);
  EXPECT_EQ(histogram.min(), 50'000u);
  EXPECT_EQ(histogram.max(), 50'000u);
}

TEST(LatencyHistogram, RestoredFromItsNonEmptyBucketsItIsTheSame) {
  LatencyHistogram original;
  for (const std::uint64_t value :
       std::vector<std::uint64_t>{0U, 7U, 255U, 256U, 1'000U, 123'456U, 987'654'321U,
                                  LatencyHistogram::kHighestTrackable + 5}) {
    original.record(value);
    original.record(value);
  }
  const auto buckets = original.non_empty_buckets();
  EXPECT_EQ(buckets.size(), 8u);
  const LatencyHistogram restored = LatencyHistogram::restore(buckets, original.exact());
  EXPECT_EQ(restored.count(), original.count());
  EXPECT_EQ(restored.min(), original.min());
  EXPECT_EQ(restored.max(), original.max());
  EXPECT_DOUBLE_EQ(restored.mean(), original.mean());
  for (int half_percent = 0; half_percent <= 200; ++half_percent) {
    const double p = half_percent / 2.0;
    EXPECT_EQ(restored.value_at_percentile(p), original.value_at_percentile(p)) << p;
  }
}

TEST(LatencyHistogram, RestoreRefusesAValueThatIsNoBucketEdgeOrABucketTwice) {
  using Bucket = LatencyHistogram::Bucket;
  const std::vector<Bucket> not_an_edge = {{.highest_value = 256, .count = 1}};  // 256-257
  EXPECT_THROW(LatencyHistogram::restore(not_an_edge, {}), std::invalid_argument);
  const std::vector<Bucket> twice = {{.highest_value = 257, .count = 1},
                                     {.highest_value = 257, .count = 2}};
  EXPECT_THROW(LatencyHistogram::restore(twice, {}), std::invalid_argument);
  const std::vector<Bucket> beyond = {{.highest_value = UINT64_MAX, .count = 1}};
  EXPECT_THROW(LatencyHistogram::restore(beyond, {}), std::invalid_argument);
}

}  // namespace
}  // namespace echolab::load
