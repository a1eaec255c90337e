// What the connections of one event-loop thread share: the plan of the run (read-only),
// the thread's statistics, and counters the progress line reads from another thread.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "common/metrics/metrics.hpp"

#include "loadgen/load_options.hpp"
#include "loadgen/load_stats.hpp"
#include "loadgen/request_template.hpp"
#include "loadgen/schedule.hpp"
#include "loadgen/second_series.hpp"

namespace echolab::load {

// Fixed before the threads start and never written after.
struct RunPlan {
  LoadOptions options;
  RequestTemplate requests;
  asio::ip::tcp::endpoint endpoint;
  Clock::time_point start{};
  Clock::time_point hold_start{};  // start + ramp: every connection should be open from here
};

// Written only by the owning thread, read by the progress line and the --metrics-listen
// endpoint; padded to its own cache line so that two threads' counters never share one.
// They count exactly what LoadStats counts, so the endpoint's totals equal the JSON's.
struct alignas(64) LiveCounters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> errors{0};
  std::array<std::atomic<std::uint64_t>, kErrorKinds.size()> errors_by_kind{};
  // The servers' request duration buckets (not cumulative; the last is +Inf), so that the
  // client's view and the server's can be compared bucket for bucket.
  std::array<std::atomic<std::uint64_t>, metrics::kRequestDurationBuckets.size() + 1>
      latency_buckets{};
  std::atomic<std::uint64_t> latency_sum_ns{0};
  // Requests sent whose replies are owed: the stall watch counts time only while some are.
  std::atomic<std::uint64_t> outstanding{0};

  void count_replies(std::uint64_t replies, std::uint64_t latency_ns) {
    add(requests, replies);
    const double seconds = static_cast<double>(latency_ns) / 1e9;
    add(latency_buckets[metrics::bucket_index(metrics::kRequestDurationBuckets, seconds)], replies);
    add(latency_sum_ns, latency_ns * replies);
  }
  void count_error(ErrorKind kind) {
    add(errors, 1);
    add(errors_by_kind[static_cast<std::size_t>(kind)], 1);
  }

  // The owner is the only writer, so a plain load and store is enough (no locked add).
  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t amount) {
    counter.store(counter.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
  }
  static void subtract(std::atomic<std::uint64_t>& counter, std::uint64_t amount) {
    counter.store(counter.load(std::memory_order_relaxed) - amount, std::memory_order_relaxed);
  }
};

// Connections open across all threads, and the most that were open at once.
class ConnectionGauge {
 public:
  void opened() {
    const auto now_open = open_.fetch_add(1, std::memory_order_relaxed) + 1;
    auto peak = peak_.load(std::memory_order_relaxed);
    while (now_open > peak && !peak_.compare_exchange_weak(peak, now_open)) {
    }
  }
  void closed() { open_.fetch_sub(1, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t open() const { return open_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t peak() const { return peak_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> open_{0};
  std::atomic<std::int64_t> peak_{0};
};

// A connection's own receive buffer: room for one batch of replies, within 1-16 KiB so that
// 10,000 held connections cost at most a few tens of MiB.
inline std::size_t receive_buffer_bytes(const RunPlan& plan) {
  constexpr std::size_t kHttpHeadAllowance = 256;  // status line and headers of one reply
  const std::size_t reply = plan.requests.payload.size() +
                            (plan.options.protocol == WireProtocol::http ? kHttpHeadAllowance : 0);
  return std::clamp<std::size_t>(reply * plan.requests.requests_per_batch, 1024, 16 * 1024);
}

struct WorkerContext {
  const RunPlan& plan;
  asio::io_context& io;
  ConnectionGauge& gauge;
  LoadStats stats{};
  // The same counts second by second; finished when the thread stops.
  SecondSeries series{plan.start};
  LiveCounters live{};
  // Where a connection whose own small buffer came back full drains the rest of its socket.
  // It does so within one handler, so the thread's connections can share this one.
  std::vector<char> spill_buffer = std::vector<char>(64 * 1024);
  // Set by the thread that ends the run, the moment it ends: from then on no handler acts on
  // what its socket brings, even before the thread gets round to closing the connections.
  std::atomic<bool> stop_requested{false};

  [[nodiscard]] bool stopping() const { return stop_requested.load(std::memory_order_relaxed); }
};

}  // namespace echolab::load
