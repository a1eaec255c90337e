// The hybrid server's command line: every server's flags, plus how many worker processes and
// how they share the port.
#pragma once

#include <cstddef>

#include "common/server/server_options.hpp"

namespace echolab::hybrid {

// How the workers share the listening port.
enum class PortSharing {
  // One listening socket per worker, all bound with SO_REUSEPORT: the kernel hashes each new
  // connection to one socket, so each worker accepts only from its own queue (nginx's
  // `listen ... reuseport`).
  reuse_port,
  // One listening socket opened by the master before the forks and accepted from by every
  // worker (nginx's default, with its accept_mutex off).
  shared_listener,
};

struct HybridOptions {
  ServerOptions server = default_options(Model::hybrid);
  std::size_t workers = 0;  // 0 = one per CPU
  PortSharing sharing = PortSharing::reuse_port;
};

// The largest --workers: a worker per CPU is the point, so this only stops a typo.
inline constexpr std::size_t kMaxWorkers = 1024;

// Adds the common server flags, --workers and --shared-listener.
void add_hybrid_options(CLI::App& app, HybridOptions& options);

// --workers as given, or one per CPU (`cpus`, at least 1) for 0.
[[nodiscard]] std::size_t resolved_worker_count(std::size_t requested, unsigned cpus);

}  // namespace echolab::hybrid
