// Start-up check of what the kernel and ulimits allow against what a server is sized for,
// so that "10,000 connections" fails with a message instead of a mystery.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace echolab {

// Raises the soft RLIMIT_NOFILE to the hard limit, then returns one line per limit that
// `connections` sockets and `tasks` processes or threads would exceed (ulimit -n, ulimit -u,
// kernel.pid_max, kernel.threads-max), each saying how to raise it. Empty when all fit.
std::vector<std::string> check_capacity(std::size_t connections, std::size_t tasks);

}  // namespace echolab
