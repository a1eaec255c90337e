// echolab-load's own Prometheus endpoint (--metrics-listen): the run's requests, errors and
// client-observed latency as it goes, so that a Prometheus scraping the servers sees the load
// beside them. Series are named echolab_load_* (docs/loadgen.md lists them).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/metrics/metrics.hpp"
#include "loadgen/load_options.hpp"
#include "loadgen/load_stats.hpp"
#include "loadgen/worker_context.hpp"

namespace echolab::load {

// The run's totals at one moment: the sum of every thread's LiveCounters.
struct LoadSeries {
  std::uint64_t requests = 0;
  std::array<std::uint64_t, kErrorKinds.size()> errors{};
  std::array<std::uint64_t, metrics::kRequestDurationBuckets.size() + 1> latency_buckets{};
  std::uint64_t latency_sum_ns = 0;
  std::int64_t connections_open = 0;

  void add(const LiveCounters& live);
  [[nodiscard]] std::uint64_t total_errors() const;
};

// Serves the series of whatever source it follows; before the first follow() every series is
// zero. Scrapes run on the Exposer's threads, hence the lock around the source.
class LoadMetricsEndpoint {
 public:
  // Throws std::runtime_error naming --metrics-listen when the endpoint cannot be bound.
  LoadMetricsEndpoint(const Endpoint& endpoint, const LoadOptions& options);
  ~LoadMetricsEndpoint();
  LoadMetricsEndpoint(const LoadMetricsEndpoint&) = delete;
  LoadMetricsEndpoint& operator=(const LoadMetricsEndpoint&) = delete;
  LoadMetricsEndpoint(LoadMetricsEndpoint&&) = delete;
  LoadMetricsEndpoint& operator=(LoadMetricsEndpoint&&) = delete;

  // From now on each scrape reads `source`; it must stay callable until the next follow().
  void follow(std::function<LoadSeries()> source);

 private:
  class Collectable;
  std::shared_ptr<Collectable> collectable_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
};

}  // namespace echolab::load
