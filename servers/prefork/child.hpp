// A prefork child: blocks in accept() on the shared listening socket, serves the one
// connection it got with blocking I/O, and goes back to accept(), until the master asks it
// to stop, it has served --max-connections-per-child connections, or the master dies.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstddef>

#include "common/drivers/blocking_connection.hpp"
#include "common/metrics/scoreboard.hpp"

namespace echolab::prefork {

// What the master sends each child right after the shutdown's SIGTERM: a child in the middle
// of a request drops its descriptors of the listening socket at once (child.cpp).
inline constexpr int kDrainSignal = SIGUSR2;

struct ChildSetup {
  int listener_fd = -1;
  int not_a_socket_fd = -1;  // /dev/null, put in the listener's place on a stop request
  pid_t master_pid = 0;
  BlockingConnectionSettings connection;  // the child adds how SIGTERM stops it
  std::size_t max_connections = 0;        // 0 = no recycling
};

// Runs in the child right after fork(); never returns. The caller still has the signal mask
// the master blocks, so a SIGTERM sent before the handler exists is delivered, not lost.
[[noreturn]] void run_child(const ChildSetup& setup, ScoreboardSlot& slot);

}  // namespace echolab::prefork
