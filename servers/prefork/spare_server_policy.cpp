#include "servers/prefork/spare_server_policy.hpp"

#include <algorithm>

namespace echolab::prefork {

SpareServerDecision decide_spare_servers(const WorkerCounts& counts,
                                         const SparePolicyLimits& limits, std::size_t spawn_rate,
                                         bool retire_due) {
  SpareServerDecision decision;
  const std::size_t available = counts.idle + counts.starting;
  const std::size_t room =
      limits.max_workers > counts.total ? limits.max_workers - counts.total : 0;
  if (available < limits.min_spare) {
    // Short: fork the shortfall or the current rate, whichever is more (the rate doubles
    // while the shortage lasts: a ramp keeps eating the spares as they come up), at most
    // kMaxSpawnRate in one round and never past --max-workers.
    const std::size_t rate = std::clamp<std::size_t>(spawn_rate, 1, kMaxSpawnRate);
    decision.spawn = std::min({std::max(limits.min_spare - available, rate), kMaxSpawnRate, room});
    decision.next_spawn_rate = decision.spawn > 0 ? std::min(rate * 2, kMaxSpawnRate) : rate;
    return decision;
  }
  decision.next_spawn_rate = 1;
  if (retire_due && counts.starting == 0 && counts.idle > limits.max_spare) {
    decision.retire = counts.idle - limits.max_spare;
  }
  return decision;
}

}  // namespace echolab::prefork
