// The prefork master: single-threaded, never reads a client byte. It forks the metrics
// process and the children, then loops: wake on SIGCHLD, SIGTERM/SIGINT or a short tick, reap
// exited children (folding their counters into the scoreboard, counting crashes), replace the
// crashed and recycled ones, and keep the idle count between --min-spare and --max-spare.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "common/metrics/scoreboard.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/server/supervisor.hpp"
#include "servers/prefork/child.hpp"
#include "servers/prefork/prefork_options.hpp"
#include "servers/prefork/spare_server_policy.hpp"
#include "servers/prefork/spawner.hpp"

namespace echolab::prefork {

class Master final : public Supervisor {
 public:
  // `worker_cap` is --max-workers after the connection cap and the system limits.
  Master(const PreforkOptions& options, std::size_t worker_cap, UniqueFd listener);
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Runs until SIGTERM or SIGINT and a graceful shutdown; returns the exit code.
  int run();

 private:
  // What the master alone knows about the child in a slot.
  struct ChildRecord {
    pid_t pid = 0;
    bool retire_requested = false;  // sent SIGUSR1 to shrink the idle pool
    bool killed_by_master = false;  // sent SIGKILL when the shutdown timed out
    bool spawn_recorded = false;    // its fork-to-ready time is in the spawn histogram
  };

  void launch_metrics_process() override;
  bool launch_spawner();
  std::size_t spawn(std::size_t count);
  void record_spawned(std::size_t slot, pid_t pid_or_error);
  void confirm_unconfirmed_children();
  void forget_unconfirmed_child(pid_t pid);
  // Supervisor
  [[nodiscard]] std::size_t live_workers() const override { return live_children_; }
  void signal_workers(int signal_number) override;
  void maintain() override;
  void stop_accepting() override;
  void on_child_exit(pid_t pid, int status) override;

  void on_worker_exit(std::size_t slot_index, int status);
  void maintain_spares();
  WorkerCounts count_workers();
  void retire_idle(std::size_t count);
  void record_spawn_time(std::size_t slot_index);
  void log_spawned(std::size_t count, const char* reason);
  int shut_down(int signal_number);

  PreforkOptions options_;
  std::size_t worker_cap_;
  UniqueFd listener_;
  UniqueFd not_a_socket_;  // /dev/null, for children to put in the listener's place
  pid_t master_pid_;
  Scoreboard scoreboard_;
  ChildSetup child_setup_;
  Spawner spawner_;

  std::vector<ChildRecord> children_;  // indexed like the scoreboard's slots
  std::unordered_map<pid_t, std::size_t> slot_of_pid_;
  // Slots of a batch the spawner died in before replying, until their child shows up.
  struct UnconfirmedSlot {
    std::size_t slot;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<UnconfirmedSlot> unconfirmed_slots_;
  // Longer than any child takes from fork to its first line of run_child().
  static constexpr std::chrono::seconds kUnconfirmedGrace{5};
  // Lowest free slot first, so live children stay packed at the front of the scoreboard
  // and every scan stops early.
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> free_slots_;
  std::size_t live_children_ = 0;
  std::size_t replacements_owed_ = 0;  // crashed or recycled children not yet replaced
  std::chrono::steady_clock::time_point next_retire_;
  bool at_worker_cap_ = false;  // logged once per episode
  bool fork_failing_ = false;   // logged once per episode
  std::size_t crashes_ = 0;
};

}  // namespace echolab::prefork
