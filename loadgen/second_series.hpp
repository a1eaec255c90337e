// A run second by second: what each second from the start of the run completed, failed and
// took, so that a stall, a ramp or a warm-up shows where the run's totals hide it.
//
// Each event-loop thread keeps its own series, like its totals, and the series are merged
// second by second when the run ends. The second being counted has a full (dense) histogram,
// so recording a reply costs what recording it in the totals costs; when a later second
// begins, the finished one keeps only its non-empty counters (16 bytes each). Latencies of one
// second from 10 µs to 100 ms fill a few hundred of them, so a finished second costs a few
// KiB per thread: a 1-hour run about 3,600 × 5 KiB ≈ 18 MiB per thread (at the very worst,
// every counter of the layout filled each second, 3,600 × 74 KiB ≈ 260 MiB).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "loadgen/histogram.hpp"
#include "loadgen/load_stats.hpp"
#include "loadgen/schedule.hpp"

namespace echolab::load {

// One second of the run.
struct SecondCounts {
  std::uint64_t requests = 0;  // good replies received in this second
  std::array<std::uint64_t, kErrorKinds.size()> errors{};
  // The latencies of those replies: the histogram's non-empty counters and its exact figures.
  std::vector<LatencyHistogram::Bucket> latency_buckets;
  LatencyHistogram::Exact latency_exact;
  // Connections open at the end of the second, when the run sampled them.
  std::optional<std::uint64_t> connections_open;
  // 1 but for the last second of a run, which ends with the run.
  double duration_s = 1.0;

  [[nodiscard]] LatencyHistogram latency_ns() const;
  [[nodiscard]] std::uint64_t total_errors() const;
  // Adds `other`'s counts, latencies and connections open; the longer duration stays.
  void merge(const SecondCounts& other);
};

class SecondSeries {
 public:
  static constexpr std::chrono::seconds kSecond{1};

  SecondSeries() = default;
  // Second 0 begins at `start`.
  explicit SecondSeries(Clock::time_point start) : start_(start) {}
  // A series as read back (from a result's JSON): complete, nothing more is recorded.
  static SecondSeries restore(std::vector<SecondCounts> seconds);

  // `now` is the time the caller already read for the event: no clock is read here.
  void record_replies(Clock::time_point now, std::uint64_t replies, std::uint64_t latency_ns);
  void count_error(Clock::time_point now, ErrorKind kind);
  // Errors known only once the run is over (connects left unanswered): its last second.
  void count_errors_at_end(ErrorKind kind, std::uint64_t count);
  void set_connections_open(std::size_t second, std::uint64_t open);

  // Ends the series at `end`: the seconds up to it exist (empty ones included), anything
  // counted after it belongs to the last one, whose duration is what the run had left.
  void finish(Clock::time_point end);

  // Adds `other` second by second; its second 0 is this series' second `offset`.
  void merge(const SecondSeries& other, std::size_t offset = 0);

  // Complete once finish() was called (or the series was restored or merged).
  [[nodiscard]] const std::vector<SecondCounts>& seconds() const { return seconds_; }

 private:
  // The second `now` falls in; seconds before the start count as second 0.
  [[nodiscard]] std::size_t second_of(Clock::time_point now) const;
  // Makes `second` the one being counted, keeping the finished ones compactly.
  void move_to(std::size_t second);
  void seal_current();
  SecondCounts& counts_of(std::size_t second);

  Clock::time_point start_{};
  std::vector<SecondCounts> seconds_;  // finished seconds, then (while running) the current one
  std::size_t current_ = 0;
  LatencyHistogram current_latency_;
  bool finished_ = false;
};

}  // namespace echolab::load
