#include "common/metrics/slot_observer.hpp"

#include <sys/resource.h>

namespace echolab {

void SlotObserver::connection_accepted() {
  slot_.counters.add(field::connections_accepted, 1);
  publish_context_switches();
}

void SlotObserver::connection_closed() { publish_context_switches(); }

void SlotObserver::connection_rejected() { slot_.counters.add(field::connections_rejected, 1); }

void SlotObserver::bytes_received(std::size_t bytes) {
  slot_.counters.add(field::bytes_received, bytes);
}

void SlotObserver::bytes_sent(std::size_t bytes) { slot_.counters.add(field::bytes_sent, bytes); }

void SlotObserver::requests_served(Protocol protocol, std::size_t count, double seconds) {
  slot_.counters.add_requests(protocol, count, seconds);
  publish_context_switches_now_and_then();
}

void SlotObserver::request_error(int status) { slot_.counters.add_error(status); }

void SlotObserver::connection_timed_out(TimeoutKind kind) { slot_.counters.add_timeout(kind); }

void SlotObserver::publish_context_switches() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  slot_.counters.set(field::voluntary_switches, static_cast<std::uint64_t>(usage.ru_nvcsw));
  slot_.counters.set(field::involuntary_switches, static_cast<std::uint64_t>(usage.ru_nivcsw));
  clock_gettime(CLOCK_MONOTONIC_COARSE, &switches_published_at_);
}

void SlotObserver::publish_context_switches_now_and_then() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  const long elapsed_ns = (now.tv_sec - switches_published_at_.tv_sec) * kNanosPerSecond +
                          (now.tv_nsec - switches_published_at_.tv_nsec);
  if (elapsed_ns >= kSwitchesIntervalNs) {
    publish_context_switches();
  }
}

}  // namespace echolab
