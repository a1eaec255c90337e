// Checks, before a probe starts many threads or processes, that the kernel's limits leave
// room for them, so a probe fails up front with one line naming the limit instead of
// half-way with EAGAIN.
#pragma once

#include <string>
#include <string_view>

namespace echolab::probe {

// Every thread and every process is one task to the kernel: threads-max, pid_max, the
// cgroup's pids.max and RLIMIT_NPROC (ulimit -u) all count tasks. Throws ProbeError naming
// the first limit that `extra_tasks` more tasks would exceed; `what` says what they are
// ("1000 threads") and `option` which flag lowers the count.
void require_task_headroom(long long extra_tasks, std::string_view what, std::string_view option);

struct TaskHeadroom {
  long long tasks = 0;  // how many more tasks every limit allows (never below 0)
  std::string limit;    // the limit that allows the fewest
};

// The tightest of those limits now, keeping the same spare tasks for the machine.
TaskHeadroom task_headroom();

}  // namespace echolab::probe
