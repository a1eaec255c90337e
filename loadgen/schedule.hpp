// When requests and connections are due, as pure arithmetic on time points.
//
// The open loop decides when a request is sent from the clock alone, never from when the
// previous reply came back. Latency is then measured from that intended send time, so a
// stalled server is charged for every request it kept waiting, not only the one it stalled
// on (the "coordinated omission" correction of wrk2).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace echolab::load {

using Clock = std::chrono::steady_clock;

// 0 when `to` is not after `from`.
inline std::uint64_t nanoseconds_between(Clock::time_point from, Clock::time_point to) {
  return to > from ? static_cast<std::uint64_t>((to - from).count()) : 0;
}

// "250 ms", for messages.
std::string milliseconds_text(std::chrono::nanoseconds time);

// Request k (counted from 0) of one connection is due at start + k * period.
class OpenLoopSchedule {
 public:
  OpenLoopSchedule() = default;
  OpenLoopSchedule(Clock::time_point start, std::chrono::nanoseconds period);

  // Connection `index` of `connections` sharing `total_rate` requests per second, all
  // starting at `start`: each gets total_rate / connections, shifted by index / total_rate
  // so that together they send at an even pace rather than in bursts.
  static OpenLoopSchedule for_connection(Clock::time_point start, double total_rate,
                                         std::size_t connections, std::size_t index);

  [[nodiscard]] Clock::time_point due(std::uint64_t request) const;
  // How many requests fell due at or before `end`: those the run owed by then.
  [[nodiscard]] std::uint64_t due_by(Clock::time_point end) const;

  [[nodiscard]] Clock::time_point start() const { return start_; }
  [[nodiscard]] double period_ns() const { return period_ns_; }

 private:
  OpenLoopSchedule(Clock::time_point start, double period_ns);

  Clock::time_point start_{};
  // A double, so that a period like 1/3 s does not drift by a nanosecond per request.
  double period_ns_ = 0;
};

// The moment connection `index` of `count` opens after the start of the run: spread evenly
// over `ramp`, all at once when the ramp is zero.
std::chrono::nanoseconds ramp_offset(std::size_t index, std::size_t count,
                                     std::chrono::nanoseconds ramp);

}  // namespace echolab::load
