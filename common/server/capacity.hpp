// What the kernel and the ulimits let this process have, read in one place for everything that
// checks them at start: the threads and pool servers (check_capacity below), the prefork
// master's worker cap, echolab-load's connection count and echolab-probe's task count. Each of
// those decides on its own what a limit means for it; only the reading is shared, so that
// "10,000 connections" fails with a message instead of a mystery, everywhere the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace echolab {

struct SystemLimits {
  static constexpr std::uint64_t kUnlimited = UINT64_MAX;

  std::uint64_t open_files_soft = 0;  // RLIMIT_NOFILE (`ulimit -n`), kUnlimited when unlimited
  std::uint64_t open_files_hard = 0;
  // RLIMIT_NPROC (`ulimit -u`): the tasks, threads included, this real user may have; none when
  // unlimited.
  std::optional<std::uint64_t> nproc;
  // The kernel does not apply RLIMIT_NPROC to root or to a process with CAP_SYS_RESOURCE or
  // CAP_SYS_ADMIN.
  bool nproc_exempt = false;
  std::uint64_t pid_max = 0;       // /proc/sys/kernel/pid_max; 0 when unreadable
  std::uint64_t threads_max = 0;   // /proc/sys/kernel/threads-max; 0 when unreadable
  std::uint64_t tasks_in_use = 0;  // every thread on the machine (/proc/loadavg); 0 when unreadable
  std::uint64_t somaxconn = 0;     // /proc/sys/net/core/somaxconn; 0 when unreadable
  // net.ipv4.ip_local_port_range: the local ports one address's outgoing connections can use
  // (IANA's 49152-65535 when it cannot be read, rather than refusing to run).
  std::uint64_t ephemeral_port_low = 0;
  std::uint64_t ephemeral_port_high = 0;

  [[nodiscard]] std::uint64_t ephemeral_ports() const;
};

// Raises the soft RLIMIT_NOFILE to the hard limit when it is below `wanted_open_files` (the
// default: always), as far as an unprivileged process may. Failure leaves the limit as it was,
// for the caller's check of read_system_limits() to report.
void raise_open_files_limit(std::uint64_t wanted_open_files = SystemLimits::kUnlimited);

// Reads the limits of this process and machine; changes nothing.
SystemLimits read_system_limits();

// One line per limit that `connections` sockets and `tasks` processes or threads would exceed
// (ulimit -n, ulimit -u, kernel.pid_max, kernel.threads-max), each saying how to raise it.
// Empty when all fit.
std::vector<std::string> capacity_problems(const SystemLimits& limits, std::size_t connections,
                                           std::size_t tasks);

// Raises the soft open-file limit to the hard one, then capacity_problems() for this machine.
std::vector<std::string> check_capacity(std::size_t connections, std::size_t tasks);

}  // namespace echolab
