#include "loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>

namespace echolab::load {
namespace {

// Values below kExactLimit get a counter each; above it, each power of two [2^m, 2^(m+1))
// is cut into kSubBuckets counters of width 2^(m - kSubBucketBits).
constexpr unsigned kSubBucketBits = 7;
constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;  // 128
constexpr std::uint64_t kExactLimit = kSubBuckets * 2;                     // 256
static_assert(kSubBuckets == LatencyHistogram::kSubBuckets);
static_assert(kExactLimit == LatencyHistogram::kExactBelow);

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(index_of(kHighestTrackable) + 1, 0) {}

std::size_t LatencyHistogram::index_of(std::uint64_t value) {
  if (value < kExactLimit) {
    return value;
  }
  const unsigned top_bit = 63 - static_cast<unsigned>(std::countl_zero(value));
  const unsigned shift = top_bit - kSubBucketBits;                  // >= 1 because value >= 256
  const std::uint64_t sub_bucket = (value >> shift) - kSubBuckets;  // 0..127
  return kExactLimit + (shift - 1) * kSubBuckets + sub_bucket;
}

std::uint64_t LatencyHistogram::highest_equivalent(std::size_t index) {
  if (index < kExactLimit) {
    return index;
  }
  const std::uint64_t above = index - kExactLimit;
  const unsigned shift = static_cast<unsigned>(above / kSubBuckets) + 1;
  const std::uint64_t sub_bucket = above % kSubBuckets + kSubBuckets;
  return ((sub_bucket + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t value) {
  ++counts_[index_of(std::min(value, kHighestTrackable))];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<double>(value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    counts_[i] += other.counts_[i];
  }
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

LatencyHistogram LatencyHistogram::restore(std::span<const Bucket> buckets, const Exact& exact) {
  LatencyHistogram histogram;
  for (const Bucket& bucket : buckets) {
    const std::uint64_t value = std::min(bucket.highest_value, kHighestTrackable);
    const std::size_t index = index_of(value);
    if (highest_equivalent(index) != bucket.highest_value) {
      throw std::invalid_argument(std::to_string(bucket.highest_value) +
                                  " is not the upper edge of a bucket");
    }
    if (histogram.counts_[index] != 0) {
      throw std::invalid_argument("bucket " + std::to_string(bucket.highest_value) + " twice");
    }
    histogram.counts_[index] = bucket.count;
    histogram.count_ += bucket.count;
  }
  if (histogram.count_ > 0) {
    histogram.min_ = exact.min;
    histogram.max_ = exact.max;
    histogram.sum_ = exact.sum;
  }
  return histogram;
}

std::vector<LatencyHistogram::Bucket> LatencyHistogram::non_empty_buckets() const {
  std::vector<Bucket> buckets;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) {
      buckets.push_back({.highest_value = highest_equivalent(i), .count = counts_[i]});
    }
  }
  return buckets;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

std::uint64_t LatencyHistogram::value_at_percentile(double percentile) const {
  if (count_ == 0) {
    return 0;
  }
  // The rank of the wanted value among the sorted samples, counted from 1. The small
  // relative slack keeps 99.9 % of 1000 at rank 999 although 99.9 has no exact double.
  const double exact_rank =
      std::clamp(percentile, 0.0, 100.0) * static_cast<double>(count_) / 100.0;
  const auto rank =
      std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(exact_rank * (1 - 1e-12))));
  if (rank >= count_) {
    return max_;  // exact even for values beyond kHighestTrackable
  }
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return std::clamp(highest_equivalent(i), min(), max_);
    }
  }
  return max_;
}

}  // namespace echolab::load
