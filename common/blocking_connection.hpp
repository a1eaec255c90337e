// Serves one connection with blocking I/O: the loop the prefork child and the per-connection
// thread share. poll() waits on the socket and on the stop signal together, so an idle
// connection is closed on shutdown or after the idle timeout, while a request in flight is
// always finished.
#pragma once

#include <chrono>

#include "common/observer.hpp"
#include "common/protocol_config.hpp"

namespace echolab {

struct BlockingConnectionSettings {
  ProtocolConfig protocol;
  std::chrono::milliseconds idle_timeout{30'000};
  int stop_fd = -1;  // readable = shut down; -1 for none
};

enum class ConnectionEnd { client_closed, idle_timeout, protocol_error, shutdown, io_error };

// Takes ownership of `socket_fd` and closes it before returning.
ConnectionEnd serve_blocking_connection(int socket_fd, const BlockingConnectionSettings& settings,
                                        ServerObserver& observer);

}  // namespace echolab
