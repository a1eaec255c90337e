// Creates idle threads until creation fails or a cap is reached, with the default stack and
// with a small one: which limit ends it (memory, address space, a task limit, the map count
// or the cap), how many threads that was, and what memory they held. The threads are created
// by a forked child, so the probe reports even if the child is killed (by the OOM killer,
// say); the child dies with the probe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "probes/sample_summary.hpp"

namespace echolab::probe {

struct ThreadExhaustionOptions {
  long long cap = 20'000;  // lowered further to what the machine's task limits leave
  long long small_stack_kib = 64;
  // RLIMIT_AS the creating child sets on itself (it goes with the child); none by default.
  std::optional<long long> address_space_mib;
  double hold_seconds = 0.5;   // idle time with every thread up, to measure their CPU
  double max_seconds = 120.0;  // per stack size, before the child is killed
};

struct ExhaustionRun {
  std::string stack;  // "default" or "small"
  long long stack_kib = 0;
  long long threads = 0;
  std::string ended_by;  // "the cap", a limit's name, or what happened to the child
  std::string error;     // pthread_create's error, when creation failed
  long long rss_kib = 0;
  long long virtual_kib = 0;
  long long page_tables_kib = 0;
  long long map_count = 0;
  long long kernel_stack_kib_added = 0;  // machine-wide, so other tasks count too
  double creation_seconds = 0;
  double creation_cpu_share = 0;  // the creating process's CPU time over wall time
  double hold_seconds = 0;
  double hold_cpu_share = 0;
  bool reported = false;  // false when the child died before its report
};

struct ThreadExhaustionResult {
  ThreadExhaustionOptions options;
  long long cap = 0;
  std::string cap_set_by;       // "--cap" or the task limit that lowered it
  long long task_headroom = 0;  // more tasks the tightest task limit allowed at the start
  std::string task_headroom_limit;
  long long mem_available_kib = 0;
  long long max_map_count = 0;
  std::vector<ExhaustionRun> runs;
};

ThreadExhaustionResult run_thread_exhaustion_probe(const ThreadExhaustionOptions& options);
Json to_json(const ThreadExhaustionResult& result);
std::string summary_line(const ThreadExhaustionResult& result);

}  // namespace echolab::probe
