#include "common/metrics/metrics.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "common/metrics/striped_metrics.hpp"
#include "common/server/listener.hpp"

namespace echolab {
namespace {

std::string scrape(const prometheus::Collectable& collectable) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, collectable.Collect());
  return out.str();
}

// The value of the sample line that starts with exactly `series` (name and labels).
std::optional<double> sample(std::string_view text, std::string_view series) {
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

TEST(ServerMetrics, ExposesEveryFamilyOfTheContractWithItsType) {
  const ServerMetrics metrics(Model::pool);
  const std::string text = scrape(*metrics.registry());
  for (const auto& [name, type] : {
           std::pair{"echolab_connections_accepted_total", "counter"},
           {"echolab_connections_active", "gauge"},
           {"echolab_connections_rejected_total", "counter"},
           {"echolab_connections_lost_total", "counter"},
           {"echolab_requests_total", "counter"},
           {"echolab_request_errors_total", "counter"},
           {"echolab_bytes_received_total", "counter"},
           {"echolab_bytes_sent_total", "counter"},
           {"echolab_request_duration_seconds", "histogram"},
           {"echolab_worker_spawn_seconds", "histogram"},
           {"echolab_workers", "gauge"},
           {"echolab_worker_crashes_total", "counter"},
       }) {
    EXPECT_NE(text.find("# TYPE " + std::string(name) + " " + type + "\n"), std::string::npos)
        << name;
    EXPECT_NE(text.find("# HELP " + std::string(name) + " "), std::string::npos) << name;
  }
}

TEST(ServerMetrics, EverySeriesCarriesTheModelLabel) {
  const ServerMetrics metrics(Model::prefork);
  std::istringstream lines(scrape(*metrics.registry()));
  int series = 0;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("#")) {
      EXPECT_NE(line.find("{model=\"prefork\""), std::string::npos) << line;
      ++series;
    }
  }
  EXPECT_GT(series, 40);  // histogram buckets included
}

TEST(ServerMetrics, StartsAtZeroWithEveryKnownLabelPresent) {
  const ServerMetrics metrics(Model::threads);
  const std::string text = scrape(*metrics.registry());
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="threads",protocol="http"})"), 0);
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="threads",protocol="raw"})"), 0);
  for (const int status : metrics::kErrorStatuses) {
    const std::string series =
        R"(echolab_request_errors_total{model="threads",status=")" + std::to_string(status) + "\"}";
    EXPECT_EQ(sample(text, series), 0) << series;
  }
  EXPECT_EQ(sample(text, R"(echolab_workers{model="threads",state="idle"})"), 0);
  EXPECT_EQ(sample(text, R"(echolab_workers{model="threads",state="busy"})"), 0);
}

TEST(StripedMetrics, ConnectionsAndBytesFollowTheObserverCalls) {
  StripedMetrics metrics(Model::threads);
  ServerObserver& observer = metrics;
  observer.connection_accepted();
  observer.connection_accepted();
  observer.connection_accepted();
  observer.connection_closed();
  observer.connection_rejected();
  observer.bytes_received(100);
  observer.bytes_received(23);
  observer.bytes_sent(4096);
  const std::string text = scrape(*metrics.collectable());
  EXPECT_EQ(sample(text, R"(echolab_connections_accepted_total{model="threads"})"), 3);
  EXPECT_EQ(sample(text, R"(echolab_connections_active{model="threads"})"), 2);
  EXPECT_EQ(sample(text, R"(echolab_connections_rejected_total{model="threads"})"), 1);
  EXPECT_EQ(sample(text, R"(echolab_bytes_received_total{model="threads"})"), 123);
  EXPECT_EQ(sample(text, R"(echolab_bytes_sent_total{model="threads"})"), 4096);
}

TEST(StripedMetrics, ABatchRecordsEachRequestWithTheBatchTime) {
  StripedMetrics metrics(Model::pool);
  metrics.requests_served(Protocol::http, 1, 0.0003);  // falls in le=0.0005
  metrics.requests_served(Protocol::raw, 4, 0.002);    // falls in le=0.0025
  metrics.requests_served(Protocol::http, 0, 1.0);     // nothing answered: nothing recorded
  const std::string text = scrape(*metrics.collectable());
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="pool",protocol="http"})"), 1);
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="pool",protocol="raw"})"), 4);
  const std::string histogram = "echolab_request_duration_seconds";
  EXPECT_EQ(sample(text, histogram + R"(_count{model="pool"})"), 5);
  EXPECT_NEAR(*sample(text, histogram + R"(_sum{model="pool"})"), 0.0003 + 4 * 0.002, 1e-9);
  EXPECT_EQ(sample(text, histogram + R"(_bucket{model="pool",le="0.00025"})"), 0);
  EXPECT_EQ(sample(text, histogram + R"(_bucket{model="pool",le="0.0005"})"), 1);
  EXPECT_EQ(sample(text, histogram + R"(_bucket{model="pool",le="0.001"})"), 1);
  EXPECT_EQ(sample(text, histogram + R"(_bucket{model="pool",le="0.0025"})"), 5);
  EXPECT_EQ(sample(text, histogram + R"(_bucket{model="pool",le="+Inf"})"), 5);
}

