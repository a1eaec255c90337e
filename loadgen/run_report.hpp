// The outcome of a run, for people (a summary) and for scripts (JSON).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loadgen/load_options.hpp"
#include "loadgen/load_stats.hpp"
#include "loadgen/second_series.hpp"
#include "loadgen/stall_watch.hpp"
#include "loadgen/start_time.hpp"

namespace echolab::load {

// One result a merged report was made of.
struct MergedPart {
  std::string file;
  std::optional<Shard> shard;  // none for a run that was not a shard
  std::uint64_t connections = 0;
  std::uint64_t requests = 0;
  WallClock::time_point window_start{};
  WallClock::time_point window_end{};
};

struct RunReport {
  LoadOptions options;
  LoadStats stats;
  SecondSeries series;    // the run second by second, from window_start
  double duration_s = 0;  // from the first connect to the end, ramp included
  double hold_s = 0;      // how long every connection was held (hold mode)
  std::uint64_t connections_open_peak = 0;
  bool interrupted = false;  // stopped early by SIGINT or SIGTERM
  // The measurement window in wall-clock time: from the start of the run to its end.
  WallClock::time_point window_start{};
  WallClock::time_point window_end{};
  std::vector<MergedPart> merged_from;  // empty unless merged by `echolab-load merge`
  std::vector<Stall> stalls;
  // For a merged result: the file each stall of `stalls` was seen in, in the same order.
  std::vector<std::string> stall_files;

  [[nodiscard]] double requests_per_second() const;
  // Why the run failed, in one line: no request completed (or, for an attack, no connection
  // opened), errors counted, more requests unsent than --unsent-tolerance allows, stalls.
  // Nothing when it measured something and none of these happened.
  [[nodiscard]] std::optional<std::string> failure() const;
  // 0 when the run did not fail, 1 when it did.
  [[nodiscard]] int exit_status() const;
};

// Members stay in the order they are added, the order docs/loadgen.md describes.
using Json = nlohmann::ordered_json;

// How every histogram in a result is cut into counters; results merge only when it is equal.
Json histogram_layout_json();

// The JSON schema is described in docs/loadgen.md; latencies are in microseconds.
void write_json(std::ostream& out, const RunReport& report);

void write_summary(std::ostream& out, const RunReport& report);

}  // namespace echolab::load
