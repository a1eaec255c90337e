#include "common/metrics/metrics.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include <prometheus/metric_family.h>

#include "common/metrics/proc_stats.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/server/listener.hpp"

namespace echolab {
namespace {

using prometheus::Labels;

Labels model_label(Model model) { return {{"model", std::string(to_string(model))}}; }

// Every family carries model=<model> as a constant label, so each series has it.
// prometheus-cpp 1.0 exposes a family under exactly the name given (it adds no "_total").
template <typename Metric>
prometheus::Family<Metric>& add_family(prometheus::Registry& registry, Model model,
                                       const std::string& name, const std::string& help) {
  return prometheus::detail::Builder<Metric>()
      .Name(name)
      .Help(help)
      .Labels(model_label(model))
      .Register(registry);
}

template <std::size_t N>
prometheus::Histogram::BucketBoundaries boundaries(const std::array<double, N>& bounds) {
  return {bounds.begin(), bounds.end()};
}

// Moves a counter forward to `total` from the highest total applied before (`applied`),
// never backwards.
void advance_counter(prometheus::Counter& counter, std::uint64_t total, std::uint64_t& applied) {
  if (total > applied) {
    counter.Increment(static_cast<double>(total - applied));
    applied = total;
  }
}

template <std::size_t N>
void advance_histogram(prometheus::Histogram& histogram, const std::array<std::uint64_t, N>& total,
                       double total_sum, std::array<std::uint64_t, N>& applied,
                       double& applied_sum) {
  std::vector<double> increments(N, 0.0);
  bool moved = false;
  for (std::size_t bucket = 0; bucket < N; ++bucket) {
    if (total[bucket] > applied[bucket]) {
      increments[bucket] = static_cast<double>(total[bucket] - applied[bucket]);
      applied[bucket] = total[bucket];
      moved = true;
    }
  }
  // Sums of doubles added up in a different order may come out a hair lower: ignored too.
  double sum_increment = 0;
  if (total_sum > applied_sum) {
    sum_increment = total_sum - applied_sum;
    applied_sum = total_sum;
  }
  if (moved || sum_increment > 0) {
    histogram.ObserveMultiple(increments, sum_increment);
  }
}

}  // namespace

ServerMetrics::ServerMetrics(Model model) : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::Counter;
  using prometheus::Gauge;
  using prometheus::Histogram;
  auto& registry = *registry_;

  accepted_ = &add_family<Counter>(registry, model, "echolab_connections_accepted_total",
                                   "Connections accepted and served")
                   .Add({});
  active_ =
      &add_family<Gauge>(registry, model, "echolab_connections_active", "Connections open now")
           .Add({});
  rejected_ = &add_family<Counter>(registry, model, "echolab_connections_rejected_total",
                                   "Connections refused because a limit was reached")
                   .Add({});
  lost_ = &add_family<Counter>(registry, model, "echolab_connections_lost_total",
                               "Connections dropped because the worker serving them crashed")
               .Add({});
  auto& requests = add_family<Counter>(registry, model, "echolab_requests_total",
                                       "Requests answered, by protocol (http or raw echo)");
  http_requests_ = &requests.Add({{"protocol", "http"}});
  raw_requests_ = &requests.Add({{"protocol", "raw"}});
  auto& errors = add_family<Counter>(registry, model, "echolab_request_errors_total",
                                     "Requests answered with an error status, by status");
  for (std::size_t index = 0; index < metrics::kErrorStatuses.size(); ++index) {
    known_errors_[index] =
        &errors.Add({{"status", std::to_string(metrics::kErrorStatuses[index])}});
  }
  auto& timeouts = add_family<Counter>(
      registry, model, "echolab_connections_timed_out_total",
      "Connections closed because the client was too slow, by timeout (idle, header, body, send)");
  for (std::size_t index = 0; index < kTimeoutKinds.size(); ++index) {
    timeouts_[index] = &timeouts.Add({{"kind", std::string(to_string(kTimeoutKinds[index]))}});
  }
  bytes_received_ = &add_family<Counter>(registry, model, "echolab_bytes_received_total",
                                         "Bytes read from client connections")
                         .Add({});
  bytes_sent_ = &add_family<Counter>(registry, model, "echolab_bytes_sent_total",
                                     "Bytes written to client connections")
                     .Add({});
  request_duration_ =
      &add_family<Histogram>(registry, model, "echolab_request_duration_seconds",
                             "Server-side handling time of a request, from its bytes read "
                             "to its response ready")
           .Add({}, boundaries(metrics::kRequestDurationBuckets));
  spawn_ = &add_family<Histogram>(registry, model, "echolab_worker_spawn_seconds",
                                  "Time from fork() or thread creation until the new worker "
                                  "is ready to serve")
                .Add({}, boundaries(metrics::kSpawnBuckets));
  auto& workers = add_family<Gauge>(registry, model, "echolab_workers",
                                    "Worker processes or threads, by state (idle or busy)");
  idle_workers_ = &workers.Add({{"state", "idle"}});
  busy_workers_ = &workers.Add({{"state", "busy"}});
  crashes_ = &add_family<Counter>(registry, model, "echolab_worker_crashes_total",
                                  "Workers that died of a signal or an unexpected exit")
                  .Add({});
}

