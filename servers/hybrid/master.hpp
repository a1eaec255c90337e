// The hybrid master: single-threaded, never accepts and never reads a client byte. It opens
// the listening socket(s), forks the metrics process and the workers, then waits for signals:
// a worker that dies is reaped (its counters folded into the scoreboard, a crash counted) and
// replaced in the same slot with the same socket; SIGTERM or SIGINT is forwarded to every
// worker as SIGTERM, and the master exits 0 once all of them are gone.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "common/metrics/scoreboard.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/server/supervisor.hpp"
#include "servers/hybrid/hybrid_options.hpp"

namespace echolab::hybrid {

class Master final : public Supervisor {
 public:
  Master(const HybridOptions& options, std::size_t workers);
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Runs until SIGTERM or SIGINT and the workers' graceful exit; returns the exit code.
  int run();

 private:
  struct Worker {
    pid_t pid = 0;
    bool spawn_recorded = false;    // its fork-to-ready time is in the spawn histogram
    bool killed_by_master = false;  // SIGKILL after --shutdown-timeout
    std::chrono::steady_clock::time_point respawn_at{};  // when a dead worker is replaced
  };

  void open_listeners();
  void launch_metrics_process() override;
  [[nodiscard]] int listener_for(std::size_t slot) const;
  bool spawn(std::size_t slot);
  struct Started {
    bool ready = false;   // every worker marked itself ready
    int stop_signal = 0;  // SIGTERM or SIGINT came first
  };
  Started wait_until_ready(std::chrono::milliseconds timeout);
  void record_spawn_times();
  // Supervisor
  [[nodiscard]] std::size_t live_workers() const override { return live_workers_; }
  void signal_workers(int signal_number) override;
  void maintain() override;
  void stop_accepting() override;
  void on_child_exit(pid_t pid, int status) override;

  void on_worker_exit(std::size_t slot, int status);
  void respawn_due();
  int shut_down(int signal_number);

  HybridOptions options_;
  pid_t master_pid_;
  std::vector<UniqueFd> listeners_;  // one per worker (SO_REUSEPORT), or one shared
  Scoreboard scoreboard_;
  std::vector<Worker> workers_;  // indexed like the scoreboard's slots
  std::size_t live_workers_ = 0;
  std::size_t crashes_ = 0;
  std::size_t respawns_ = 0;
};

}  // namespace echolab::hybrid
