#include "servers/hybrid/worker.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <exception>

#include "common/posix/die_with_parent.hpp"
#include "common/server/log.hpp"
#include "common/server/server_main.hpp"

namespace echolab::hybrid {
namespace {

// The master's mask (SIGCHLD, SIGTERM, SIGINT, SIGHUP blocked) is inherited: SIGTERM stays
// blocked and arrives through a signalfd in the event loop; Ctrl-C and a hangup reach the
// whole process group, and the master alone answers them.
int take_signals() {
  static_cast<void>(std::signal(SIGINT, SIG_IGN));
  static_cast<void>(std::signal(SIGHUP, SIG_IGN));
  static_cast<void>(std::signal(SIGPIPE, SIG_IGN));
  sigset_t stop{};
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  return signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
}

}  // namespace

void run_worker(const WorkerSetup& setup) {
  for (const int fd : setup.fds_to_close) {
    close(fd);
  }
  if (!die_with_parent(SIGTERM, setup.master_pid)) {
    _exit(0);  // the master is already gone
  }
  ScoreboardSlot& slot = setup.scoreboard->slot(setup.slot);
  slot.pid.store(getpid(), std::memory_order_release);
  try {
    const int signal_fd = take_signals();
    if (signal_fd < 0) {
      throw std::system_error(errno, std::generic_category(), "signalfd");
    }
    asio::io_context io(1);  // one thread: Asio may skip its locks
    HybridWorker worker(io, setup, signal_fd);
    worker.run();
  } catch (const std::exception& error) {  // never unwind into the master's code
    log_error("worker_failed", {{"error", error.what()}});
    exit_without_unwinding(1);
  }
  slot.state.store(WorkerState::exiting, std::memory_order_relaxed);
  exit_without_unwinding(0);
}

HybridWorker::HybridWorker(asio::io_context& io, const WorkerSetup& setup, int signal_fd)
    : io_(io),
      options_(*setup.options),
      scoreboard_(*setup.scoreboard),
      slot_(setup.scoreboard->slot(setup.slot)),
      observer_(slot_),
      accept_loop_(
          io, setup.listener_fd, options_.server.max_connections, *this,
          [this] { return open_connections_of_every_worker(); },
          [this](asio::ip::tcp::socket socket) { serve(std::move(socket)); }),
      shutdown_deadline_(io),
      signals_(io, signal_fd) {}

void HybridWorker::run() {
  accept_loop_.start();
  wait_for_signal();
  slot_.ready_ns.store(monotonic_ns(), std::memory_order_relaxed);
  slot_.state.store(WorkerState::idle, std::memory_order_release);
  io_.run();
}

void HybridWorker::wait_for_signal() {
  signals_.async_read_some(asio::buffer(signal_info_),
                           [this](const asio::error_code& error, std::size_t) {
                             if (error == asio::error::operation_aborted) {
                               return;
                             }
                             // Behind the completions already queued: a read that took a
                             // request's bytes off a socket (Asio reads speculatively when it
                             // starts one) must reach its Session before the shutdown looks
                             // for idle connections, or that request would look like none.
                             asio::post(accept_loop_.strand(), [this] {
                               if (!stopping_) {
                                 shut_down();
                               }
                             });
                           });
}

// --max-connections holds for the whole server: the open connections of every worker, as
// their slots count them (a few may slip past it when two workers accept at once).
std::size_t HybridWorker::open_connections_of_every_worker() const {
  return static_cast<std::size_t>(std::max<std::int64_t>(0, scoreboard_.open_connections()));
}

void HybridWorker::serve(asio::ip::tcp::socket socket) {
  auto connection = std::make_shared<AsyncConnection>(std::move(socket), *this);
  connections_.emplace(connection.get(), connection);
  observer_.connection_accepted();
  connection->start();
}

void HybridWorker::connection_ended(AsyncConnection* connection) {
  observer_.connection_closed();
  connections_.erase(connection);
  if (accepting_ended_ && connections_.empty()) {
    io_.stop();
  }
}

// As the pool's: stop accepting, take the connections still queued on this worker's socket,
// close the idle ones, let the requests in flight finish, and stop when the last connection
// ends after the last accept completed, or when --shutdown-timeout passes (the master kills a
// worker stuck in a handler past it).
void HybridWorker::shut_down() {
  stopping_ = true;
  accept_loop_.stop(still_open(connections_), [this] {
    accepting_ended_ = true;
    if (connections_.empty()) {
      io_.stop();
    }
  });
  shutdown_deadline_.expires_after(options_.server.shutdown_timeout);
  shutdown_deadline_.async_wait([this](const asio::error_code& error) {
    if (!error) {
      io_.stop();
    }
  });
}

}  // namespace echolab::hybrid
