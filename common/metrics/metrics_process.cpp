#include "common/metrics/metrics_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <exception>
#include <memory>
#include <utility>

#include "common/metrics/metrics.hpp"
#include "common/posix/die_with_parent.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/server/log.hpp"

namespace echolab {
namespace {

constexpr int kReadyTimeoutMs = 10'000;

[[noreturn]] void serve_metrics(const MetricsProcessSetup& setup, Scoreboard& scoreboard,
                                UniqueFd ready) {
  try {
    scoreboard.make_read_only();
    ServerMetrics metrics(setup.model);
    // Every scrape reports the children's counters as of that scrape.
    const auto collectable =
        make_advancing_collectable(metrics, [&scoreboard] { return scoreboard.sum(); });
    const pid_t self = getpid();
    const auto proc_stats = make_proc_stats_collectable(setup.model, [&scoreboard, &setup, self] {
      ServerProcesses processes;
      processes.inspected = {setup.master_pid, self};
      processes.workers = scoreboard.live_workers();
      processes.worker_switches = scoreboard.sum().worker_switches;
      return processes;
    });
    const MetricsEndpoint endpoint(setup.endpoint, {collectable, proc_stats});
    log_event("metrics_started", {{"listen", setup.endpoint.to_string()}});
    [[maybe_unused]] const auto written = write(ready.get(), "1", 1);
    ready.reset();
    // SIGTERM is blocked (inherited from the master), so it waits here for sigwait().
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    int received = 0;
    sigwait(&stop_signals, &received);
  } catch (const std::exception& error) {
    log_error("metrics_failed", {{"listen", setup.endpoint.to_string()}, {"error", error.what()}});
    _exit(1);
  }
  _exit(0);
}

// Waits for the metrics process to report that it listens (one byte) or to fail (EOF).
bool wait_until_ready(int ready_fd) {
  pollfd entry{ready_fd, POLLIN, 0};
  char byte = 0;
  return poll(&entry, 1, kReadyTimeoutMs) == 1 && read(ready_fd, &byte, 1) == 1;
}

}  // namespace

pid_t start_metrics_process(const MetricsProcessSetup& setup, Scoreboard& scoreboard) {
  std::array<int, 2> ends{};
  if (pipe2(ends.data(), O_CLOEXEC) != 0) {
    log_error("metrics_failed", {{"error", "pipe2"}, {"errno", errno}});
    return -1;
  }
  UniqueFd ready_read(ends[0]);
  UniqueFd ready_write(ends[1]);
  const pid_t pid = fork();
  if (pid == 0) {
    ready_read.reset();
    for (const int fd : setup.fds_to_close) {
      if (fd >= 0) {
        close(fd);
      }
    }
    if (!die_with_parent(SIGTERM, setup.master_pid)) {
      _exit(0);
    }
    static_cast<void>(signal(SIGINT, SIG_IGN));  // the master turns Ctrl-C into an orderly stop
    static_cast<void>(signal(SIGHUP, SIG_IGN));  // the master answers a hangup
    serve_metrics(setup, scoreboard, std::move(ready_write));
  }
  ready_write.reset();
  if (pid < 0) {
    log_error("metrics_failed", {{"error", "fork"}, {"errno", errno}});
    return -1;
  }
  if (!wait_until_ready(ready_read.get())) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

}  // namespace echolab
