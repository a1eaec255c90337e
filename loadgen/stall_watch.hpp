// Stalls: stretches in which the server answered nothing while requests waited on it.
//
// A timeout only fires when one request outlives --timeout, and a freeze shorter than that,
// or one that began less than --timeout before the end of the run, would pass unseen. The
// watch looks at the whole process a few times per threshold instead: the answers counted
// so far and the requests outstanding now. Time counts only while some request is
// outstanding, so the idle gap of a hold between two intervals is not a stall.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace echolab::load {

// Times are since the start of the run (or, in a merged result, of its window).
struct Stall {
  std::chrono::nanoseconds start{0};
  std::chrono::nanoseconds length{0};
};

class StallWatch {
 public:
  explicit StallWatch(std::chrono::nanoseconds threshold) : threshold_(threshold) {}

  // How often to look: a tenth of the threshold, so that a stall's edges are known to that
  // (1 ms to 100 ms).
  static std::chrono::nanoseconds period_for(std::chrono::nanoseconds threshold);

  // One look at `now`: every answer the server gave so far (a count that only grows) and the
  // requests waiting for one now.
  void observe(std::chrono::nanoseconds now, std::uint64_t answers, std::uint64_t outstanding);
  // The run ended at `end`: a stall still going is kept, cut there.
  void finish(std::chrono::nanoseconds end);

  // As of the last look, how long the server has been silent, when that is already a stall.
  [[nodiscard]] std::optional<std::chrono::nanoseconds> ongoing() const;
  [[nodiscard]] const std::vector<Stall>& stalls() const { return stalls_; }

 private:
  void end_silence(std::chrono::nanoseconds at);

  std::chrono::nanoseconds threshold_;
  std::uint64_t answers_ = 0;
  std::chrono::nanoseconds last_look_{0};
  // The last look at which the server had just answered, or had nothing to answer, while
  // requests have been waiting ever since; none when the last look saw an answer.
  std::optional<std::chrono::nanoseconds> silent_since_;
  std::vector<Stall> stalls_;
};

}  // namespace echolab::load
