// The outcome of a run, for people (a summary) and for scripts (JSON).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

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
  // Why the run measured nothing, in one line: no request completed (or, for an attack, no
  // connection opened), with what happened instead. Nothing when it measured something.
  [[nodiscard]] std::optional<std::string> failure() const;
  // 0 when the run measured something without a single error counted, 1 otherwise.
  [[nodiscard]] int exit_status() const;
};

// The JSON schema is described in docs/loadgen.md; latencies are in microseconds.
void write_json(std::ostream& out, const RunReport& report);

void write_summary(std::ostream& out, const RunReport& report);

}  // namespace echolab::load
