#include "common/capacity.hpp"

#include <sys/resource.h>

#include <fstream>

namespace echolab {
namespace {

// Descriptors a server needs beside its connections: listener, metrics, logs, /proc reads.
constexpr std::size_t kSpareDescriptors = 64;

std::size_t read_sysctl(const char* path) {
  std::ifstream file(path);
  std::size_t value = 0;
  file >> value;
  return value;
}

rlim_t raise_open_files_limit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

}  // namespace

std::vector<std::string> check_capacity(std::size_t connections, std::size_t tasks) {
  std::vector<std::string> problems;
  const auto need = [](std::size_t n) { return std::to_string(n); };
  const rlim_t open_files = raise_open_files_limit();
  if (open_files != RLIM_INFINITY && connections + kSpareDescriptors > open_files) {
    problems.push_back("ulimit -n is " + need(open_files) + ", " + need(connections) +
                       " connections need " + need(connections + kSpareDescriptors) +
                       ": raise it with ulimit -n (hard limit: /etc/security/limits.conf)");
  }
  rlimit processes{};
  getrlimit(RLIMIT_NPROC, &processes);
  if (processes.rlim_cur != RLIM_INFINITY && tasks > processes.rlim_cur) {
    problems.push_back("ulimit -u is " + need(processes.rlim_cur) + ", below " + need(tasks) +
                       " processes or threads: raise it with ulimit -u");
  }
  const std::size_t pid_max = read_sysctl("/proc/sys/kernel/pid_max");
  if (pid_max != 0 && tasks > pid_max) {
    problems.push_back("kernel.pid_max is " + need(pid_max) + ", below " + need(tasks) +
                       " processes or threads: sysctl -w kernel.pid_max=" + need(tasks * 2));
  }
  const std::size_t threads_max = read_sysctl("/proc/sys/kernel/threads-max");
  if (threads_max != 0 && tasks > threads_max) {
    problems.push_back("kernel.threads-max is " + need(threads_max) + ", below " + need(tasks) +
                       ": sysctl -w kernel.threads-max=" + need(tasks * 2));
  }
  return problems;
}

}  // namespace echolab
