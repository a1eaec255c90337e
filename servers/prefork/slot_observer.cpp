#include "servers/prefork/slot_observer.hpp"

namespace echolab::prefork {

void SlotObserver::connection_accepted() { slot_.counters.add(field::connections_accepted, 1); }

void SlotObserver::connection_rejected() { slot_.counters.add(field::connections_rejected, 1); }

void SlotObserver::bytes_received(std::size_t bytes) {
  slot_.counters.add(field::bytes_received, bytes);
}

void SlotObserver::bytes_sent(std::size_t bytes) { slot_.counters.add(field::bytes_sent, bytes); }

void SlotObserver::requests_served(Protocol protocol, std::size_t count, double seconds) {
  slot_.counters.add(protocol == Protocol::raw ? field::raw_requests : field::http_requests, count);
  // A batch of pipelined requests is handled in one pass: each request is observed with the
  // batch's mean time, so the histogram count equals the request count.
  const double each = seconds / static_cast<double>(count);
  slot_.counters.add(field::first_duration_bucket + duration_bucket(each), count);
  slot_.counters.add(field::request_duration_ns, static_cast<std::uint64_t>(seconds * 1e9));
}

void SlotObserver::request_error(int status) {
  if (const int index = error_field(status); index >= 0) {
    slot_.counters.add(static_cast<std::size_t>(index), 1);
  }
}

}  // namespace echolab::prefork
