#include "loadgen/load_metrics.hpp"

#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

namespace echolab::load {

void LoadSeries::add(const LiveCounters& live) {
  requests += live.requests.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    errors[i] += live.errors_by_kind[i].load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < latency_buckets.size(); ++i) {
    latency_buckets[i] += live.latency_buckets[i].load(std::memory_order_relaxed);
  }
  latency_sum_ns += live.latency_sum_ns.load(std::memory_order_relaxed);
}

std::uint64_t LoadSeries::total_errors() const {
  std::uint64_t total = 0;
  for (const auto count : errors) {
    total += count;
  }
  return total;
}

namespace {

using Labels = std::vector<prometheus::ClientMetric::Label>;

prometheus::ClientMetric with_labels(Labels labels) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  return metric;
}

prometheus::ClientMetric counter(Labels labels, std::uint64_t value) {
  auto metric = with_labels(std::move(labels));
  metric.counter.value = static_cast<double>(value);
  return metric;
}

prometheus::ClientMetric latency_histogram(Labels labels, const LoadSeries& series) {
  auto metric = with_labels(std::move(labels));
  metric.histogram.bucket.reserve(metrics::kRequestDurationBuckets.size() + 1);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < metrics::kRequestDurationBuckets.size(); ++i) {
    cumulative += series.latency_buckets[i];
    metric.histogram.bucket.push_back(
        {.cumulative_count = cumulative, .upper_bound = metrics::kRequestDurationBuckets[i]});
  }
  cumulative += series.latency_buckets.back();
  metric.histogram.bucket.push_back(
      {.cumulative_count = cumulative, .upper_bound = std::numeric_limits<double>::infinity()});
  metric.histogram.sample_count = cumulative;
  metric.histogram.sample_sum = static_cast<double>(series.latency_sum_ns) / 1e9;
  return metric;
}

}  // namespace

class LoadMetricsEndpoint::Collectable final : public prometheus::Collectable {
 public:
  explicit Collectable(const LoadOptions& options)
      : target_{"target", options.target.to_string()}, shard_{"shard", options.shard.to_string()} {}

  void follow(std::function<LoadSeries()> source) {
    const std::lock_guard lock(mutex_);
    source_ = std::move(source);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    LoadSeries series;
    {
      const std::lock_guard lock(mutex_);
      if (source_) {
        series = source_();
      }
    }
    return families(series);
  }

 private:
  [[nodiscard]] Labels labels() const { return {target_, shard_}; }
  [[nodiscard]] Labels labels(std::string name, std::string value) const {
    Labels result = labels();
    result.push_back({std::move(name), std::move(value)});
    return result;
  }

  [[nodiscard]] std::vector<prometheus::MetricFamily> families(const LoadSeries& series) const {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> result;
    result.push_back({"echolab_load_requests_total",
                      "Requests of the run by outcome: ok (a good reply), error (a counted error, "
                      "one per failed request or connect)",
                      MetricType::Counter,
                      {counter(labels("outcome", "ok"), series.requests),
                       counter(labels("outcome", "error"), series.total_errors())}});
    std::vector<prometheus::ClientMetric> errors;
    errors.reserve(kErrorKinds.size());
    for (const auto kind : kErrorKinds) {
      errors.push_back(counter(labels("kind", std::string(to_string(kind))),
                               series.errors[static_cast<std::size_t>(kind)]));
    }
    result.push_back({"echolab_load_errors_total", "Errors of the run by kind (docs/loadgen.md)",
                      MetricType::Counter, std::move(errors)});
    result.push_back({"echolab_load_request_duration_seconds",
                      "Latency of the good replies as the client saw it, from the send (or the "
                      "intended send, in the open loop) to the whole reply",
                      MetricType::Histogram,
                      {latency_histogram(labels(), series)}});
    auto open = with_labels(labels());
    open.gauge.value = static_cast<double>(series.connections_open);
    result.push_back({"echolab_load_connections_open",
                      "Connections of the run open now",
                      MetricType::Gauge,
                      {open}});
    return result;
  }

  prometheus::ClientMetric::Label target_;
  prometheus::ClientMetric::Label shard_;
  mutable std::mutex mutex_;
  std::function<LoadSeries()> source_;
};

LoadMetricsEndpoint::LoadMetricsEndpoint(const Endpoint& endpoint, const LoadOptions& options)
    : collectable_(std::make_shared<Collectable>(options)) {
  try {
    endpoint_ = std::make_unique<MetricsEndpoint>(
        endpoint, std::vector<std::shared_ptr<prometheus::Collectable>>{collectable_});
  } catch (const std::runtime_error& error) {
    throw std::runtime_error(std::string("--metrics-listen ") + endpoint.to_string() + ": " +
                             error.what());
  }
}

LoadMetricsEndpoint::~LoadMetricsEndpoint() {
  endpoint_.reset();  // no scrape may read the source after this
}

void LoadMetricsEndpoint::follow(std::function<LoadSeries()> source) {
  collectable_->follow(std::move(source));
}

}  // namespace echolab::load
