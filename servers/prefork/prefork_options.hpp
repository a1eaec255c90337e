// The prefork server's command line: the flags every server shares, plus Apache prefork's
// process-management knobs.
#pragma once

#include <cstddef>

#include "common/server/server_options.hpp"

namespace echolab::prefork {

struct PreforkOptions {
  ServerOptions server = default_options(Model::prefork);
  std::size_t start_servers = 64;
  std::size_t min_spare = 32;
  std::size_t max_spare = 256;
  std::size_t max_workers = 10'000;
  std::size_t max_connections_per_child = 0;  // 0 = a child is never recycled

  // One child serves one connection, so the connection cap and the process cap are the same
  // thing: the smaller of --max-workers and --max-connections. Connections beyond it wait in
  // the listen backlog until a child is free; none is rejected.
  [[nodiscard]] std::size_t worker_cap() const;
};

// Adds the shared flags and --start-servers, --min-spare, --max-spare, --max-workers and
// --max-connections-per-child, with the checks between them (reported by
// parse_command_line as one line naming the flag, exit 2).
void add_prefork_options(CLI::App& app, PreforkOptions& options);

}  // namespace echolab::prefork
