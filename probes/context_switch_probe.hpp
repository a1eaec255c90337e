// Context switches between two processes against two threads of one process: both sides
// pinned to the same CPU hand one byte back and forth over pipes, so every hand-over is a
// switch. Optionally each side writes its own working set of pages before answering, so
// that a TLB flush on the switch would show as extra misses.
#pragma once

#include <optional>
#include <string>

#include "probes/proc_files.hpp"
#include "probes/sample_summary.hpp"

namespace echolab::probe {

struct ContextSwitchOptions {
  int samples = 7;
  int round_trips = 10'000;  // per sample; each round trip is two switches
  int touch_pages = 256;     // per side, for the second variant; 0 skips it
  std::optional<int> cpu;    // default: the first CPU the probe may run on
  // Sampling of each variant stops early when this is spent (after one sample).
  double max_seconds_per_variant = 1.5;
};

struct SwitchFigures {
  SampleSummary process_ns_per_switch;
  SampleSummary thread_ns_per_switch;
  // Each sample's process figure minus the thread figure taken right after it: its spread
  // tells a difference from noise, which the difference of the two medians cannot.
  SampleSummary process_minus_thread_ns_per_sample;
  // Switches of the probe's main thread per round trip (from getrusage), about 1 when the
  // two sides really take turns on one CPU.
  double process_switches_per_round_trip = 0;
  double thread_switches_per_round_trip = 0;
};

struct ContextSwitchResult {
  ContextSwitchOptions options;
  int cpu = -1;
  CpuDescription cpu_description;
  std::string meltdown;
  // One write and one read of a pipe by a single thread: the system-call part of a switch.
  SampleSummary pipe_write_read_ns;
  SwitchFigures plain;
  std::optional<SwitchFigures> touching;
};

ContextSwitchResult run_context_switch_probe(const ContextSwitchOptions& options);
Json to_json(const ContextSwitchResult& result);
std::string summary_line(const ContextSwitchResult& result);

}  // namespace echolab::probe
