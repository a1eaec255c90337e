// The contract's counters as plain 64-bit atomics in one array, for counting outside
// prometheus-cpp and summing at scrape time: prefork's scoreboard slots (one writer each, in
// shared memory) and the stripes of the threads and pool servers (common/metrics/striped_metrics).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common/metrics/metrics.hpp"

namespace echolab {

// Every counter, as an index into one array so that folding and summing are plain loops.
namespace field {
inline constexpr std::size_t connections_accepted = 0;
inline constexpr std::size_t connections_rejected = 1;
inline constexpr std::size_t http_requests = 2;
inline constexpr std::size_t raw_requests = 3;
inline constexpr std::size_t bytes_received = 4;
inline constexpr std::size_t bytes_sent = 5;
inline constexpr std::size_t request_duration_ns = 6;  // sum of the histogram, nanoseconds
inline constexpr std::size_t first_error = 7;          // one per metrics::kErrorStatuses
inline constexpr std::size_t first_timeout = first_error + metrics::kErrorStatuses.size();
inline constexpr std::size_t first_duration_bucket = first_timeout + kTimeoutKinds.size();
inline constexpr std::size_t voluntary_switches =  // after the buckets and the +Inf bucket
    first_duration_bucket + metrics::kRequestDurationBuckets.size() + 1;
// A prefork child's own count as getrusage() gives it, so that the metrics process need not
// read /proc/PID/status of 10,000 children at every scrape.
inline constexpr std::size_t involuntary_switches = voluntary_switches + 1;
inline constexpr std::size_t count = involuntary_switches + 1;
}  // namespace field

using Counter = std::atomic<std::uint64_t>;
static_assert(Counter::is_always_lock_free, "counters in shared memory must be lock-free atomics");

inline constexpr std::int64_t kNanosPerSecond = 1'000'000'000;  // durations are kept in ns

// For a counter only one thread writes: a load and a store, no locked read-modify-write on the
// hot path.
inline void add_single_writer(Counter& counter, std::uint64_t amount) {
  counter.store(counter.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
}

// Which index an HTTP status maps to, or -1 when it is not tracked (the Session answers
// errors only with metrics::kErrorStatuses).
inline int error_field(int status) {
  const auto& statuses = metrics::kErrorStatuses;
  const auto* found = std::find(statuses.begin(), statuses.end(), status);
  return found == statuses.end()
             ? -1
             : static_cast<int>(field::first_error +
                                static_cast<std::size_t>(found - statuses.begin()));
}

// Which request duration bucket `seconds` falls in (the last one is +Inf).
inline std::size_t duration_bucket(double seconds) {
  return metrics::bucket_index(metrics::kRequestDurationBuckets, seconds);
}

enum class Writers { one, many };

// With one writer a counter is moved by add_single_writer(); with many, by fetch_add.
template <Writers kWriters>
struct BasicWorkerCounters {
  std::array<Counter, field::count> values{};

  void add(std::size_t index, std::uint64_t amount) {
    if constexpr (kWriters == Writers::one) {
      add_single_writer(values[index], amount);
    } else {
      values[index].fetch_add(amount, std::memory_order_relaxed);
    }
  }
  void set(std::size_t index, std::uint64_t value) {
    values[index].store(value, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t get(std::size_t index) const {
    return values[index].load(std::memory_order_relaxed);
  }

  // A batch of `count` pipelined requests answered together in `seconds`: each of them
  // waited that long for its answer, so each is observed with the batch's time (as
  // echolab-load measures each reply of a pipelined batch from the batch's send).
  void add_requests(Protocol protocol, std::size_t count, double seconds) {
    if (count == 0) {
      return;
    }
    add(protocol == Protocol::raw ? field::raw_requests : field::http_requests, count);
    if (seconds < 0) {
      return;  // kUntimed
    }
    add(field::first_duration_bucket + duration_bucket(seconds), count);
    add(field::request_duration_ns,
        static_cast<std::uint64_t>(seconds * static_cast<double>(kNanosPerSecond)) *
            static_cast<std::uint64_t>(count));
  }
  void add_error(int status) {
    if (const int index = error_field(status); index >= 0) {
      add(static_cast<std::size_t>(index), 1);
    }
  }

  void add_timeout(TimeoutKind kind) {
    add(field::first_timeout + static_cast<std::size_t>(kind), 1);
  }

  // Adds these counters to the totals of the contract.
  void add_to(MetricsTotals& totals) const {
    totals.connections_accepted += get(field::connections_accepted);
    totals.connections_rejected += get(field::connections_rejected);
    totals.http_requests += get(field::http_requests);
    totals.raw_requests += get(field::raw_requests);
    totals.bytes_received += get(field::bytes_received);
    totals.bytes_sent += get(field::bytes_sent);
    totals.request_duration_sum +=
        static_cast<double>(get(field::request_duration_ns)) / static_cast<double>(kNanosPerSecond);
    for (std::size_t i = 0; i < totals.errors_by_status.size(); ++i) {
      totals.errors_by_status[i] += get(field::first_error + i);
    }
    for (std::size_t i = 0; i < totals.timeouts_by_kind.size(); ++i) {
      totals.timeouts_by_kind[i] += get(field::first_timeout + i);
    }
    for (std::size_t i = 0; i < totals.request_duration_buckets.size(); ++i) {
      totals.request_duration_buckets[i] += get(field::first_duration_bucket + i);
    }
    totals.worker_switches.voluntary += get(field::voluntary_switches);
    totals.worker_switches.involuntary += get(field::involuntary_switches);
  }
};

using WorkerCounters = BasicWorkerCounters<Writers::one>;
using SharedCounters = BasicWorkerCounters<Writers::many>;

}  // namespace echolab
