// What every master of worker processes (prefork, hybrid) does alike. It never runs a signal
// handler: its signals stay blocked and are taken synchronously by sigtimedwait(), so no signal
// can slip in between a check and a wait, and children inherit the mask. It keeps the pid of
// the metrics process it forked. And it ends a graceful shutdown the same way: the workers,
// already sent SIGTERM, get until the deadline; those left are killed and reaped; then the
// metrics process is stopped. What a worker is, and what its exit means, is the model's.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <initializer_list>

namespace echolab {

// "TERM" for SIGTERM, for the logs.
const char* signal_name(int signal_number);

class Supervisor {
 public:
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

 protected:
  Supervisor() = default;
  ~Supervisor() = default;
  Supervisor(Supervisor&&) = delete;
  Supervisor& operator=(Supervisor&&) = delete;

  // Blocks `signals` for good (in this process and every child forked after), to be taken by
  // wait_for_signal().
  void block_signals(std::initializer_list<int> signals);
  // The next blocked signal, or -1 when `timeout` passes first.
  int wait_for_signal(std::chrono::milliseconds timeout);
  // A master's loop: waits up to `tick` for a signal and handles it (SIGCHLD reaps, SIGHUP is
  // logged), then calls maintain(), until SIGTERM or SIGINT asks for the shutdown; returns it.
  int supervise(std::chrono::milliseconds tick);

  struct Drained {
    std::size_t killed;  // workers still there at the deadline
    std::chrono::milliseconds took;
  };
  // The graceful shutdown `signal_number` asked for: logs phase=draining, stops accepting
  // (the model's stop_accepting()), sends the workers SIGTERM and waits for them until
  // `timeout`, reaping every `poll`; a second SIGTERM or SIGINT ends the wait. Then SIGKILLs
  // those left and reaps them, and stops the metrics process. The model logs phase=done.
  Drained drain(int signal_number, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll);

  // Waits up to `tick` for a signal and handles it (SIGCHLD reaps, SIGHUP is logged); returns
  // SIGTERM or SIGINT when one asks for the shutdown, else 0.
  int next_shutdown_signal(std::chrono::milliseconds tick);

  // Every child that has exited, without blocking: the metrics process is started again
  // (unless the shutdown began), any other child goes to the model's on_child_exit().
  void reap();

  pid_t metrics_pid_ = -1;      // set by launch_metrics_process(); -1 once it is reaped
  bool shutting_down_ = false;  // from drain() on: an exit is no longer a crash to replace

 private:
  // One turn of the master's own work (spares, respawns, spawn times), every tick.
  virtual void maintain() = 0;
  // Closes what the workers accept from, or tells them to, before they get SIGTERM.
  virtual void stop_accepting() = 0;
  [[nodiscard]] virtual std::size_t live_workers() const = 0;
  virtual void signal_workers(int signal_number) = 0;
  // Forks the metrics process and sets metrics_pid_ (-1 if it did not start).
  virtual void launch_metrics_process() = 0;
  // One reaped child other than the metrics process: a worker, or the model's own helper.
  virtual void on_child_exit(pid_t pid, int status) = 0;

  void on_exit(pid_t pid, int status);
  void on_metrics_process_exit(int status);

  std::size_t wait_for_workers(std::chrono::steady_clock::time_point deadline,
                               std::chrono::milliseconds poll);
  void kill_workers_left();
  void stop_metrics_process(std::chrono::milliseconds poll);

  sigset_t signals_{};
};

}  // namespace echolab
