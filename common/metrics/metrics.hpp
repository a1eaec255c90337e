// The metrics contract (docs/metrics.md), in one place: names, labels, buckets, and the
// prometheus-cpp objects the threads and pool servers report into.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/metrics/proc_stats.hpp"
#include "common/protocol/client_deadline.hpp"
#include "common/server/server_options.hpp"

namespace echolab::metrics {

// Bucket upper bounds in seconds. Shared with the prefork scoreboard, which keeps the same
// buckets in shared memory because prometheus-cpp cannot aggregate across processes.
inline constexpr std::array<double, 16> kRequestDurationBuckets = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   1.0,   5.0};
inline constexpr std::array<double, 14> kSpawnBuckets = {
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001,    0.0025,  0.005,    0.01,    0.025,  0.1,     1.0};

// The HTTP status labels echolab_request_errors_total is pre-created with, so a dashboard
// sees a zero instead of nothing.
inline constexpr std::array<int, 7> kErrorStatuses = {400, 404, 405, 408, 413, 431, 503};

// Index of the bucket `value` falls in, as prometheus::Histogram::Observe chooses it: the
// first upper bound >= value, or the +Inf bucket after the last.
template <std::size_t N>
std::size_t bucket_index(const std::array<double, N>& bounds, double value) {
  return static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) -
                                  bounds.begin());
}

}  // namespace echolab::metrics

namespace echolab {

// Running totals of the contract's counters and histograms, for a server whose numbers live
// outside prometheus-cpp objects: prefork's children count into a scoreboard in shared
// memory, and its metrics process sums the slots into one of these at scrape time.
struct MetricsTotals {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_rejected = 0;
  std::uint64_t connections_lost = 0;
  std::int64_t connections_active = 0;
  std::uint64_t http_requests = 0;
  std::uint64_t raw_requests = 0;
  std::array<std::uint64_t, metrics::kErrorStatuses.size()> errors_by_status{};
  // Connections closed by each client timeout, in the order of kTimeoutKinds.
  std::array<std::uint64_t, kTimeoutKinds.size()> timeouts_by_kind{};
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  // Per-bucket (not cumulative) counts; the last entry is the +Inf bucket.
  std::array<std::uint64_t, metrics::kRequestDurationBuckets.size() + 1> request_duration_buckets{};
  double request_duration_sum = 0;
  std::array<std::uint64_t, metrics::kSpawnBuckets.size() + 1> spawn_buckets{};
  double spawn_sum = 0;
  std::int64_t workers_idle = 0;
  std::int64_t workers_busy = 0;
  std::uint64_t worker_crashes = 0;
  // What the workers count of their own context switches. Not a ServerMetrics series:
  // advance_to leaves it to the /proc collectable, which adds the other processes' counts.
  ContextSwitches worker_switches;
};

// Counters, gauges and histograms of the contract, every series labelled model=<model>. The
// servers count elsewhere (prefork's scoreboard, the stripes of common/metrics/striped_metrics) and
// bring these series up to their sums at each scrape with advance_to().
//
// A connection refused over a cap counts in connections_rejected only: accepted and active
// count the connections that were served.
class ServerMetrics {
 public:
  explicit ServerMetrics(Model model);

  // Fork or thread start until the worker is ready; rare enough to go straight in.
  void worker_spawned(double seconds);

  // Moves every series forward to `totals` (counters and histograms by the difference from
  // the previous call, gauges set). Totals that went backwards are ignored, never applied.
  void advance_to(const MetricsTotals& totals);

  [[nodiscard]] std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  // Raw pointers into registry_-owned families (prometheus-cpp's own ownership model).
  prometheus::Counter* accepted_;
  prometheus::Gauge* active_;
  prometheus::Counter* rejected_;
  prometheus::Counter* lost_;
  prometheus::Counter* http_requests_;
  prometheus::Counter* raw_requests_;
  std::array<prometheus::Counter*, metrics::kErrorStatuses.size()> known_errors_{};
  std::array<prometheus::Counter*, kTimeoutKinds.size()> timeouts_{};
  prometheus::Counter* bytes_received_;
  prometheus::Counter* bytes_sent_;
  prometheus::Histogram* request_duration_;
  prometheus::Histogram* spawn_;
  prometheus::Gauge* idle_workers_;
  prometheus::Gauge* busy_workers_;
  prometheus::Counter* crashes_;

  std::mutex advance_mutex_;
  MetricsTotals advanced_;  // the highest totals applied so far, per field
};

// What a server hands the Exposer: at each scrape, `metrics` is first brought up to
// `totals()` (counts kept outside prometheus-cpp), then its registry is collected.
std::shared_ptr<prometheus::Collectable> make_advancing_collectable(
    ServerMetrics& metrics, std::function<MetricsTotals()> totals);

// Scrape-time values from /proc, summed over every process (and its threads) that
// `processes()` returns when scraped: echolab_memory_rss_bytes, echolab_memory_pss_bytes,
// echolab_context_switches_total{kind}, echolab_processes, echolab_threads. The context
// switches never go down, also when processes exit; memory readings of many workers may be
// a few scrapes old (ProcStatsReader in common/metrics/proc_stats.hpp says how old).
std::shared_ptr<prometheus::Collectable> make_proc_stats_collectable(
    Model model, std::function<ServerProcesses()> processes);

// Serves GET /metrics on `endpoint` (prometheus-cpp's Exposer, its own threads). Throws
// std::runtime_error naming the endpoint when it cannot be bound. IPv4 only: Debian's
// civetweb, under the Exposer, is built without IPv6.
class MetricsEndpoint {
 public:
  MetricsEndpoint(const Endpoint& endpoint,
                  const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);
  ~MetricsEndpoint();  // stops serving within milliseconds
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  [[nodiscard]] std::uint16_t port() const;  // the bound port, also after binding port 0

 private:
  Endpoint endpoint_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;  // kept alive here
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace echolab