TEST(StripedMetrics, UntimedRequestsAreCountedAndKeptOutOfTheHistogram) {
  StripedMetrics metrics(Model::pool);
  metrics.requests_served(Protocol::http, 1, 0.0003);
  metrics.requests_served(Protocol::http, 1, kUntimed);  // a 408
  const std::string text = scrape(*metrics.collectable());
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="pool",protocol="http"})"), 2);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_count{model="pool"})"), 1);
  EXPECT_NEAR(*sample(text, R"(echolab_request_duration_seconds_sum{model="pool"})"), 0.0003, 1e-9);
}

// A connection's close can land on a stripe read before its open was: the sum read then is
// below zero for a moment, and a gauge of open connections shows zero instead.
TEST(StripedMetrics, AnOpenGaugeNeverShowsLessThanZero) {
  StripedMetrics metrics(Model::threads);
  std::thread([&metrics] { metrics.connection_closed(); }).join();
  EXPECT_EQ(metrics.totals().connections_active, 0);
  std::thread([&metrics] { metrics.workers_changed(0, -1); }).join();
  EXPECT_EQ(metrics.totals().workers_busy, 0);
  EXPECT_EQ(metrics.totals().workers_idle, 0);
}

TEST(StripedMetrics, ErrorsCountByStatus) {
  StripedMetrics metrics(Model::pool);
  metrics.request_error(413);
  metrics.request_error(413);
  metrics.request_error(431);
  const std::string text = scrape(*metrics.collectable());
  EXPECT_EQ(sample(text, R"(echolab_request_errors_total{model="pool",status="413"})"), 2);
  EXPECT_EQ(sample(text, R"(echolab_request_errors_total{model="pool",status="431"})"), 1);
  EXPECT_EQ(sample(text, R"(echolab_request_errors_total{model="pool",status="400"})"), 0);
}

TEST(StripedMetrics, WorkersAndSpawns) {
  StripedMetrics metrics(Model::pool);
  metrics.worker_spawned(0.0004);
  metrics.worker_spawned(0.02);
  metrics.workers_changed(+5, 0);
  metrics.workers_changed(-1, +1);
  const std::string text = scrape(*metrics.collectable());
  EXPECT_EQ(sample(text, R"(echolab_worker_spawn_seconds_count{model="pool"})"), 2);
  EXPECT_EQ(sample(text, R"(echolab_worker_spawn_seconds_bucket{model="pool",le="0.0005"})"), 1);
  EXPECT_EQ(sample(text, R"(echolab_workers{model="pool",state="idle"})"), 4);
  EXPECT_EQ(sample(text, R"(echolab_workers{model="pool",state="busy"})"), 1);
}

// Threads that share stripes and threads that close what others opened, scraped while they
// count: every scrape is a consistent lower bound, the last one exact.
TEST(StripedMetrics, CountsOfManyThreadsAddUpExactlyWhileScraped) {
  StripedMetrics metrics(Model::threads);
  const auto collectable = metrics.collectable();
  constexpr int kThreads = 40;  // more than the stripes: some share one
  constexpr int kRounds = 2000;
  std::atomic<bool> counting{true};
  std::thread scraper([&] {
    double last = 0;
    while (counting.load()) {
      const double seen = *sample(scrape(*collectable),
                                  R"(echolab_requests_total{model="threads",protocol="http"})");
      EXPECT_GE(seen, last);
      last = seen;
    }
  });
  std::vector<std::thread> openers;
  openers.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    openers.emplace_back([&metrics] {
      for (int round = 0; round < kRounds; ++round) {
        metrics.connection_accepted();
        metrics.bytes_received(3);
        metrics.requests_served(Protocol::http, 1, 0.0001);
      }
    });
  }
  for (std::thread& thread : openers) {
    thread.join();
  }
  std::thread closer([&metrics] {
    for (int i = 0; i < kThreads * kRounds / 2; ++i) {
      metrics.connection_closed();
    }
  });
  closer.join();
  counting.store(false);
  scraper.join();
  const std::string text = scrape(*collectable);
  constexpr double kTotal = kThreads * kRounds;
  EXPECT_EQ(sample(text, R"(echolab_connections_accepted_total{model="threads"})"), kTotal);
  EXPECT_EQ(sample(text, R"(echolab_connections_active{model="threads"})"), kTotal / 2);
  EXPECT_EQ(sample(text, R"(echolab_bytes_received_total{model="threads"})"), 3 * kTotal);
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="threads",protocol="http"})"), kTotal);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_count{model="threads"})"), kTotal);
}

