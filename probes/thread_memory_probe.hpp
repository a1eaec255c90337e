// Memory per idle thread, with the default stack and with a small one: many threads each
// write a little of their stack and block; the kernel's accounting of the process before and
// after tells what they cost, resident (RSS, PSS) and reserved (virtual size).
#pragma once

#include <string>

#include "probes/sample_summary.hpp"

namespace echolab::probe {

struct ThreadMemoryOptions {
  int samples = 3;
  int threads = 1000;
  long long small_stack_kib = 64;
  long long touch_stack_kib = 16;  // stack each thread writes before it blocks
  // Sampling of each stack size stops early when this is spent (after one sample).
  double max_seconds_per_figure = 2.0;
};

struct ThreadMemoryFigures {
  long long stack_kib = 0;
  SampleSummary rss_kib_per_thread;
  SampleSummary pss_kib_per_thread;
  SampleSummary virtual_kib_per_thread;
  SampleSummary page_tables_kib_per_thread;
  // From /proc/meminfo, machine-wide: kernel memory no process's RSS shows.
  SampleSummary kernel_stack_kib_per_thread;
};

struct ThreadMemoryResult {
  ThreadMemoryOptions options;
  ThreadMemoryFigures default_stack;
  ThreadMemoryFigures small_stack;
};

ThreadMemoryResult run_thread_memory_probe(const ThreadMemoryOptions& options);
Json to_json(const ThreadMemoryResult& result);
std::string summary_line(const ThreadMemoryResult& result);

}  // namespace echolab::probe
