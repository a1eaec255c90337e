// SIGTERM and SIGINT as a file descriptor, so a blocking acceptor can poll() for "shut down"
// beside its listening socket, with no async-signal-safety traps.
#pragma once

namespace echolab {

// Blocks SIGTERM and SIGINT in the calling thread (threads started afterwards inherit the
// mask, so only this descriptor ever sees them), ignores SIGPIPE, and returns a signalfd
// that becomes readable when one arrives. Call before starting any thread.
int open_shutdown_signalfd();

// True when a signal is waiting on the descriptor (it is consumed).
bool shutdown_requested(int signal_fd);

}  // namespace echolab