TEST(StripedMetrics, ScrapingAgainCountsNothingTwice) {
  StripedMetrics metrics(Model::pool);
  metrics.requests_served(Protocol::raw, 2, 0.001);
  const auto collectable = metrics.collectable();
  static_cast<void>(scrape(*collectable));
  metrics.requests_served(Protocol::raw, 1, 0.001);
  static_cast<void>(scrape(*collectable));
  const std::string text = scrape(*collectable);
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="pool",protocol="raw"})"), 3);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_count{model="pool"})"), 3);
}

MetricsTotals some_totals() {
  MetricsTotals totals;
  totals.connections_accepted = 10;
  totals.connections_rejected = 1;
  totals.connections_lost = 2;
  totals.connections_active = 7;
  totals.http_requests = 100;
  totals.raw_requests = 5;
  totals.errors_by_status[0] = 3;  // 400
  totals.bytes_received = 5000;
  totals.bytes_sent = 9000;
  totals.request_duration_buckets[3] = 60;  // le=0.0001
  totals.request_duration_buckets.back() = 45;
  totals.request_duration_sum = 300.5;
  totals.spawn_buckets[5] = 8;  // le=0.00025
  totals.spawn_sum = 0.0016;
  totals.workers_idle = 3;
  totals.workers_busy = 7;
  totals.worker_crashes = 2;
  return totals;
}

TEST(ServerMetricsAdvance, SetsEverySeriesToTheTotals) {
  ServerMetrics metrics(Model::prefork);
  metrics.advance_to(some_totals());
  const std::string text = scrape(*metrics.registry());
  EXPECT_EQ(sample(text, R"(echolab_connections_accepted_total{model="prefork"})"), 10);
  EXPECT_EQ(sample(text, R"(echolab_connections_rejected_total{model="prefork"})"), 1);
  EXPECT_EQ(sample(text, R"(echolab_connections_lost_total{model="prefork"})"), 2);
  EXPECT_EQ(sample(text, R"(echolab_connections_active{model="prefork"})"), 7);
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="prefork",protocol="http"})"), 100);
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="prefork",protocol="raw"})"), 5);
  EXPECT_EQ(sample(text, R"(echolab_request_errors_total{model="prefork",status="400"})"), 3);
  EXPECT_EQ(sample(text, R"(echolab_bytes_received_total{model="prefork"})"), 5000);
  EXPECT_EQ(sample(text, R"(echolab_bytes_sent_total{model="prefork"})"), 9000);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_bucket{model="prefork",le="0.0001"})"),
            60);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_bucket{model="prefork",le="5"})"), 60);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_count{model="prefork"})"), 105);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_sum{model="prefork"})"), 300.5);
  EXPECT_EQ(sample(text, R"(echolab_worker_spawn_seconds_count{model="prefork"})"), 8);
  EXPECT_EQ(sample(text, R"(echolab_workers{model="prefork",state="idle"})"), 3);
  EXPECT_EQ(sample(text, R"(echolab_workers{model="prefork",state="busy"})"), 7);
  EXPECT_EQ(sample(text, R"(echolab_worker_crashes_total{model="prefork"})"), 2);
}

TEST(ServerMetricsAdvance, CountersNeverGoBackwardsAndNeverCountTwice) {
  ServerMetrics metrics(Model::prefork);
  MetricsTotals totals = some_totals();
  metrics.advance_to(totals);

  // A dip (a slot read while its child's counts move to the retired total): ignored, while
  // the gauges follow the totals down.
  MetricsTotals dip = totals;
  dip.http_requests = 40;
  dip.request_duration_buckets[3] = 10;
  dip.request_duration_sum = 100;
  dip.connections_active = 2;
  metrics.advance_to(dip);
  std::string text = scrape(*metrics.registry());
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="prefork",protocol="http"})"), 100);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_count{model="prefork"})"), 105);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_sum{model="prefork"})"), 300.5);
  EXPECT_EQ(sample(text, R"(echolab_connections_active{model="prefork"})"), 2);

  // Back above the earlier high-water mark: only the part above it is added.
  MetricsTotals later = totals;
  later.http_requests = 130;
  later.request_duration_buckets[3] = 70;
  later.request_duration_sum = 301.5;
  metrics.advance_to(later);
  text = scrape(*metrics.registry());
  EXPECT_EQ(sample(text, R"(echolab_requests_total{model="prefork",protocol="http"})"), 130);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_bucket{model="prefork",le="0.0001"})"),
            70);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_count{model="prefork"})"), 115);
  EXPECT_EQ(sample(text, R"(echolab_request_duration_seconds_sum{model="prefork"})"), 301.5);
}

