// A log-linear latency histogram in the manner of HdrHistogram.
//
// Debian 12 packages no HdrHistogram library for C or C++, so echolab carries this small
// one. Values are unsigned integers (echolab-load records nanoseconds). Every power-of-two
// range above 256 is split into 128 equal sub-buckets, so a recorded value is known to
// within 1/128 (0.8 %) of itself; values below 256 are exact. The counters cover values up
// to kHighestTrackable (a little over one hour in nanoseconds); larger values are kept in
// the top bucket and still reach max(). One histogram belongs to one thread; merge() adds
// the histograms of several threads when the run is over.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace echolab::load {

class LatencyHistogram {
 public:
  // 2^42 ns is about 73 minutes.
  static constexpr std::uint64_t kHighestTrackable = (std::uint64_t{1} << 42) - 1;
  // A reported value exceeds the true one by at most this fraction of it.
  static constexpr double kRelativePrecision = 1.0 / 128;

  // The layout, written with every histogram so that a reader can refuse one it cannot add.
  static constexpr std::uint64_t kExactBelow = 256;  // values below get a counter each
  static constexpr std::uint64_t kSubBuckets = 128;  // counters per power of two above

  // One counter, named by the highest value it holds (its upper edge).
  struct Bucket {
    std::uint64_t highest_value = 0;
    std::uint64_t count = 0;
  };
  // What the counters alone lose: the exact extremes and the sum behind mean().
  struct Exact {
    std::uint64_t min = 0;
    std::uint64_t max = 0;
    double sum = 0;
  };

  LatencyHistogram();

  // A histogram as written by non_empty_buckets() and exact(); throws std::invalid_argument
  // when a bucket's value is not an upper edge of this layout or appears twice.
  static LatencyHistogram restore(std::span<const Bucket> buckets, const Exact& exact);

  void record(std::uint64_t value);
  void merge(const LatencyHistogram& other);

  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  [[nodiscard]] std::uint64_t max() const { return max_; }
  [[nodiscard]] double mean() const;
  [[nodiscard]] Exact exact() const { return {.min = min(), .max = max_, .sum = sum_}; }
  // The counters that are not zero, lowest values first: the histogram without loss.
  [[nodiscard]] std::vector<Bucket> non_empty_buckets() const;

  // The smallest recorded value v such that `percentile` % of the values are <= v, as the
  // upper edge of its sub-bucket (never below the true value, never above max()).
  // 0 for an empty histogram; percentile 100 gives max().
  [[nodiscard]] std::uint64_t value_at_percentile(double percentile) const;

 private:
  static std::size_t index_of(std::uint64_t value);
  static std::uint64_t highest_equivalent(std::size_t index);

  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  double sum_ = 0;  // a double: an hour in ns times millions of samples overflows 64 bits
};

}  // namespace echolab::load
