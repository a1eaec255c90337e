// Repeats a measurement within a time budget, so that every probe's run time stays bounded
// on a slow or busy machine; the summaries say how many samples were actually taken.
#pragma once

#include <chrono>
#include <vector>

namespace echolab::probe {

using SamplingClock = std::chrono::steady_clock;

inline SamplingClock::time_point deadline_after(double seconds) {
  return SamplingClock::now() + std::chrono::duration_cast<SamplingClock::duration>(
                                    std::chrono::duration<double>(seconds));
}

// Runs `measure` up to `samples` times and returns what each run returned, stopping early
// once `deadline` has passed (but never before the first run has finished).
template <typename Measure>
auto collect_until(int samples, SamplingClock::time_point deadline, Measure measure) {
  std::vector<decltype(measure())> results;
  results.reserve(static_cast<std::size_t>(samples));
  while (results.size() < static_cast<std::size_t>(samples)) {
    results.push_back(measure());
    if (SamplingClock::now() >= deadline) break;
  }
  return results;
}

template <typename Measure>
auto collect_within_budget(int samples, double budget_seconds, Measure measure) {
  return collect_until(samples, deadline_after(budget_seconds), measure);
}

}  // namespace echolab::probe
