// What a child reports about its connections, written into its own scoreboard slot (the one
// process allowed to write there), for the metrics process to sum at scrape time.
#pragma once

#include "common/observer.hpp"
#include "servers/prefork/scoreboard.hpp"

namespace echolab::prefork {

class SlotObserver final : public ServerObserver {
 public:
  explicit SlotObserver(ScoreboardSlot& slot) : slot_(slot) {}

  void connection_accepted() override;
  void connection_closed() override {}  // the slot's busy state is the active connection
  void connection_rejected() override;
  void bytes_received(std::size_t bytes) override;
  void bytes_sent(std::size_t bytes) override;
  void requests_served(Protocol protocol, std::size_t count, double seconds) override;
  void request_error(int status) override;

 private:
  ScoreboardSlot& slot_;
};

}  // namespace echolab::prefork
