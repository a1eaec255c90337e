// The process that serves /metrics for the multi-process servers (prefork, hybrid).
// prometheus-cpp's Exposer runs threads, and a process with threads must not fork (only the
// forking thread survives in the child, holding whatever locks the others held), so the
// Exposer lives in a child of its own that the master forks first and that never forks. It
// sums the scoreboard at each scrape.
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/metrics/scoreboard.hpp"
#include "common/server/server_options.hpp"

namespace echolab {

struct MetricsProcessSetup {
  Model model = Model::prefork;
  Endpoint endpoint;
  pid_t master_pid = 0;
  std::vector<int> fds_to_close;  // the listener and others it must not keep open
};

// Forks the metrics process and waits until its endpoint listens. Returns its pid, or -1
// when it could not start (the reason is logged by the metrics process).
pid_t start_metrics_process(const MetricsProcessSetup& setup, Scoreboard& scoreboard);

}  // namespace echolab
