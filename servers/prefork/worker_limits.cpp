#include "servers/prefork/worker_limits.hpp"

#include <sstream>

namespace echolab::prefork {
namespace {

std::uint64_t free_tasks(std::uint64_t limit, std::uint64_t in_use) {
  const std::uint64_t taken = in_use + kReservedTasks;
  return limit > taken ? limit - taken : 0;
}

}  // namespace

WorkerCap cap_workers(std::size_t requested, const SystemLimits& limits) {
  WorkerCap cap{requested, {}};
  const auto apply = [&](std::uint64_t allowed, const std::string& why) {
    if (allowed < cap.workers) {
      cap.workers = static_cast<std::size_t>(allowed);
      std::ostringstream reason;
      reason << why << " leaves room for " << allowed << " children (" << limits.tasks_in_use
             << " tasks already running)";
      cap.limited_by = reason.str();
    }
  };
  if (limits.nproc && !limits.nproc_exempt) {
    apply(free_tasks(*limits.nproc, limits.tasks_in_use),
          "ulimit -u " + std::to_string(*limits.nproc) + " (raise it with ulimit -u)");
  }
  if (limits.pid_max > 0) {  // 0: not readable, nothing to check against
    apply(free_tasks(limits.pid_max, limits.tasks_in_use),
          "kernel.pid_max " + std::to_string(limits.pid_max) + " (raise it with sysctl)");
  }
  if (limits.threads_max > 0) {
    apply(free_tasks(limits.threads_max, limits.tasks_in_use),
          "kernel.threads-max " + std::to_string(limits.threads_max) + " (raise it with sysctl)");
  }
  return cap;
}

}  // namespace echolab::prefork
