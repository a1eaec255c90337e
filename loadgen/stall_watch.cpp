#include "loadgen/stall_watch.hpp"

#include <algorithm>

namespace echolab::load {

std::chrono::nanoseconds StallWatch::period_for(std::chrono::nanoseconds threshold) {
  return std::clamp<std::chrono::nanoseconds>(threshold / 10, std::chrono::milliseconds(1),
                                              std::chrono::milliseconds(100));
}

void StallWatch::observe(std::chrono::nanoseconds now, std::uint64_t answers,
                         std::uint64_t outstanding) {
  const bool answered_or_idle = answers != answers_ || outstanding == 0;
  answers_ = answers;
  if (answered_or_idle) {
    end_silence(now);
  } else if (!silent_since_) {
    // The last answer (or the last moment with nothing to answer) came at the previous look
    // at the latest.
    silent_since_ = last_look_;
  }
  last_look_ = now;
}

void StallWatch::finish(std::chrono::nanoseconds end) { end_silence(end); }

std::optional<std::chrono::nanoseconds> StallWatch::ongoing() const {
  if (silent_since_ && last_look_ - *silent_since_ >= threshold_) {
    return last_look_ - *silent_since_;
  }
  return std::nullopt;
}

void StallWatch::end_silence(std::chrono::nanoseconds at) {
  if (silent_since_ && at - *silent_since_ >= threshold_) {
    stalls_.push_back({.start = *silent_since_, .length = at - *silent_since_});
  }
  silent_since_.reset();
}

}  // namespace echolab::load
