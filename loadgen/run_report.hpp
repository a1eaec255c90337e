// The outcome of a run, for people (a summary) and for scripts (JSON).
#pragma once

#include <cstdint>
#include <ostream>

#include "loadgen/load_options.hpp"
#include "loadgen/load_stats.hpp"

namespace echolab::load {

struct RunReport {
  LoadOptions options;
  LoadStats stats;
  double duration_s = 0;  // from the first connect to the end, ramp included
  double hold_s = 0;      // how long every connection was held (hold mode)
  std::uint64_t connections_open_peak = 0;
  bool interrupted = false;  // stopped early by SIGINT or SIGTERM

  [[nodiscard]] double requests_per_second() const;
  // 0 when no error was counted, 1 otherwise.
  [[nodiscard]] int exit_status() const;
};

// The JSON schema is described in docs/loadgen.md; latencies are in microseconds.
void write_json(std::ostream& out, const RunReport& report);

void write_summary(std::ostream& out, const RunReport& report);

}  // namespace echolab::load
