// What a hybrid worker reports, written into its own scoreboard slot (one writer: the worker's
// single thread): prefork's SlotObserver for the counters and the context switches, plus the
// slot's gauge of open connections and its idle/busy state, which an event-loop worker
// changes around each completion rather than per connection.
#pragma once

#include "common/metrics/observer.hpp"
#include "common/metrics/scoreboard.hpp"
#include "common/metrics/slot_observer.hpp"

namespace echolab::hybrid {

class WorkerObserver final : public ServerObserver {
 public:
  explicit WorkerObserver(ScoreboardSlot& slot) : slot_(slot), counters_(slot) {}

  void connection_accepted() override {
    counters_.connection_accepted();
    change_connections(+1);
  }
  void connection_closed() override {
    counters_.connection_closed();
    change_connections(-1);
  }
  void connection_rejected() override { counters_.connection_rejected(); }
  void bytes_received(std::size_t bytes) override { counters_.bytes_received(bytes); }
  void bytes_sent(std::size_t bytes) override { counters_.bytes_sent(bytes); }
  void requests_served(Protocol protocol, std::size_t count, double seconds) override {
    counters_.requests_served(protocol, count, seconds);
  }
  void request_error(int status) override { counters_.request_error(status); }
  void connection_timed_out(TimeoutKind kind) override { counters_.connection_timed_out(kind); }
  // The worker's one thread: busy while it handles a completion.
  void workers_changed(int /*idle_delta*/, int busy_delta) override {
    slot_.state.store(busy_delta > 0 ? WorkerState::busy : WorkerState::idle,
                      std::memory_order_relaxed);
  }

 private:
  void change_connections(std::int64_t delta) {
    slot_.connections.store(slot_.connections.load(std::memory_order_relaxed) + delta,
                            std::memory_order_relaxed);
  }

  ScoreboardSlot& slot_;
  SlotObserver counters_;
};

}  // namespace echolab::hybrid
