#include "common/server/supervisor.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cstring>

#include "common/server/duration.hpp"
#include "common/server/log.hpp"
#include "common/server/shutdown_signals.hpp"

namespace echolab {

namespace {

// Stopped with SIGTERM, the metrics process closes its endpoint at once; this is its grace.
constexpr std::chrono::seconds kMetricsStopTimeout{2};

}  // namespace

const char* signal_name(int signal_number) {
  const char* name = sigabbrev_np(signal_number);
  return name != nullptr ? name : "unknown";
}

void Supervisor::block_signals(std::initializer_list<int> signals) {
  sigemptyset(&signals_);
  for (const int signal_number : signals) {
    sigaddset(&signals_, signal_number);
  }
  sigprocmask(SIG_BLOCK, &signals_, nullptr);
}

int Supervisor::wait_for_signal(std::chrono::milliseconds timeout) {
  const timespec wait = to_timespec(timeout);
  return sigtimedwait(&signals_, nullptr, &wait);
}

int Supervisor::supervise(std::chrono::milliseconds tick) {
  for (;;) {
    if (const int stop = next_shutdown_signal(tick); stop != 0) {
      return stop;
    }
    maintain();
  }
}

int Supervisor::next_shutdown_signal(std::chrono::milliseconds tick) {
  const int signal_number = wait_for_signal(tick);
  switch (signal_number) {
    case SIGTERM:
    case SIGINT:
      return signal_number;
    // Apache restarts its children gracefully on SIGHUP to apply a new configuration; with
    // none to apply, a restart would only cost forks, so the workers are left as they are.
    case SIGHUP:
      log_nothing_to_reload();
      return 0;
    // waitpid(-1) walks every child in the kernel (wait_consider_task): at 10,000 prefork
    // children and a tick every 10 ms that was 5 % of the CPU under load, so reap only when a
    // child has exited. Exits that coalesce into one SIGCHLD are all reaped by the loop, and
    // one that comes after it raises SIGCHLD again.
    case SIGCHLD:
      reap();
      return 0;
    default:
      return 0;
  }
}

Supervisor::Drained Supervisor::drain(int signal_number, std::chrono::milliseconds timeout,
                                      std::chrono::milliseconds poll) {
  shutting_down_ = true;
  const auto started = std::chrono::steady_clock::now();
  log_event("shutdown", {{"phase", "draining"},
                         {"signal", signal_name(signal_number)},
                         {"workers", live_workers()},
                         {"timeout_ms", timeout.count()}});
  stop_accepting();
  signal_workers(SIGTERM);
  const std::size_t killed = wait_for_workers(started + timeout, poll);
  kill_workers_left();
  stop_metrics_process(poll);
  return {killed, std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)};
}

// Returns how many workers are left at the deadline (or at a second stop signal).
std::size_t Supervisor::wait_for_workers(std::chrono::steady_clock::time_point deadline,
                                         std::chrono::milliseconds poll) {
  while (live_workers() > 0 && std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const int received = wait_for_signal(std::clamp(left, std::chrono::milliseconds(1), poll));
    if (received == SIGTERM || received == SIGINT) {
      log_event("shutdown", {{"phase", "forced"}, {"signal", signal_name(received)}});
      break;
    }
    reap();
  }
  return live_workers();
}

void Supervisor::reap() {
  int status = 0;
  pid_t pid = 0;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    on_exit(pid, status);
  }
}

void Supervisor::on_exit(pid_t pid, int status) {
  if (pid == metrics_pid_) {
    on_metrics_process_exit(status);
  } else {
    on_child_exit(pid, status);
  }
}

void Supervisor::on_metrics_process_exit(int status) {
  metrics_pid_ = -1;
  if (shutting_down_) {
    return;
  }
  log_error("metrics_exited",
            {{"status", WIFEXITED(status) ? WEXITSTATUS(status) : -1},
             {"signal", WIFSIGNALED(status) ? signal_name(WTERMSIG(status)) : ""}});
  launch_metrics_process();  // safe: a master starts no threads
}

void Supervisor::kill_workers_left() {
  if (live_workers() == 0) {
    return;
  }
  signal_workers(SIGKILL);
  int status = 0;
  while (live_workers() > 0) {
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      break;
    }
    on_exit(pid, status);
  }
}

void Supervisor::stop_metrics_process(std::chrono::milliseconds poll) {
  if (metrics_pid_ < 0) {
    return;
  }
  kill(metrics_pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kMetricsStopTimeout;
  while (metrics_pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    wait_for_signal(poll);
    reap();
  }
  if (metrics_pid_ > 0) {
    kill(metrics_pid_, SIGKILL);
    waitpid(metrics_pid_, nullptr, 0);
    metrics_pid_ = -1;
  }
}

}  // namespace echolab
