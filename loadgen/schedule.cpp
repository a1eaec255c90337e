#include "loadgen/schedule.hpp"

#include <cmath>

namespace echolab::load {

std::string milliseconds_text(std::chrono::nanoseconds time) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(time).count()) +
         " ms";
}

OpenLoopSchedule::OpenLoopSchedule(Clock::time_point start, std::chrono::nanoseconds period)
    : OpenLoopSchedule(start, static_cast<double>(period.count())) {}

OpenLoopSchedule::OpenLoopSchedule(Clock::time_point start, double period_ns)
    : start_(start), period_ns_(period_ns) {}

OpenLoopSchedule OpenLoopSchedule::for_connection(Clock::time_point start, double total_rate,
                                                  std::size_t connections, std::size_t index) {
  const double global_period_ns = 1e9 / total_rate;
  const auto phase =
      std::chrono::nanoseconds(std::llround(static_cast<double>(index) * global_period_ns));
  return {start + phase, global_period_ns * static_cast<double>(connections)};
}

Clock::time_point OpenLoopSchedule::due(std::uint64_t request) const {
  return start_ + std::chrono::nanoseconds(std::llround(static_cast<double>(request) * period_ns_));
}

std::uint64_t OpenLoopSchedule::due_by(Clock::time_point end) const {
  if (end < start_ || period_ns_ <= 0) {
    return 0;
  }
  // The division gives the count to within one request; due() decides the edge exactly, with
  // the same rounding the sender uses.
  auto count =
      static_cast<std::uint64_t>(static_cast<double>((end - start_).count()) / period_ns_) + 1;
  while (due(count) <= end) {
    ++count;
  }
  while (count > 0 && due(count - 1) > end) {
    --count;
  }
  return count;
}

std::chrono::nanoseconds ramp_offset(std::size_t index, std::size_t count,
                                     std::chrono::nanoseconds ramp) {
  if (count == 0 || ramp.count() <= 0) {
    return std::chrono::nanoseconds::zero();
  }
  const long double share = static_cast<long double>(index) / static_cast<long double>(count);
  return std::chrono::nanoseconds(std::llround(share * static_cast<long double>(ramp.count())));
}

}  // namespace echolab::load