void ServerMetrics::worker_spawned(double seconds) { spawn_->Observe(seconds); }

void ServerMetrics::advance_to(const MetricsTotals& totals) {
  const std::lock_guard lock(advance_mutex_);
  MetricsTotals& applied = advanced_;
  advance_counter(*accepted_, totals.connections_accepted, applied.connections_accepted);
  advance_counter(*rejected_, totals.connections_rejected, applied.connections_rejected);
  advance_counter(*lost_, totals.connections_lost, applied.connections_lost);
  advance_counter(*http_requests_, totals.http_requests, applied.http_requests);
  advance_counter(*raw_requests_, totals.raw_requests, applied.raw_requests);
  for (std::size_t index = 0; index < known_errors_.size(); ++index) {
    advance_counter(*known_errors_[index], totals.errors_by_status[index],
                    applied.errors_by_status[index]);
  }
  for (std::size_t index = 0; index < timeouts_.size(); ++index) {
    advance_counter(*timeouts_[index], totals.timeouts_by_kind[index],
                    applied.timeouts_by_kind[index]);
  }
  advance_counter(*bytes_received_, totals.bytes_received, applied.bytes_received);
  advance_counter(*bytes_sent_, totals.bytes_sent, applied.bytes_sent);
  advance_counter(*crashes_, totals.worker_crashes, applied.worker_crashes);
  advance_histogram(*request_duration_, totals.request_duration_buckets,
                    totals.request_duration_sum, applied.request_duration_buckets,
                    applied.request_duration_sum);
  advance_histogram(*spawn_, totals.spawn_buckets, totals.spawn_sum, applied.spawn_buckets,
                    applied.spawn_sum);
  active_->Set(static_cast<double>(totals.connections_active));
  idle_workers_->Set(static_cast<double>(totals.workers_idle));
  busy_workers_->Set(static_cast<double>(totals.workers_busy));
}

namespace {

prometheus::ClientMetric labelled(const Labels& labels) {
  prometheus::ClientMetric metric;
  for (const auto& [name, value] : labels) {
    metric.label.push_back({name, value});
  }
  return metric;
}

prometheus::ClientMetric gauge_value(const Labels& labels, double value) {
  prometheus::ClientMetric metric = labelled(labels);
  metric.gauge.value = value;
  return metric;
}

prometheus::ClientMetric counter_value(const Labels& labels, double value) {
  prometheus::ClientMetric metric = labelled(labels);
  metric.counter.value = value;
  return metric;
}

prometheus::MetricFamily family_of(std::string name, std::string help, prometheus::MetricType type,
                                   std::vector<prometheus::ClientMetric> metrics) {
  return {std::move(name), std::move(help), type, std::move(metrics)};
}

// Reads /proc for the server's processes at every scrape. Collect() is const in
// prometheus-cpp's interface and may run on several Exposer threads at once, hence the
// mutable state behind a mutex.
class ProcStatsCollectable final : public prometheus::Collectable {
 public:
  ProcStatsCollectable(Model model, std::function<ServerProcesses()> processes)
      : model_(model), processes_(std::move(processes)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const ServerProcesses processes = processes_();
    ProcStats stats;
    {
      const std::lock_guard lock(mutex_);
      stats = reader_.read(processes);
    }
    return families(stats);
  }

 private:
  std::vector<prometheus::MetricFamily> families(const ProcStats& stats) const {
    using prometheus::MetricType;
    const Labels model = model_label(model_);
    Labels voluntary = model;
    voluntary.emplace("kind", "voluntary");
    Labels involuntary = model;
    involuntary.emplace("kind", "involuntary");
    std::vector<prometheus::MetricFamily> result;
    result.push_back(
        family_of("echolab_memory_rss_bytes",
                  "Resident memory summed over every process of the server; pages shared between "
                  "processes are counted once in each",
                  MetricType::Gauge, {gauge_value(model, static_cast<double>(stats.rss_bytes))}));
    result.push_back(
        family_of("echolab_memory_pss_bytes",
                  "Proportional set size summed over every process of the server; a shared page is "
                  "divided among the processes sharing it",
                  MetricType::Gauge, {gauge_value(model, static_cast<double>(stats.pss_bytes))}));
    result.push_back(
        family_of("echolab_context_switches_total",
                  "Context switches of every process and thread of the server, by kind (voluntary: "
                  "blocked; involuntary: preempted)",
                  MetricType::Counter,
                  {counter_value(voluntary, static_cast<double>(stats.switches.voluntary)),
                   counter_value(involuntary, static_cast<double>(stats.switches.involuntary))}));
    result.push_back(family_of("echolab_processes", "Processes of the server", MetricType::Gauge,
                               {gauge_value(model, static_cast<double>(stats.processes))}));
    result.push_back(family_of("echolab_threads", "Threads of every process of the server",
                               MetricType::Gauge,
                               {gauge_value(model, static_cast<double>(stats.threads))}));
    return result;
  }

