// How many children to fork or retire, decided in one place as in Apache prefork's
// perform_idle_server_maintenance(): keep the idle count between --min-spare and --max-spare,
// never exceed --max-workers. When short, fork what is missing: the spares below --min-spare
// plus every connection already waiting in the listen backlog, which the master reads from
// the listening socket, so a ramp is met in the round that sees it, and no more is forked
// than the connections need.
#pragma once

#include <cstddef>

namespace echolab::prefork {

// The most children forked in one maintenance round: a fork of the small spawner takes tens
// of microseconds, so a round of 1024 lasts well under 100 ms, and the master gets back to
// its scan between rounds.
inline constexpr std::size_t kMaxSpawnRate = 1024;

struct WorkerCounts {
  std::size_t idle = 0;      // ready and waiting in accept()
  std::size_t starting = 0;  // forked, not yet ready (counted as idle, as Apache does)
  std::size_t total = 0;     // every live child, whatever its state
  std::size_t waiting = 0;   // connections in the listen backlog, not yet accepted
};

struct SparePolicyLimits {
  std::size_t min_spare = 0;
  std::size_t max_spare = 0;
  std::size_t max_workers = 0;
};

struct SpareServerDecision {
  std::size_t spawn = 0;
  std::size_t retire = 0;
};

// Retiring happens only when `retire_due` (the master allows it once per second, so a
// connection ramp that drains the spares moments later does not see them killed and forked
// again) and never while children are still starting (they were forked for a reason a
// moment ago) or connections wait.
SpareServerDecision decide_spare_servers(const WorkerCounts& counts,
                                         const SparePolicyLimits& limits, bool retire_due);

}  // namespace echolab::prefork
