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
#include <vector>

namespace echolab::load {

class LatencyHistogram {
 public:
  // 2^42 ns is about 73 minutes.
  static constexpr std::uint64_t kHighestTrackable = (std::uint64_t{1} << 42) - 1;
  // A reported value exceeds the true one by at most this fraction of it.
  static constexpr double kRelativePrecision = 1.0 / 128;

  LatencyHistogram();

  void record(std::uint64_t value);
  void merge(const LatencyHistogram& other);

  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  [[nodiscard]] std::uint64_t max() const { return max_; }
  [[nodiscard]] double mean() const;

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
