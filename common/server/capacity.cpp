#include "common/server/capacity.hpp"

#include <linux/capability.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <string_view>

namespace echolab {
namespace {

// Descriptors a server needs beside its connections: listener, metrics, logs, /proc reads.
constexpr std::size_t kSpareDescriptors = 64;
constexpr std::uint64_t kIanaEphemeralLow = 49152;
constexpr std::uint64_t kIanaEphemeralHigh = 65535;

// The first number of a /proc or /sys file, 0 when it cannot be read.
std::uint64_t read_number(const char* path) {
  std::ifstream file(path);
  std::uint64_t value = 0;
  file >> value;
  return file ? value : 0;
}

std::uint64_t from_rlimit(rlim_t value) {
  return value == RLIM_INFINITY ? SystemLimits::kUnlimited : static_cast<std::uint64_t>(value);
}

// The fourth field of /proc/loadavg is "runnable/total" scheduling entities: every thread.
std::uint64_t read_tasks_in_use() {
  std::ifstream file("/proc/loadavg");
  std::string load1, load5, load15, entities;
  file >> load1 >> load5 >> load15 >> entities;
  const auto slash = entities.find('/');
  if (slash == std::string::npos) {
    return 0;
  }
  std::uint64_t total = 0;
  const std::string_view digits = std::string_view(entities).substr(slash + 1);
  std::from_chars(digits.data(), digits.data() + digits.size(), total);
  return total;
}

// The kernel lets a fork past RLIMIT_NPROC when the real user is root or the process has
// CAP_SYS_RESOURCE or CAP_SYS_ADMIN (the effective set, CapEff in /proc/self/status).
bool exempt_from_nproc() {
  if (::getuid() == 0) {
    return true;
  }
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("CapEff:")) {
      const std::uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
      return (caps & (1ULL << CAP_SYS_RESOURCE)) != 0 || (caps & (1ULL << CAP_SYS_ADMIN)) != 0;
    }
  }
  return false;
}

void read_port_range(SystemLimits& limits) {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  if (!(range >> limits.ephemeral_port_low >> limits.ephemeral_port_high)) {
    limits.ephemeral_port_low = kIanaEphemeralLow;
    limits.ephemeral_port_high = kIanaEphemeralHigh;
  }
}

}  // namespace

std::uint64_t SystemLimits::ephemeral_ports() const {
  return ephemeral_port_high >= ephemeral_port_low ? ephemeral_port_high - ephemeral_port_low + 1
                                                   : 0;
}

void raise_open_files_limit(std::uint64_t wanted_open_files) {
  rlimit open_files{};
  if (getrlimit(RLIMIT_NOFILE, &open_files) != 0) {
    return;
  }
  if (from_rlimit(open_files.rlim_cur) < wanted_open_files &&
      open_files.rlim_cur < open_files.rlim_max) {
    open_files.rlim_cur = open_files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &open_files);
  }
}

SystemLimits read_system_limits() {
  SystemLimits limits;
  rlimit open_files{};
  if (getrlimit(RLIMIT_NOFILE, &open_files) == 0) {
    limits.open_files_soft = from_rlimit(open_files.rlim_cur);
    limits.open_files_hard = from_rlimit(open_files.rlim_max);
  }
  rlimit processes{};
  if (getrlimit(RLIMIT_NPROC, &processes) == 0 && processes.rlim_cur != RLIM_INFINITY) {
    limits.nproc = processes.rlim_cur;
  }
  limits.nproc_exempt = exempt_from_nproc();
  limits.pid_max = read_number("/proc/sys/kernel/pid_max");
  limits.threads_max = read_number("/proc/sys/kernel/threads-max");
  limits.tasks_in_use = read_tasks_in_use();
  limits.somaxconn = read_number("/proc/sys/net/core/somaxconn");
  read_port_range(limits);
  return limits;
}

std::vector<std::string> capacity_problems(const SystemLimits& limits, std::size_t connections,
                                           std::size_t tasks) {
  std::vector<std::string> problems;
  const auto need = [](std::uint64_t n) { return std::to_string(n); };
  const std::uint64_t open_files = limits.open_files_soft;
  if (open_files != SystemLimits::kUnlimited && connections + kSpareDescriptors > open_files) {
    problems.push_back("ulimit -n is " + need(open_files) + ", " + need(connections) +
                       " connections need " + need(connections + kSpareDescriptors) +
                       ": raise it with ulimit -n (hard limit: /etc/security/limits.conf)");
  }
  if (limits.nproc && tasks > *limits.nproc) {
    problems.push_back("ulimit -u is " + need(*limits.nproc) + ", below " + need(tasks) +
                       " processes or threads: raise it with ulimit -u");
  }
  if (limits.pid_max != 0 && tasks > limits.pid_max) {
    problems.push_back("kernel.pid_max is " + need(limits.pid_max) + ", below " + need(tasks) +
                       " processes or threads: sysctl -w kernel.pid_max=" + need(tasks * 2));
  }
  if (limits.threads_max != 0 && tasks > limits.threads_max) {
    problems.push_back("kernel.threads-max is " + need(limits.threads_max) + ", below " +
                       need(tasks) + ": sysctl -w kernel.threads-max=" + need(tasks * 2));
  }
  return problems;
}

std::vector<std::string> check_capacity(std::size_t connections, std::size_t tasks) {
  raise_open_files_limit();
  return capacity_problems(read_system_limits(), connections, tasks);
}

}  // namespace echolab
