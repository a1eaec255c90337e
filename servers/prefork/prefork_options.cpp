#include "servers/prefork/prefork_options.hpp"

#include <algorithm>
#include <string>

#include <CLI/CLI.hpp>

namespace echolab::prefork {

std::size_t PreforkOptions::worker_cap() const {
  return std::min(max_workers, server.max_connections);
}

namespace {

void require_at_most(const std::string& flag, std::size_t value, const std::string& other_flag,
                     std::size_t other) {
  if (value > other) {
    throw CLI::ValidationError(
        flag, std::to_string(value) + " is more than " + other_flag + " " + std::to_string(other));
  }
}

}  // namespace

void add_prefork_options(CLI::App& app, PreforkOptions& options) {
  add_server_options(app, options.server);
  constexpr std::size_t kMostWorkers = 4'194'304;  // the kernel's largest pid_max
  app.add_option("--start-servers", options.start_servers, "Children forked at start")
      ->check(CLI::Range(std::size_t{0}, kMostWorkers))
      ->capture_default_str();
  app.add_option("--min-spare", options.min_spare,
                 "Fork more children when fewer than this many are idle")
      ->check(CLI::Range(std::size_t{1}, kMostWorkers))
      ->capture_default_str();
  app.add_option("--max-spare", options.max_spare,
                 "Retire idle children when more than this many are idle")
      ->check(CLI::Range(std::size_t{1}, kMostWorkers))
      ->capture_default_str();
  app.add_option("--max-workers", options.max_workers,
                 "Most children at once (each serves one connection: the connection cap)")
      ->check(CLI::Range(std::size_t{1}, kMostWorkers))
      ->capture_default_str();
  app.add_option("--max-connections-per-child", options.max_connections_per_child,
                 "A child exits after serving this many connections and is replaced (0 = never)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 40))
      ->capture_default_str();
  app.callback([&options] {
    require_at_most("--min-spare", options.min_spare, "--max-spare", options.max_spare);
    require_at_most("--min-spare", options.min_spare, "--max-workers", options.max_workers);
    require_at_most("--start-servers", options.start_servers, "--max-workers", options.max_workers);
  });
}

}  // namespace echolab::prefork
