// SIGTERM and SIGINT (and SIGHUP) as a file descriptor, so a blocking acceptor can poll() for "shut
// down" beside its listening socket, with no async-signal-safety traps.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include "common/posix/unique_fd.hpp"

namespace echolab {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (threads started afterwards inherit
// the mask, so only this descriptor ever sees them), ignores SIGPIPE, and returns a signalfd
// that becomes readable when one arrives. Call before starting any thread.
int open_shutdown_signalfd();

// True when a shutdown signal (SIGTERM, SIGINT) was waiting on the descriptor. A SIGHUP is
// consumed and answered with log_nothing_to_reload(), and the server keeps serving.
bool shutdown_requested(int signal_fd);

// SIGHUP: nginx reloads its configuration on it, Apache restarts gracefully. echolab has no
// configuration file, so there is nothing to reload: one line says so, and nothing stops.
void log_nothing_to_reload();

// The last step of a graceful shutdown. A connection still in the listen queue was accepted
// by the kernel, perhaps with its request: closing the listener would answer it with a reset.
// So each server takes what is queued (`listen_fd` must be non-blocking by then): a
// connection whose request bytes have arrived goes to `serve`, which owns it; one with none
// is closed at once, a FIN (nothing unread, so no reset). Returns how many went to `serve`.
std::size_t take_queued_connections(int listen_fd, const std::function<void(UniqueFd)>& serve);

}  // namespace echolab
