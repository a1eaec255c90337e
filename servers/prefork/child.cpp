#include "servers/prefork/child.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <exception>
#include <thread>
#include <utility>

#include "common/metrics/slot_observer.hpp"
#include "common/posix/die_with_parent.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/server/accept_policy.hpp"
#include "common/server/log.hpp"
#include "common/server/shutdown_signals.hpp"

namespace echolab::prefork {
namespace {

volatile sig_atomic_t stop_requested = 0;    // SIGTERM: close the connection when idle, exit
volatile sig_atomic_t retire_requested = 0;  // SIGUSR1: accept no more, finish the connection
int listener_in_child = -1;
int not_a_socket_in_child = -1;
// A second descriptor of the listening socket, which the stop request leaves in place: for
// taking the connections still queued when the server shuts down.
int queue_in_child = -1;
// SIGTERM stays blocked while a connection is served and is let in only where the child
// waits for its client (ppoll) or for a connection (accept), so that no stop request can
// fall between a check of stop_requested and the wait that follows it.
sigset_t stop_signal_only;
sigset_t no_signals;

// A stop request must also reach a child that is about to call accept(): between checking
// stop_requested and entering accept() there is a window a flag alone cannot close. So the
// handler also puts /dev/null in the listener's descriptor: an accept() already blocked
// returns EINTR (the handler has no SA_RESTART), and one that starts after the handler fails
// at once with ENOTSOCK. Both are async-signal-safe, and the child no longer holds the
// listening socket, so once every child has stopped the port refuses new connections.
void on_stop_request(int signal_number) {
  const int saved_errno = errno;
  if (signal_number == SIGTERM) {
    stop_requested = 1;
  } else {
    retire_requested = 1;
  }
  dup2(not_a_socket_in_child, listener_in_child);
  errno = saved_errno;
}

// The shutdown's second signal, sent right after SIGTERM. A child in the middle of a request
// keeps SIGTERM pending (blocked) until the request is done, which may be seconds (a /sleep);
// while it held its listener descriptors the port stayed in LISTEN, and new clients completed
// their handshake only to wait for the deadline's reset. So such a child lets go of both at
// once: the children waiting in accept() or on an idle client take SIGTERM at once and take
// the queue, and once they are done the port refuses new connections.
void on_drain_started(int /*signal_number*/) {
  const int saved_errno = errno;
  sigset_t pending;
  if (sigpending(&pending) == 0 && sigismember(&pending, SIGTERM) == 1) {
    dup2(not_a_socket_in_child, listener_in_child);
    dup2(not_a_socket_in_child, queue_in_child);
  }
  errno = saved_errno;
}

bool leaving() { return stop_requested != 0 || retire_requested != 0; }

void install_signal_handlers() {
  struct sigaction stop {};
  stop.sa_handler = on_stop_request;
  sigemptyset(&stop.sa_mask);
  stop.sa_flags = 0;  // no SA_RESTART: a blocked accept() must return
  sigaction(SIGTERM, &stop, nullptr);
  // The master retires a spare child with SIGUSR1, Apache's graceful stop: a connection the
  // child has just accepted is still served to its end (SIGTERM would close it unanswered).
  sigaction(SIGUSR1, &stop, nullptr);
  struct sigaction drain {};
  drain.sa_handler = on_drain_started;
  sigemptyset(&drain.sa_mask);
  drain.sa_flags = SA_RESTART;  // it only drops descriptors: nothing needs to be interrupted
  sigaction(kDrainSignal, &drain, nullptr);
  // Ctrl-C reaches the whole process group; the master turns it into an orderly stop.
  static_cast<void>(signal(SIGINT, SIG_IGN));
  static_cast<void>(signal(SIGHUP, SIG_IGN));  // a hangup of the group: the master answers it
  static_cast<void>(signal(SIGCHLD, SIG_DFL));
  static_cast<void>(signal(SIGPIPE, SIG_IGN));
  sigemptyset(&stop_signal_only);
  sigaddset(&stop_signal_only, SIGTERM);
  sigemptyset(&no_signals);
  sigprocmask(SIG_SETMASK, &no_signals, nullptr);
}

// The child ends with its master: SIGTERM makes it stop as if asked, so a connection it
// holds is closed at its next idle point.
void follow_master(pid_t master_pid) {
  if (!die_with_parent(SIGTERM, master_pid)) {
    stop_requested = 1;  // the master is already gone
  }
}

// Blocking accept(): the kernel queues every child on the socket's wait queue as an
// exclusive waiter and wakes exactly one per connection, so 10,000 idle children cost nothing
// when a connection arrives (Apache's children poll() the listener and all wake: a herd).
UniqueFd accept_connection(int listener_fd, AcceptPolicy& policy) {
  for (;;) {
    UniqueFd connection(accept4(listener_fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (connection) {
      policy.accepted();
      return connection;
    }
    const int error = errno;
    if (leaving()) {
      return {};
    }
    switch (policy.failed(error)) {
      case AcceptFailure::retry:
        continue;
      case AcceptFailure::pause:  // out of a resource: leave the connection to another child
        std::this_thread::sleep_for(kAcceptPause);  // (EAGAIN: the master's shutdown began)
        continue;
      case AcceptFailure::fatal:
        log_error("accept_failed", {{"errno", error}});
        return {};
    }
  }
}

void serve_connection(UniqueFd connection, const BlockingConnectionSettings& settings,
                      ScoreboardSlot& slot, SlotObserver& observer) {
  slot.state.store(WorkerState::busy, std::memory_order_relaxed);
  observer.connection_accepted();
  serve_blocking_connection(std::move(connection), settings, observer);
  observer.connection_closed();
  slot.state.store(WorkerState::idle, std::memory_order_relaxed);
}

// On the server's shutdown the master makes the listener non-blocking (a flag of the socket's
// open file, which every child shares) and closes its own descriptor; each child then takes
// what is still queued before it exits, so no client whose connection the kernel accepted
// gets a reset. A child stopped on its own (someone else's SIGTERM) leaves the queue to the
// others: the listener is still blocking then, and another child will accept it.
void serve_queued_connections(const ChildSetup& setup, ScoreboardSlot& slot,
                              SlotObserver& observer) {
  const int flags = fcntl(queue_in_child, F_GETFL);
  if (stop_requested == 0 || flags < 0 || (flags & O_NONBLOCK) == 0) {
    return;
  }
  const BlockingConnectionSettings settings = settings_for_queued(setup.connection);
  take_queued_connections(queue_in_child, [&](UniqueFd connection) {
    serve_connection(std::move(connection), settings, slot, observer);
  });
}

// Serves connections one after another until a stop request or the recycling limit; returns
// the exit status (non-zero when accept() failed in a way retrying cannot fix).
int serve_until_stopped(const ChildSetup& setup, ScoreboardSlot& slot) {
  BlockingConnectionSettings connection_settings = setup.connection;
  connection_settings.wait_mask = &no_signals;
  connection_settings.stop_requested = &stop_requested;
  SlotObserver observer(slot);
  AcceptPolicy accept_policy;  // no cap: a child serves one connection at a time
  std::size_t served = 0;
  while (!leaving()) {
    UniqueFd connection = accept_connection(setup.listener_fd, accept_policy);
    if (!connection) {
      if (!leaving()) {
        return 1;
      }
      break;
    }
    sigprocmask(SIG_BLOCK, &stop_signal_only, nullptr);
    serve_connection(std::move(connection), connection_settings, slot, observer);
    sigprocmask(SIG_UNBLOCK, &stop_signal_only, nullptr);  // a stop that came lands here
    if (setup.max_connections != 0 && ++served >= setup.max_connections) {
      return 0;  // recycled: the master sees a clean exit it did not ask for and replaces it
    }
  }
  serve_queued_connections(setup, slot, observer);
  return 0;
}

}  // namespace

void run_child(const ChildSetup& setup, ScoreboardSlot& slot) {
  // The master learns the pid from the spawner's reply; this copy is for a spawner that died
  // before replying, so the master can still find the child (see Master::spawn).
  slot.pid.store(getpid(), std::memory_order_release);
  listener_in_child = setup.listener_fd;
  not_a_socket_in_child = setup.not_a_socket_fd;
  queue_in_child = fcntl(setup.listener_fd, F_DUPFD_CLOEXEC, 0);
  follow_master(setup.master_pid);
  install_signal_handlers();

  slot.ready_ns.store(monotonic_ns(), std::memory_order_relaxed);
  slot.state.store(WorkerState::idle, std::memory_order_release);

  int status = 0;
  try {
    status = serve_until_stopped(setup, slot);
  } catch (const std::exception& error) {  // never unwind into the master's code
    log_error("worker_failed", {{"error", error.what()}});
    _exit(1);
  }
  slot.state.store(WorkerState::exiting, std::memory_order_relaxed);
  _exit(status);
}

}  // namespace echolab::prefork
