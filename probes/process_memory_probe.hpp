// Memory per idle forked process: many children each write a little memory of their own and
// block; their own accounting (RSS, PSS, page tables) divided by their number tells what one
// costs, from a small parent and from a parent with a large private heap, which the children
// share copy-on-write.
#pragma once

#include <optional>
#include <string>

#include "probes/sample_summary.hpp"

namespace echolab::probe {

struct ProcessMemoryOptions {
  int samples = 3;
  int processes = 200;
  // Private memory the parent writes before the second round; 0 skips it. Every child
  // copies, walks and tears down the page tables of all of it, so the run time grows with
  // processes x parent_rss_mib: 64 MiB keeps the default run to a few seconds.
  long long parent_rss_mib = 64;
  long long touch_kib = 64;  // fresh memory each child writes before it blocks
  // Sampling of each parent size stops early when this is spent (after one sample).
  double max_seconds_per_figure = 2.0;
};

struct ProcessMemoryFigures {
  long long parent_rss_kib = 0;  // before the children were forked
  long long parent_pss_kib = 0;
  // The children's own accounting summed and divided by their number.
  SampleSummary rss_kib_per_process;
  SampleSummary pss_kib_per_process;
  // What the machine's total PSS grew by, per child: the children's PSS plus what the
  // parent's PSS changed by (it falls as its pages become shared).
  SampleSummary pss_added_kib_per_process;
  SampleSummary page_tables_kib_per_process;
  // From /proc/meminfo, machine-wide: kernel memory no process's RSS shows.
  SampleSummary kernel_stack_kib_per_process;
};

struct ProcessMemoryResult {
  ProcessMemoryOptions options;
  ProcessMemoryFigures small_parent;
  std::optional<ProcessMemoryFigures> large_parent;
};

ProcessMemoryResult run_process_memory_probe(const ProcessMemoryOptions& options);
Json to_json(const ProcessMemoryResult& result);
std::string summary_line(const ProcessMemoryResult& result);

}  // namespace echolab::probe