  Model model_;
  std::function<ServerProcesses()> processes_;
  mutable std::mutex mutex_;  // one scrape reads /proc at a time
  mutable ProcStatsReader reader_;
};

// civetweb, under prometheus::Exposer, reports a failed bind without its reason; binding a
// probe socket to the same endpoint recovers it ("Address already in use", ...).
[[noreturn]] void explain_bind_failure(const Endpoint& endpoint) {
  try {
    static_cast<void>(open_listener(endpoint, 1));  // closed at once: only its error matters
  } catch (const std::system_error& error) {
    throw std::runtime_error(std::string("metrics endpoint: ") + error.what());
  }
  const bool ipv6 = endpoint.host.find(':') != std::string::npos;
  throw std::runtime_error("metrics endpoint: cannot serve on " + endpoint.to_string() +
                           (ipv6 ? ": this prometheus-cpp build listens on IPv4 only"
                                 : ": the metrics HTTP server failed to start"));
}

// civetweb serves each connection on one of a fixed set of worker threads, blocking until the
// request has arrived; prometheus-cpp's default is 2 workers and civetweb's default request
// timeout 30 s, so two idle TCP connections to the port held both workers and every scrape
// waited 30 s. What holds now: a scrape is answered at once while fewer than
// kWorkers - 1 connections stall the endpoint (idle, or trickling a request byte by byte), and
// a stalled connection is dropped kRequestTimeout after its request began, whatever it sends.
// What does not: a client that opens connections without limit can still occupy every worker
// (and civetweb's queue) again and again; a scrape then waits up to kRequestTimeout per round.
// The port is meant for Prometheus on a trusted network, not the open internet.
constexpr int kWorkers = 16;
constexpr int kRequestTimeoutMs = 1000;

std::unique_ptr<prometheus::Exposer> bind_exposer(const Endpoint& endpoint) {
  try {
    return std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", endpoint.to_string(),                  //
                                 "num_threads", std::to_string(kWorkers),                  //
                                 "request_timeout_ms", std::to_string(kRequestTimeoutMs),  //
                                 "keep_alive_timeout_ms", std::to_string(kRequestTimeoutMs)});
  } catch (const std::runtime_error&) {
    explain_bind_failure(endpoint);
  }
}

// Opens and closes one TCP connection to `endpoint` (a wildcard host means this host).
void knock(const Endpoint& endpoint) {
  const bool wildcard = endpoint.host.empty() || endpoint.host == "0.0.0.0";
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(wildcard ? "127.0.0.1" : endpoint.host.c_str(),
                  std::to_string(endpoint.port).c_str(), &hints, &found) != 0) {
    return;
  }
  const UniqueFd knock(::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0));
  if (knock) {
    [[maybe_unused]] const int connected =
        ::connect(knock.get(), found->ai_addr, found->ai_addrlen);
  }
  freeaddrinfo(found);
}

// Collect() is const in prometheus-cpp's interface and may run on several Exposer threads at
// once; advance_to() keeps the highest totals applied, and the lock keeps two scrapes from
// interleaving an advance and a collect.
class AdvancingCollectable final : public prometheus::Collectable {
 public:
  AdvancingCollectable(ServerMetrics& metrics, std::function<MetricsTotals()> totals)
      : metrics_(metrics), totals_(std::move(totals)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const std::lock_guard lock(mutex_);
    metrics_.advance_to(totals_());
    return metrics_.registry()->Collect();
  }

 private:
  ServerMetrics& metrics_;
  std::function<MetricsTotals()> totals_;
  mutable std::mutex mutex_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> make_advancing_collectable(
    ServerMetrics& metrics, std::function<MetricsTotals()> totals) {
  return std::make_shared<AdvancingCollectable>(metrics, std::move(totals));
}

std::shared_ptr<prometheus::Collectable> make_proc_stats_collectable(
    Model model, std::function<ServerProcesses()> processes) {
  return std::make_shared<ProcStatsCollectable>(model, std::move(processes));
}

MetricsEndpoint::MetricsEndpoint(
    const Endpoint& endpoint,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables)
    : endpoint_(endpoint), collectables_(collectables), exposer_(bind_exposer(endpoint)) {
  endpoint_.port = port();
  for (const auto& collectable : collectables_) {
    exposer_->RegisterCollectable(collectable);
  }
}

MetricsEndpoint::~MetricsEndpoint() {
  // civetweb's listening thread sees a stop request only when its poll() returns, which on
  // an idle port is after a 2-second quantum: knock on the port until it has stopped, so a
  // graceful shutdown does not wait for it.
  std::atomic<bool> stopped{false};
  std::thread knocker([this, &stopped] {
    while (!stopped.load()) {
      knock(endpoint_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped.store(true);
  knocker.join();
}

std::uint16_t MetricsEndpoint::port() const {
  const std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

}  // namespace echolab
