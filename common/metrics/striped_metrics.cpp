#include "common/metrics/striped_metrics.hpp"

#include <algorithm>

namespace echolab {
namespace {

// Threads are dealt stripes round-robin as they first report: the pool's N threads get N
// different stripes (for N up to the stripe count), connection threads spread over all.
std::size_t this_threads_stripe_number() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t number = next.fetch_add(1, std::memory_order_relaxed);
  return number;
}

}  // namespace

StripedMetrics::StripedMetrics(Model model) : metrics_(model) {}

StripedMetrics::Stripe& StripedMetrics::this_threads_stripe() {
  return stripes_[this_threads_stripe_number() % kStripes];
}

void StripedMetrics::change(Stripe& stripe, Gauge gauge, std::int64_t delta) {
  // Two's complement: adding the unsigned image of a negative delta subtracts, modulo 2^64.
  stripe.gauges[gauge].fetch_add(static_cast<std::uint64_t>(delta), std::memory_order_relaxed);
}

void StripedMetrics::connection_accepted() {
  Stripe& stripe = this_threads_stripe();
  stripe.counters.add(field::connections_accepted, 1);
  change(stripe, active_connections, +1);
}

void StripedMetrics::connection_closed() { change(this_threads_stripe(), active_connections, -1); }

void StripedMetrics::connection_rejected() {
  this_threads_stripe().counters.add(field::connections_rejected, 1);
}

void StripedMetrics::bytes_received(std::size_t bytes) {
  this_threads_stripe().counters.add(field::bytes_received, bytes);
}

void StripedMetrics::bytes_sent(std::size_t bytes) {
  this_threads_stripe().counters.add(field::bytes_sent, bytes);
}

void StripedMetrics::requests_served(Protocol protocol, std::size_t count, double seconds) {
  this_threads_stripe().counters.add_requests(protocol, count, seconds);
}

void StripedMetrics::request_error(int status) { this_threads_stripe().counters.add_error(status); }

void StripedMetrics::connection_timed_out(TimeoutKind kind) {
  this_threads_stripe().counters.add_timeout(kind);
}

void StripedMetrics::worker_spawned(double seconds) { metrics_.worker_spawned(seconds); }

void StripedMetrics::workers_changed(int idle_delta, int busy_delta) {
  Stripe& stripe = this_threads_stripe();
  if (const int live_delta = idle_delta + busy_delta; live_delta != 0) {
    change(stripe, live_workers, live_delta);
  }
  if (busy_delta != 0) {
    change(stripe, busy_workers, busy_delta);
  }
}

MetricsTotals StripedMetrics::totals() const {
  MetricsTotals totals;
  std::array<std::uint64_t, 3> gauges{};
  for (const Stripe& stripe : stripes_) {
    stripe.counters.add_to(totals);
    for (std::size_t gauge = 0; gauge < gauges.size(); ++gauge) {
      gauges[gauge] += stripe.gauges[gauge].load(std::memory_order_relaxed);
    }
  }
  // The stripes are read one after another, not at one instant: a connection opened on a
  // stripe already read and closed on one read after it is counted -1 and never +1. Such a
  // sum is off by the changes made during the read, and can dip below zero, which no gauge of
  // things open can be: it is shown as zero.
  const auto at_least_zero = [](std::int64_t value) { return std::max<std::int64_t>(value, 0); };
  totals.connections_active = at_least_zero(static_cast<std::int64_t>(gauges[active_connections]));
  totals.workers_busy = at_least_zero(static_cast<std::int64_t>(gauges[busy_workers]));
  totals.workers_idle =
      at_least_zero(static_cast<std::int64_t>(gauges[live_workers]) - totals.workers_busy);
  return totals;
}

std::shared_ptr<prometheus::Collectable> StripedMetrics::collectable() {
  return make_advancing_collectable(metrics_, [this] { return totals(); });
}

}  // namespace echolab
