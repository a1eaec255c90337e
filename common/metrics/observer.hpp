// The one interface through which a server reports what happens at its driver boundary.
// threads and pool report into per-thread stripes (common/metrics/striped_metrics), prefork
// children into their scoreboard slot; both are summed at scrape time.
#pragma once

#include <cstddef>

#include "common/protocol/client_deadline.hpp"
#include "common/protocol/protocol_config.hpp"
#include "common/protocol/session.hpp"

namespace echolab {

class ServerObserver {
 public:
  virtual ~ServerObserver() = default;

  virtual void connection_accepted() = 0;
  virtual void connection_closed() = 0;
  virtual void connection_rejected() = 0;  // over --max-connections or another cap
  virtual void bytes_received(std::size_t bytes) = 0;
  virtual void bytes_sent(std::size_t bytes) = 0;
  // `count` requests answered in one batch that took `seconds` to handle in the server (from
  // their bytes read until their answers were ready), or kUntimed.
  virtual void requests_served(Protocol protocol, std::size_t count, double seconds) = 0;
  virtual void request_error(int status) = 0;
  // The connection was closed because the client was too slow (or gone quiet).
  virtual void connection_timed_out(TimeoutKind kind) = 0;
  // An event-loop worker (a pool thread, a hybrid process) going busy around the handling of
  // a completion and idle after it. The blocking servers know their workers' states without
  // it, and ignore it.
  virtual void workers_changed(int /*idle_delta*/, int /*busy_delta*/) {}
};

// The seconds of requests answered without being handled: a 408 for a request the client
// never finished. They are counted, and kept out of the duration histogram, whose quantiles a
// slow-client attack would otherwise pull toward zero.
inline constexpr double kUntimed = -1.0;

// Reports what one Session::feed() answered, once its output has been sent: `count` requests
// that took `seconds` to handle, and their error statuses. A template so that a caller that
// knows its observer's final type calls it directly.
template <typename Observer>
void report_feed(Observer& observer, Protocol protocol, const FeedResult& result, double seconds) {
  if (result.requests > 0) {
    observer.requests_served(protocol, result.requests, seconds);
  }
  for (const int status : result.error_statuses) {
    observer.request_error(status);
  }
}

}  // namespace echolab
