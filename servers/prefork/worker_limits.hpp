// What the kernel lets the prefork server fork: --max-workers is checked at start against the
// per-user process limit, pid_max and threads-max (a child is a task in all three), and the
// per-process descriptor limit against what one process needs. Too many workers are capped
// with a warning rather than refused: the server still does its job, up to what the machine
// allows, and the log line says which limit to raise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/server/capacity.hpp"

namespace echolab::prefork {

// Tasks kept free for the master, the metrics process's threads and the rest of the system.
inline constexpr std::uint64_t kReservedTasks = 64;
// Descriptors one process needs: stdio, the listener, /dev/null, a client connection, and
// the metrics process's HTTP server and /proc reads.
inline constexpr std::uint64_t kDescriptorsPerProcess = 64;

struct WorkerCap {
  std::size_t workers = 0;
  std::string limited_by;  // empty when the request fits; else which limit and how to raise it
};

// Pure: the most workers the limits (from read_system_limits()) allow, given `requested`.
WorkerCap cap_workers(std::size_t requested, const SystemLimits& limits);

}  // namespace echolab::prefork
