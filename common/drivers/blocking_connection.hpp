// Serves one connection with blocking I/O: the loop the prefork child and the per-connection
// thread share. ppoll() waits on the socket and for a stop request together, always until
// the connection's next client deadline (common/protocol/client_deadline.hpp), so a slow, stalled
// or silent client costs its worker at most one timeout, while a request in flight is always
// finished on shutdown.
#pragma once

#include <csignal>

#include <chrono>

#include "common/metrics/observer.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/protocol/client_deadline.hpp"
#include "common/protocol/protocol_config.hpp"

namespace echolab {

struct BlockingConnectionSettings {
  ProtocolConfig protocol;
  ClientTimeouts timeouts;
  // How a stop request reaches an idle connection, one way or the other (or neither):
  // a descriptor that becomes readable, the threads server's StopSignal pipe; -1 for none.
  int stop_fd = -1;
  // Or a signal, for a process with one connection (the prefork child): the caller keeps the
  // signal blocked while serving, the wait alone unblocks it (ppoll with `wait_mask`), so it
  // can land only there, and its handler sets `*stop_requested`. 10,000 children then wait
  // each on its own socket rather than all queueing on one pipe.
  const sigset_t* wait_mask = nullptr;
  const volatile sig_atomic_t* stop_requested = nullptr;
};

// A blocking connection taken from the queue at shutdown: it must not watch the stop (it
// would close at once, its request unread, and the client would get a reset), and after its
// answers it waits only kQueuedIdle for more before it closes.
inline constexpr std::chrono::milliseconds kQueuedIdle{100};
BlockingConnectionSettings settings_for_queued(BlockingConnectionSettings settings);

enum class ConnectionEnd { client_closed, timed_out, protocol_error, shutdown, io_error };

// Serves the connection until it ends, and closes it.
ConnectionEnd serve_blocking_connection(UniqueFd socket, const BlockingConnectionSettings& settings,
                                        ServerObserver& observer);

// Serves the connection until it ends, and leaves the socket open: its owner closes it (the
// threads server, once its shutdown can no longer cut the socket by its number).
ConnectionEnd serve_blocking_connection(int socket_fd, const BlockingConnectionSettings& settings,
                                        ServerObserver& observer);

}  // namespace echolab
