#include "servers/hybrid/master.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "common/metrics/metrics_process.hpp"
#include "common/server/listener.hpp"
#include "common/server/log.hpp"
#include "servers/hybrid/worker.hpp"

namespace echolab::hybrid {
namespace {

// The master wakes this often when no signal comes: to record the workers' spawn times and
// to replace a worker whose respawn was held back.
constexpr std::chrono::milliseconds kTick{100};
// A worker that dies before it ever served would die again: it is replaced after this pause
// rather than in a tight fork loop.
constexpr std::chrono::seconds kRespawnBackoff{1};
constexpr std::chrono::seconds kStartTimeout{10};
constexpr std::chrono::milliseconds kShutdownPoll{50};

}  // namespace

Master::Master(const HybridOptions& options, std::size_t workers)
    : options_(options),
      master_pid_(getpid()),
      scoreboard_(workers, ActiveConnections::slot_gauges),
      workers_(workers) {}

// Every socket is opened here, before any fork, so that a bind failure stops the server with
// one message, and so that a replaced worker inherits the very socket (and the connections
// queued on it) of the worker it replaces.
void Master::open_listeners() {
  const bool reuse_port = options_.sharing == PortSharing::reuse_port;
  const std::size_t count = reuse_port ? workers_.size() : 1;
  for (std::size_t i = 0; i < count; ++i) {
    listeners_.push_back(
        open_listener(options_.server.listen, options_.server.backlog,
                      reuse_port ? ListenerSharing::reuse_port : ListenerSharing::exclusive));
  }
}

int Master::listener_for(std::size_t slot) const {
  return listeners_.size() == 1 ? listeners_.front().get() : listeners_[slot].get();
}

int Master::run() {
  block_signals({SIGCHLD, SIGTERM, SIGINT, SIGHUP});
  static_cast<void>(std::signal(SIGPIPE, SIG_IGN));
  open_listeners();
  launch_metrics_process();
  if (metrics_pid_ < 0) {
    log_error("fatal", {{"error", "the metrics process did not start"}});
    return 1;
  }
  for (std::size_t slot = 0; slot < workers_.size(); ++slot) {
    if (!spawn(slot)) {
      log_error("fatal", {{"error", "could not fork a worker"}, {"errno", errno}});
      signal_workers(SIGKILL);
      return 1;
    }
  }
  const Started started = wait_until_ready(kStartTimeout);
  if (started.stop_signal != 0) {
    return shut_down(started.stop_signal);  // asked to stop while starting: a graceful stop
  }
  if (!started.ready) {
    log_error("fatal", {{"error", "the workers did not start"}});
    shut_down(SIGTERM);
    return 1;
  }
  log_event("start",
            {{"listen", options_.server.listen.to_string()},
             {"metrics", options_.server.metrics_listen.to_string()},
             {"workers", workers_.size()},
             {"port_sharing",
              options_.sharing == PortSharing::reuse_port ? "reuseport" : "shared_listener"},
             {"fault_injection", options_.server.protocol.fault_injection}});
  return shut_down(supervise(kTick));
}

void Master::maintain() {
  record_spawn_times();
  respawn_due();
}

void Master::launch_metrics_process() {
  MetricsProcessSetup setup{Model::hybrid, options_.server.metrics_listen, master_pid_, {}};
  for (const UniqueFd& listener : listeners_) {
    setup.fds_to_close.push_back(listener.get());
  }
  metrics_pid_ = start_metrics_process(setup, scoreboard_);
}

bool Master::spawn(std::size_t slot) {
  scoreboard_.prepare_slot(slot, monotonic_ns());
  WorkerSetup setup{&options_, &scoreboard_, slot, listener_for(slot), {}, master_pid_};
  for (const UniqueFd& listener : listeners_) {
    if (listener.get() != setup.listener_fd) {
      setup.fds_to_close.push_back(listener.get());
    }
  }
  const pid_t pid = fork();
  if (pid == 0) {
    run_worker(setup);
  }
  if (pid < 0) {
    scoreboard_.fold_dead_child(slot, false, 0);
    return false;
  }
  scoreboard_.set_pid(slot, pid);
  workers_[slot] = Worker{pid};
  ++live_workers_;
  return true;
}

// Takes every signal as supervise() does: a SIGTERM or SIGINT that comes while the workers
// start is the operator's stop, and dropping it would leave a server running that was told to go.
Master::Started Master::wait_until_ready(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    record_spawn_times();
    const bool all_ready = std::all_of(workers_.begin(), workers_.end(),
                                       [](const Worker& worker) { return worker.spawn_recorded; });
    if (all_ready) {
      return {.ready = true};
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return {};
    }
    if (const int stop = next_shutdown_signal(std::chrono::milliseconds(5)); stop != 0) {
      return {.stop_signal = stop};
    }
    if (live_workers_ < workers_.size()) {
      return {};  // a worker failed at once, and was reaped
    }
  }
}

