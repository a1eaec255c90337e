#include "servers/prefork/spare_server_policy.hpp"

#include <algorithm>

namespace echolab::prefork {

SpareServerDecision decide_spare_servers(const WorkerCounts& counts,
                                         const SparePolicyLimits& limits, bool retire_due) {
  SpareServerDecision decision;
  const std::size_t available = counts.idle + counts.starting;
  const std::size_t wanted = limits.min_spare + counts.waiting;
  const std::size_t room =
      limits.max_workers > counts.total ? limits.max_workers - counts.total : 0;
  if (available < wanted) {
    // Apache doubles a spawn rate each round while short, because it cannot see the
    // backlog; at a 10 ms round that ran away to 1024 a round during a 1,000/s ramp, forked
    // thousands of children the ramp did not need, retired them, and started again from 1
    // while connections queued. The backlog says what is needed.
    decision.spawn = std::min({wanted - available, kMaxSpawnRate, room});
    return decision;
  }
  if (retire_due && counts.starting == 0 && counts.waiting == 0 && counts.idle > limits.max_spare) {
    decision.retire = counts.idle - limits.max_spare;
  }
  return decision;
}

}  // namespace echolab::prefork
