// What a child reports about its connections, written into its own scoreboard slot (the one
// process allowed to write there), for the metrics process to sum at scrape time.
#pragma once

#include <ctime>

#include "common/metrics/observer.hpp"
#include "common/metrics/scoreboard.hpp"

namespace echolab {

class SlotObserver final : public ServerObserver {
 public:
  explicit SlotObserver(ScoreboardSlot& slot) : slot_(slot) {}

  void connection_accepted() override;
  void connection_closed() override;  // the slot's busy state is the active connection
  void connection_rejected() override;
  void bytes_received(std::size_t bytes) override;
  void bytes_sent(std::size_t bytes) override;
  void requests_served(Protocol protocol, std::size_t count, double seconds) override;
  void request_error(int status) override;
  void connection_timed_out(TimeoutKind kind) override;

 private:
  // The child's own context switches (getrusage) are copied into the slot at the start and
  // end of each connection and, while one lasts, at most once a second (a scrape interval):
  // the metrics process then reads no /proc/PID/status per child, and a request does not
  // pay a system call for it. The coarse clock is read in user space (vDSO) in nanoseconds.
  static constexpr long kSwitchesIntervalNs = 1'000'000'000;
  void publish_context_switches();
  void publish_context_switches_now_and_then();

  ScoreboardSlot& slot_;
  timespec switches_published_at_{};
};

}  // namespace echolab
