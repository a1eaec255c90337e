#include "loadgen/second_series.hpp"

#include <algorithm>
#include <numeric>
#include <utility>

namespace echolab::load {

LatencyHistogram SecondCounts::latency_ns() const {
  return LatencyHistogram::restore(latency_buckets, latency_exact);
}

std::uint64_t SecondCounts::total_errors() const {
  return std::accumulate(errors.begin(), errors.end(), std::uint64_t{0});
}

void SecondCounts::merge(const SecondCounts& other) {
  requests += other.requests;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    errors[i] += other.errors[i];
  }
  if (!other.latency_buckets.empty()) {
    LatencyHistogram latency = latency_ns();
    latency.merge(other.latency_ns());
    latency_buckets = latency.non_empty_buckets();
    latency_exact = latency.exact();
  }
  if (other.connections_open) {
    connections_open = connections_open.value_or(0) + *other.connections_open;
  }
  duration_s = std::max(duration_s, other.duration_s);
}

SecondSeries SecondSeries::restore(std::vector<SecondCounts> seconds) {
  SecondSeries series;
  series.seconds_ = std::move(seconds);
  series.current_ = series.seconds_.empty() ? 0 : series.seconds_.size() - 1;
  series.finished_ = true;
  return series;
}

std::size_t SecondSeries::second_of(Clock::time_point now) const {
  return now > start_ ? static_cast<std::size_t>((now - start_) / kSecond) : 0;
}

SecondCounts& SecondSeries::counts_of(std::size_t second) {
  if (!finished_) {
    move_to(second);
  }
  if (seconds_.empty()) {
    seconds_.emplace_back();
  }
  // Later than the current second only after finish(); earlier only if a caller's clock
  // reading was older than the last one: both are counted in the nearest second there is.
  return seconds_[std::min(second, current_)];
}

void SecondSeries::move_to(std::size_t second) {
  if (seconds_.empty()) {
    seconds_.resize(second + 1);
    current_ = second;
    return;
  }
  if (second <= current_) {
    return;
  }
  seal_current();
  seconds_.resize(second + 1);
  current_ = second;
}

void SecondSeries::seal_current() {
  if (seconds_.empty() || current_latency_.count() == 0) {
    return;
  }
  SecondCounts& current = seconds_[current_];
  current.latency_buckets = current_latency_.non_empty_buckets();
  current.latency_exact = current_latency_.exact();
  current_latency_ = LatencyHistogram();
}

void SecondSeries::record_replies(Clock::time_point now, std::uint64_t replies,
                                  std::uint64_t latency_ns) {
  const std::size_t second = second_of(now);
  SecondCounts& counts = counts_of(second);
  counts.requests += replies;
  if (finished_) {
    // A reply counted after the end (a thread's handler racing its stop) joins the last
    // second, its latency with it, so that a second's count is always its histogram's.
    LatencyHistogram latency = counts.latency_ns();
    for (std::uint64_t i = 0; i < replies; ++i) {
      latency.record(latency_ns);
    }
    counts.latency_buckets = latency.non_empty_buckets();
    counts.latency_exact = latency.exact();
    return;
  }
  for (std::uint64_t i = 0; i < replies; ++i) {
    current_latency_.record(latency_ns);
  }
}

void SecondSeries::count_error(Clock::time_point now, ErrorKind kind) {
  ++counts_of(second_of(now)).errors[static_cast<std::size_t>(kind)];
}

void SecondSeries::count_errors_at_end(ErrorKind kind, std::uint64_t count) {
  if (seconds_.empty()) {
    seconds_.emplace_back();
  }
  seconds_.back().errors[static_cast<std::size_t>(kind)] += count;
}

void SecondSeries::set_connections_open(std::size_t second, std::uint64_t open) {
  if (second < seconds_.size()) {
    seconds_[second].connections_open = open;
  }
}

void SecondSeries::finish(Clock::time_point end) {
  seal_current();
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start_);
  // A run of exactly k seconds has seconds 0..k-1, the last one full.
  const std::size_t last =
      elapsed.count() > 0
          ? static_cast<std::size_t>((elapsed - std::chrono::nanoseconds(1)) / kSecond)
          : 0;
  if (seconds_.size() > last + 1) {
    for (std::size_t late = last + 1; late < seconds_.size(); ++late) {
      seconds_[last].merge(seconds_[late]);
    }
  }
  seconds_.resize(last + 1);
  const auto in_last = elapsed - std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     kSecond * static_cast<std::int64_t>(last));
  seconds_[last].duration_s = std::clamp(std::chrono::duration<double>(in_last).count(), 0.0, 1.0);
  current_ = last;
  finished_ = true;
}

void SecondSeries::merge(const SecondSeries& other, std::size_t offset) {
  if (other.seconds_.empty()) {
    return;
  }
  const std::size_t had = seconds_.size();
  seconds_.resize(std::max(had, other.seconds_.size() + offset));
  for (std::size_t i = 0; i < other.seconds_.size(); ++i) {
    if (i + offset < had) {
      seconds_[i + offset].merge(other.seconds_[i]);
    } else {
      seconds_[i + offset] = other.seconds_[i];  // keeps a partial last second's duration
    }
  }
  current_ = seconds_.size() - 1;
  finished_ = true;
}

}  // namespace echolab::load
