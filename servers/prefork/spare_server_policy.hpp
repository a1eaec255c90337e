// How many children to fork or retire, decided in one place as in Apache prefork's
// perform_idle_server_maintenance(): keep the idle count between --min-spare and --max-spare,
// never exceed --max-workers, and when short, fork more each round (the rate doubles, up to a
// cap) so a burst of connections is met in a few rounds instead of one child at a time.
#pragma once

#include <cstddef>

namespace echolab::prefork {

// The most children forked in one maintenance round. Apache caps at 32 per second; a fork
// of this small master takes tens of microseconds, so a round of 1024 lasts well under 100 ms
// and 10,000 children are up within a second or two.
inline constexpr std::size_t kMaxSpawnRate = 1024;

struct WorkerCounts {
  std::size_t idle = 0;      // ready and waiting in accept()
  std::size_t starting = 0;  // forked, not yet ready (counted as idle, as Apache does)
  std::size_t total = 0;     // every live child, whatever its state
};

struct SparePolicyLimits {
  std::size_t min_spare = 0;
  std::size_t max_spare = 0;
  std::size_t max_workers = 0;
};

struct SpareServerDecision {
  std::size_t spawn = 0;
  std::size_t retire = 0;
  std::size_t next_spawn_rate = 1;
};

// `spawn_rate` is the previous decision's next_spawn_rate (1 at start). Retiring happens only
// when `retire_due` (the master allows it once per second, so a connection ramp that drains
// the spares moments later does not see them killed and forked again) and never while
// children are still starting (they were forked for a reason a moment ago).
SpareServerDecision decide_spare_servers(const WorkerCounts& counts,
                                         const SparePolicyLimits& limits, std::size_t spawn_rate,
                                         bool retire_due);

}  // namespace echolab::prefork
