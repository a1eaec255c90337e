// Round trips of a message between two threads through shared memory, and between two
// processes through a pipe, a Unix socket and shared memory. Both shared-memory pairs use
// the same mapping and the same futex wake-up, so the only difference between them is thread
// against process: the figures tell whether fast communication comes from the sharing or
// from the thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "probes/sample_summary.hpp"

namespace echolab::probe {

struct CommunicationOptions {
  int samples = 7;
  int round_trips = 1'000;  // per sample
  long long small_bytes = 64;
  long long large_bytes = 65'536;
  // Each figure stops sampling early when this is spent (after one sample).
  double max_seconds_per_figure = 0.5;
};

// Where the two sides run: both pinned to one CPU (every hand-over is a switch), pinned to
// two CPUs (every hand-over is a wake-up on the other CPU), or left to the scheduler.
enum class Placement { one_cpu, two_cpus, unpinned };

struct PairFigures {
  std::string pair;  // "thread_shared_memory", "process_pipe", ...
  SampleSummary round_trip_us;
  SampleSummary mib_per_second;  // message bytes moved both ways per second
};

struct SizeFigures {
  long long bytes = 0;
  std::vector<PairFigures> pairs;
  // Each process-shared-memory sample minus the thread-shared-memory sample taken right
  // after it: its spread tells whether the thread makes a difference beyond the noise.
  SampleSummary process_minus_thread_shared_memory_us;
};

struct PlacementFigures {
  Placement placement = Placement::unpinned;
  std::vector<int> cpus;  // the CPUs pinned to; empty when unpinned
  std::vector<SizeFigures> sizes;
};

struct CommunicationResult {
  CommunicationOptions options;
  std::vector<PlacementFigures> placements;
  // Why a placement is missing (two CPUs on a machine that lets the probe use only one).
  std::optional<std::string> two_cpus_skipped;
};

CommunicationResult run_communication_probe(const CommunicationOptions& options);
Json to_json(const CommunicationResult& result);
std::string summary_line(const CommunicationResult& result);

}  // namespace echolab::probe
