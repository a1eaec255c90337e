#include "servers/prefork/master.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <vector>

#include "common/metrics/metrics_process.hpp"
#include "common/server/log.hpp"

namespace echolab::prefork {
namespace {

// How often the master looks at the scoreboard when no signal wakes it. Children do not tell
// the master when they take a connection, so this bounds how late it notices that the spares
// ran out; a scan of the live slots costs microseconds.
constexpr std::chrono::milliseconds kMaintenanceTick{10};
// Surplus idle children are retired at most this often (Apache's maintenance interval).
constexpr std::chrono::seconds kRetireInterval{1};
constexpr std::chrono::milliseconds kShutdownPoll{100};

// Connections the kernel has completed and queued on the listening socket, waiting for a
// child's accept(): for a socket in LISTEN, TCP_INFO's tcpi_unacked is the length of the
// accept queue (what `ss -lt` shows as Recv-Q).
std::size_t accept_queue_length(int listener_fd) {
  tcp_info info{};
  socklen_t size = sizeof(info);
  if (listener_fd < 0 || getsockopt(listener_fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) {
    return 0;
  }
  return info.tcpi_unacked;
}

}  // namespace

Master::Master(const PreforkOptions& options, std::size_t worker_cap, UniqueFd listener)
    : options_(options),
      worker_cap_(worker_cap),
      listener_(std::move(listener)),
      not_a_socket_(open("/dev/null", O_RDONLY | O_CLOEXEC)),
      master_pid_(getpid()),
      scoreboard_(worker_cap),
      children_(worker_cap) {
  if (!not_a_socket_) {
    throw std::system_error(errno, std::generic_category(), "open /dev/null");
  }
  // Sized once: a rehash while thousands of children share the master's pages copy-on-write
  // would make the master copy every page of the table.
  slot_of_pid_.reserve(worker_cap);
  for (std::size_t slot = 0; slot < worker_cap; ++slot) {
    free_slots_.push(slot);
  }
  child_setup_.listener_fd = listener_.get();
  child_setup_.not_a_socket_fd = not_a_socket_.get();
  child_setup_.master_pid = master_pid_;
  child_setup_.connection.protocol = options_.server.protocol;
  child_setup_.connection.timeouts = options_.server.timeouts;
  child_setup_.max_connections = options_.max_connections_per_child;
}

int Master::run() {
  // Children inherit the mask and unblock it only once their own handlers are installed.
  // SIGUSR1 and the drain signal are not taken by the master, but blocked so that a child
  // forked with this mask cannot be killed by a retire request or the shutdown (their default
  // action) before its handlers exist.
  block_signals({SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, kDrainSignal});
  launch_metrics_process();
  if (metrics_pid_ < 0) {
    log_error("fatal", {{"error", "the metrics process did not start"}});
    return 1;
  }
  if (!launch_spawner()) {
    log_error("fatal", {{"error", "the spawner did not start"}});
    return 1;
  }
  log_spawned(spawn(std::min(options_.start_servers, worker_cap_)), "start");
  log_event("start", {{"listen", options_.server.listen.to_string()},
                      {"metrics", options_.server.metrics_listen.to_string()},
                      {"start_servers", options_.start_servers},
                      {"min_spare", options_.min_spare},
                      {"max_spare", options_.max_spare},
                      {"max_workers", worker_cap_},
                      {"max_connections_per_child", options_.max_connections_per_child},
                      {"fault_injection", options_.server.protocol.fault_injection}});
  next_retire_ = std::chrono::steady_clock::now() + kRetireInterval;
  return shut_down(supervise(kMaintenanceTick));
}

void Master::maintain() {
  confirm_unconfirmed_children();
  maintain_spares();
}

void Master::launch_metrics_process() {
  // A restarted metrics process is forked after the spawner: it must not keep its socket.
  MetricsProcessSetup setup{Model::prefork,
                            options_.server.metrics_listen,
                            master_pid_,
                            {listener_.get(), not_a_socket_.get(), spawner_.control_fd()}};
  metrics_pid_ = start_metrics_process(setup, scoreboard_);
}

bool Master::launch_spawner() {
  return spawner_.launch(child_setup_, scoreboard_.fd(), scoreboard_.slot_count());
}

// The children come from the spawner (see spawner.hpp), one request per round.
std::size_t Master::spawn(std::size_t count) {
  if (count == 0 || (spawner_.pid() < 0 && !launch_spawner())) {  // it died: start another
    return 0;
  }
  std::vector<std::uint32_t> slots;
  while (slots.size() < count && !free_slots_.empty()) {
    slots.push_back(static_cast<std::uint32_t>(free_slots_.top()));
    free_slots_.pop();
    scoreboard_.prepare_slot(slots.back(), monotonic_ns());
  }
  const std::vector<pid_t> pids = spawner_.spawn(slots);
  std::size_t spawned = 0;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    record_spawned(slots[i], pids[i]);
    spawned += pids[i] > 0 ? 1 : 0;
  }
  // The spawner went away mid-batch: it may have forked children for these slots before it
  // died, whose pids never came. Each child writes its pid into its slot; the slot is held
  // until it does, or until kUnconfirmedGrace says no child is coming.
  const auto since = std::chrono::steady_clock::now();
  for (std::size_t i = pids.size(); i < slots.size(); ++i) {
    unconfirmed_slots_.push_back({slots[i], since});
  }
  return spawned;
}

void Master::confirm_unconfirmed_children() {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(unconfirmed_slots_, [this, now](const UnconfirmedSlot& entry) {
    const pid_t pid = scoreboard_.slot(entry.slot).pid.load(std::memory_order_acquire);
    if (pid > 0) {
      record_spawned(entry.slot, pid);
      return true;
    }
    if (now - entry.since > kUnconfirmedGrace) {
      record_spawned(entry.slot, -EPIPE);
      return true;
    }
    return false;
  });
}

// A child of a batch the spawner never answered exited before it was confirmed.
void Master::forget_unconfirmed_child(pid_t pid) {
  std::erase_if(unconfirmed_slots_, [this, pid](const UnconfirmedSlot& entry) {
    if (scoreboard_.slot(entry.slot).pid.load(std::memory_order_acquire) != pid) {
      return false;
    }
    record_spawned(entry.slot, -EPIPE);
    return true;
  });
}

void Master::record_spawned(std::size_t slot, pid_t pid_or_error) {
  if (pid_or_error <= 0) {
    scoreboard_.fold_dead_child(slot, false, 0);
    free_slots_.push(slot);
    if (!fork_failing_) {  // once per episode: a limit hit stays hit for a while
      log_error("fork_failed",
                {{"error", std::strerror(-pid_or_error)}, {"workers", live_children_}});
    }
    fork_failing_ = true;
    return;
  }
  fork_failing_ = false;
  scoreboard_.set_pid(slot, pid_or_error);
  children_[slot] = ChildRecord{pid_or_error};
  slot_of_pid_.emplace(pid_or_error, slot);
  ++live_children_;
}

void Master::log_spawned(std::size_t count, const char* reason) {
  if (count > 0) {
    log_event("workers_spawned",
              {{"count", count}, {"reason", reason}, {"workers", live_children_}});
  }
}

void Master::on_child_exit(pid_t pid, int status) {
  if (pid == spawner_.pid()) {
    spawner_.exited();  // the next spawn starts another
    if (!shutting_down_) {
      log_error("spawner_exited", {{"status", WIFEXITED(status) ? WEXITSTATUS(status) : -1}});
    }
    return;
  }
  const auto found = slot_of_pid_.find(pid);
  if (found != slot_of_pid_.end()) {
    const std::size_t slot = found->second;
    slot_of_pid_.erase(found);
    on_worker_exit(slot, status);
  } else {
    forget_unconfirmed_child(pid);
  }
}

void Master::on_worker_exit(std::size_t slot_index, int status) {
  record_spawn_time(slot_index);
  const ChildRecord child = children_[slot_index];
  const WorkerState state = scoreboard_.slot(slot_index).state.load(std::memory_order_acquire);
  // Only a signal the master did not send is a crash: the children handle SIGTERM and exit
  // normally, so a child killed by a signal was killed by a fault (or by someone else).
  const bool crashed = WIFSIGNALED(status) && !child.killed_by_master;
  const bool connection_lost = crashed && state == WorkerState::busy;
  scoreboard_.fold_dead_child(slot_index, crashed, connection_lost ? 1 : 0);
  children_[slot_index] = ChildRecord{};
  free_slots_.push(slot_index);
  --live_children_;

  if (crashed) {
    ++crashes_;
    log_error("worker_crashed", {{"worker_pid", child.pid},
                                 {"signal", signal_name(WTERMSIG(status))},
                                 {"connection_lost", connection_lost},
                                 {"workers", live_children_}});
    // A child that crashes before it is even ready would crash again: leave it to the
    // spare-server policy rather than respawn in a tight loop.
    replacements_owed_ += child.spawn_recorded && !shutting_down_ ? 1 : 0;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    if (!child.retire_requested && !shutting_down_) {
      log_event("worker_exited", {{"worker_pid", child.pid}, {"reason", "recycled"}});
      ++replacements_owed_;
    }
  } else if (!child.killed_by_master) {
    log_error("worker_exited", {{"worker_pid", child.pid},
                                {"reason", "failed"},
                                {"status", WIFEXITED(status) ? WEXITSTATUS(status) : -1}});
  }
}

void Master::record_spawn_time(std::size_t slot_index) {
  ChildRecord& child = children_[slot_index];
  const ScoreboardSlot& slot = scoreboard_.slot(slot_index);
  if (child.spawn_recorded || slot.state.load(std::memory_order_acquire) == WorkerState::starting) {
    return;
  }
  const std::int64_t ready_ns = slot.ready_ns.load(std::memory_order_relaxed);
  if (ready_ns != 0) {
    scoreboard_.record_spawn(
        seconds_between(slot.fork_ns.load(std::memory_order_relaxed), ready_ns));
    child.spawn_recorded = true;
  }
}

WorkerCounts Master::count_workers() {
  WorkerCounts counts;
  counts.waiting = accept_queue_length(listener_.get());
  const std::size_t used = scoreboard_.slots_in_use();
  for (std::size_t slot = 0; slot < used; ++slot) {
    if (children_[slot].pid == 0) {
      continue;
    }
    ++counts.total;
    record_spawn_time(slot);
    if (children_[slot].retire_requested) {
      continue;  // on its way out: not a spare any more
    }
    switch (scoreboard_.slot(slot).state.load(std::memory_order_acquire)) {
      case WorkerState::starting:
        ++counts.starting;
        break;
      case WorkerState::idle:
        ++counts.idle;
        break;
      default:
        break;
    }
  }
  return counts;
}

void Master::maintain_spares() {
  if (replacements_owed_ > 0) {
    log_spawned(spawn(replacements_owed_), "replace");
    replacements_owed_ = 0;  // what could not be forked is left to the policy below
  }
  const WorkerCounts counts = count_workers();
  const auto now = std::chrono::steady_clock::now();
  const bool retire_due = now >= next_retire_;
  if (retire_due) {
    next_retire_ = now + kRetireInterval;
  }
  const SpareServerDecision decision = decide_spare_servers(
      counts, {options_.min_spare, options_.max_spare, worker_cap_}, retire_due);
  log_spawned(spawn(decision.spawn), "short_of_spares");
  retire_idle(decision.retire);

  const bool saturated = counts.total >= worker_cap_ && counts.idle + counts.starting == 0;
  if (saturated && !at_worker_cap_) {
    log_event("limit_reached", {{"limit", "max-workers"},
                                {"workers", counts.total},
                                {"note", "new connections wait in the listen backlog"}});
  }
  at_worker_cap_ = saturated;
}

// Retires from the highest slots down, keeping the live children packed at the front.
void Master::retire_idle(std::size_t count) {
  std::size_t retired = 0;
  for (std::size_t slot = scoreboard_.slots_in_use(); slot-- > 0 && retired < count;) {
    ChildRecord& child = children_[slot];
    if (child.pid == 0 || child.retire_requested ||
        scoreboard_.slot(slot).state.load(std::memory_order_acquire) != WorkerState::idle) {
      continue;
    }
    // SIGUSR1, the graceful stop: if it takes a connection just before the signal lands, it
    // serves that connection to its end and then exits.
    kill(child.pid, SIGUSR1);
    child.retire_requested = true;
    ++retired;
  }
  if (retired > 0) {
    log_event("workers_retired", {{"count", retired}, {"workers", live_children_}});
  }
}

// The shutdown's SIGTERM is followed by the drain signal, to each child in turn: the child
// can tell from SIGTERM pending and blocked that it is in the middle of a request.
void Master::signal_workers(int signal_number) {
  const std::size_t used = scoreboard_.slots_in_use();
  for (std::size_t slot = 0; slot < used; ++slot) {
    if (children_[slot].pid != 0) {
      children_[slot].killed_by_master = signal_number == SIGKILL;
      kill(children_[slot].pid, signal_number);
      if (signal_number == SIGTERM) {
        kill(children_[slot].pid, kDrainSignal);
      }
    }
  }
}

// Stop accepting (every child drops the listening socket when it gets SIGTERM, and takes the
// connections still queued in it through a second descriptor; a child in the middle of a
// request drops both descriptors at once, on the drain signal), let the requests in flight
// finish (SIGTERM closes each connection at its next idle point),
// reap every child, then stop the metrics process. Children still there at the deadline are
// killed, and the master still exits 0: the shutdown was asked for and it is complete.
int Master::shut_down(int signal_number) {
  const Drained drained = drain(signal_number, options_.server.shutdown_timeout, kShutdownPoll);
  log_event("shutdown", {{"phase", "done"},
                         {"duration_ms", drained.took.count()},
                         {"killed", drained.killed},
                         {"crashes", crashes_}});
  return 0;
}

void Master::stop_accepting() {
  // Non-blocking for every child at once (a flag of the open socket they share), so that
  // each can take the connections still queued without blocking once the queue is empty.
  fcntl(listener_.get(), F_SETFL, fcntl(listener_.get(), F_GETFL) | O_NONBLOCK);
  listener_.reset();
  spawner_.stop();
}

}  // namespace echolab::prefork