TEST(ServerMetricsAdvance, KeepsTheSpawnsObservedDirectly) {
  ServerMetrics metrics(Model::threads);
  metrics.worker_spawned(0.001);  // the threads and pool servers observe spawns directly
  metrics.advance_to(MetricsTotals{});
  EXPECT_EQ(
      sample(scrape(*metrics.registry()), R"(echolab_worker_spawn_seconds_count{model="threads"})"),
      1);
}

TEST(ProcStatsCollectable, ReportsThisProcessWithTheContractNames) {
  const auto collectable = make_proc_stats_collectable(Model::threads, this_process);
  const std::string text = scrape(*collectable);
  EXPECT_EQ(sample(text, R"(echolab_processes{model="threads"})"), 1);
  EXPECT_GE(sample(text, R"(echolab_threads{model="threads"})").value_or(0), 1);
  EXPECT_GT(sample(text, R"(echolab_memory_rss_bytes{model="threads"})").value_or(0), 1 << 20);
  const double pss = sample(text, R"(echolab_memory_pss_bytes{model="threads"})").value_or(0);
  EXPECT_GT(pss, 0);
  EXPECT_LE(pss, *sample(text, R"(echolab_memory_rss_bytes{model="threads"})"));
  EXPECT_NE(text.find("# TYPE echolab_context_switches_total counter\n"), std::string::npos);
  EXPECT_TRUE(sample(text, R"(echolab_context_switches_total{kind="voluntary",model="threads"})"));
  EXPECT_TRUE(
      sample(text, R"(echolab_context_switches_total{kind="involuntary",model="threads"})"));
}

TEST(ProcStatsCollectable, AGoneProcessIsNotCounted) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  const auto collectable = make_proc_stats_collectable(Model::prefork, [child] {
    ServerProcesses processes = this_process();
    processes.inspected.push_back(child);
    return processes;
  });
  EXPECT_EQ(sample(scrape(*collectable), R"(echolab_processes{model="prefork"})"), 1);
}

// promtool is the reference for the exposition format and its naming rules.
TEST(MetricsExposition, PassesPromtoolCheckMetrics) {
  if (access("/usr/bin/promtool", X_OK) != 0) {
    GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
  }
  StripedMetrics metrics(Model::threads);
  metrics.requests_served(Protocol::http, 3, 0.001);
  metrics.request_error(413);
  const auto proc = make_proc_stats_collectable(Model::threads, this_process);
  const std::string text = scrape(*metrics.collectable()) + scrape(*proc);
  FILE* promtool = popen("/usr/bin/promtool check metrics > /dev/null 2>&1", "w");
  ASSERT_NE(promtool, nullptr);
  EXPECT_EQ(fwrite(text.data(), 1, text.size(), promtool), text.size());
  const int status = pclose(promtool);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
}

std::string http_get(std::uint16_t port, std::string_view path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    const std::string request =
        "GET " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      for (ssize_t count = 0; (count = read(fd, buffer, sizeof buffer)) > 0;) {
        response.append(buffer, static_cast<std::size_t>(count));
      }
    }
  }
  close(fd);
  return response;
}

TEST(MetricsEndpoint, ServesEveryCollectableOnTheBoundPort) {
  StripedMetrics metrics(Model::pool);
  metrics.requests_served(Protocol::http, 7, 0.0001);
  const auto proc = make_proc_stats_collectable(Model::pool, this_process);
  const MetricsEndpoint endpoint(parse_endpoint("127.0.0.1:0"), {metrics.collectable(), proc});
  ASSERT_NE(endpoint.port(), 0);
  const std::string response = http_get(endpoint.port(), "/metrics");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  EXPECT_EQ(sample(response, R"(echolab_requests_total{model="pool",protocol="http"})"), 7);
  EXPECT_EQ(sample(response, R"(echolab_processes{model="pool"})"), 1);
}

TEST(MetricsEndpoint, ABindFailureNamesTheEndpointAndTheReason) {
  const UniqueFd taken = open_listener(parse_endpoint("127.0.0.1:0"), 1);
  const std::string address = "127.0.0.1:" + std::to_string(local_port(taken.get()));
  try {
    const MetricsEndpoint endpoint(parse_endpoint(address), {});
    ADD_FAILURE() << "bound a port already in use";
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(address), std::string::npos) << message;
    EXPECT_NE(message.find("in use"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace echolab
