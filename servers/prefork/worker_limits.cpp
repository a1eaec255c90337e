#include "servers/prefork/worker_limits.hpp"

#include <linux/capability.h>
#include <sys/resource.h>

#include <fstream>
#include <sstream>

namespace echolab::prefork {
namespace {

std::uint64_t free_tasks(std::uint64_t limit, std::uint64_t in_use) {
  const std::uint64_t taken = in_use + kReservedTasks;
  return limit > taken ? limit - taken : 0;
}

std::uint64_t read_number(const char* path) {
  std::ifstream file(path);
  std::uint64_t value = 0;
  file >> value;
  return value;
}

// The fourth field of /proc/loadavg is "runnable/total" scheduling entities: every thread.
std::uint64_t read_tasks_in_use() {
  std::ifstream file("/proc/loadavg");
  std::string load1, load5, load15, entities;
  file >> load1 >> load5 >> load15 >> entities;
  const auto slash = entities.find('/');
  return slash == std::string::npos ? 0 : std::stoull(entities.substr(slash + 1));
}

// Root with CAP_SYS_RESOURCE or CAP_SYS_ADMIN is exempt from RLIMIT_NPROC.
bool exempt_from_nproc() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("CapEff:")) {
      const std::uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
      return (caps & (1ULL << CAP_SYS_RESOURCE)) != 0 || (caps & (1ULL << CAP_SYS_ADMIN)) != 0;
    }
  }
  return false;
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
  if (limits.nproc) {
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

SystemLimits read_system_limits() {
  SystemLimits limits;
  rlimit nproc{};
  if (getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY &&
      !exempt_from_nproc()) {
    limits.nproc = nproc.rlim_cur;
  }
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    limits.nofile = nofile.rlim_cur == RLIM_INFINITY ? UINT64_MAX : nofile.rlim_cur;
  }
  limits.pid_max = read_number("/proc/sys/kernel/pid_max");
  limits.threads_max = read_number("/proc/sys/kernel/threads-max");
  limits.somaxconn = read_number("/proc/sys/net/core/somaxconn");
  limits.tasks_in_use = read_tasks_in_use();
  return limits;
}

}  // namespace echolab::prefork