void Master::record_spawn_times() {
  for (std::size_t slot = 0; slot < workers_.size(); ++slot) {
    Worker& worker = workers_[slot];
    if (worker.pid == 0 || worker.spawn_recorded) {
      continue;
    }
    const ScoreboardSlot& entry = scoreboard_.slot(slot);
    const std::int64_t ready_ns = entry.ready_ns.load(std::memory_order_acquire);
    if (ready_ns != 0) {
      scoreboard_.record_spawn(
          seconds_between(entry.fork_ns.load(std::memory_order_relaxed), ready_ns));
      worker.spawn_recorded = true;
    }
  }
}

void Master::on_child_exit(pid_t pid, int status) {
  for (std::size_t slot = 0; slot < workers_.size(); ++slot) {
    if (workers_[slot].pid == pid) {
      on_worker_exit(slot, status);
      return;
    }
  }
}

// A worker killed by a signal the master did not send crashed (a fault, or someone else's
// kill): every connection it held is lost with it.
void Master::on_worker_exit(std::size_t slot, int status) {
  record_spawn_times();
  Worker& worker = workers_[slot];
  const bool crashed = WIFSIGNALED(status) && !worker.killed_by_master;
  const std::int64_t held = scoreboard_.slot(slot).connections.load(std::memory_order_acquire);
  const std::uint64_t lost =
      crashed ? static_cast<std::uint64_t>(std::max<std::int64_t>(held, 0)) : 0;
  scoreboard_.fold_dead_child(slot, crashed, lost);
  --live_workers_;
  const pid_t pid = worker.pid;
  const bool had_served = worker.spawn_recorded;
  worker = Worker{};
  if (shutting_down_) {
    return;
  }
  if (crashed) {
    ++crashes_;
    log_error("worker_crashed", {{"worker_pid", pid},
                                 {"signal", signal_name(WTERMSIG(status))},
                                 {"connections_lost", lost},
                                 {"workers", live_workers_}});
  } else {
    log_error("worker_exited",
              {{"worker_pid", pid}, {"status", WIFEXITED(status) ? WEXITSTATUS(status) : -1}});
  }
  worker.respawn_at =
      std::chrono::steady_clock::now() + (had_served ? std::chrono::seconds(0) : kRespawnBackoff);
  respawn_due();
}

void Master::respawn_due() {
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t slot = 0; slot < workers_.size(); ++slot) {
    Worker& worker = workers_[slot];
    if (worker.pid != 0 || shutting_down_ || worker.respawn_at > now) {
      continue;
    }
    if (spawn(slot)) {
      ++respawns_;
      log_event("worker_respawned",
                {{"slot", slot}, {"worker_pid", workers_[slot].pid}, {"workers", live_workers_}});
    } else {
      worker.respawn_at = now + kRespawnBackoff;
      log_error("fork_failed", {{"error", std::strerror(errno)}, {"workers", live_workers_}});
    }
  }
}

void Master::signal_workers(int signal_number) {
  for (Worker& worker : workers_) {
    if (worker.pid != 0) {
      worker.killed_by_master = worker.killed_by_master || signal_number == SIGKILL;
      kill(worker.pid, signal_number);
    }
  }
}

// The master closes its copies of the listening sockets first, so that once every worker has
// taken its queue and closed its own, the port refuses new connections; then every worker
// drains (pool semantics: requests in flight answered, idle connections closed). Workers still
// there at --shutdown-timeout (stuck in a handler) are killed, and the master exits 0: the
// shutdown was asked for and it is complete.
int Master::shut_down(int signal_number) {
  const Drained drained = drain(signal_number, options_.server.shutdown_timeout, kShutdownPoll);
  log_event("shutdown", {{"phase", "done"},
                         {"duration_ms", drained.took.count()},
                         {"killed", drained.killed},
                         {"crashes", crashes_},
                         {"respawns", respawns_}});
  return 0;
}

// Once every worker has taken its queue and closed its own copy, the port refuses new
// connections.
void Master::stop_accepting() { listeners_.clear(); }

}  // namespace echolab::hybrid
