#include "servers/hybrid/hybrid_options.hpp"

#include <algorithm>

#include <CLI/CLI.hpp>

namespace echolab::hybrid {

void add_hybrid_options(CLI::App& app, HybridOptions& options) {
  add_server_options(app, options.server);
  app.add_option("--workers", options.workers, "Worker processes (0 = one per CPU)")
      ->check(CLI::Range(std::size_t{0}, kMaxWorkers))
      ->capture_default_str();
  app.add_flag_callback(
      "--shared-listener", [&options] { options.sharing = PortSharing::shared_listener; },
      "One listening socket opened by the master and shared by every worker, instead of one "
      "SO_REUSEPORT socket per worker");
}

std::size_t resolved_worker_count(std::size_t requested, unsigned cpus) {
  return requested != 0 ? requested : std::max(1u, cpus);
}

}  // namespace echolab::hybrid
