// Process creation against thread creation, each timed until the new process or thread
// runs its first instruction of ours, from a small parent and from a parent with a large
// resident heap (fork copies page tables, so its cost grows with the parent).
#pragma once

#include <optional>
#include <string>

#include "probes/sample_summary.hpp"

namespace echolab::probe {

struct SpawnOptions {
  int samples = 200;
  // Private memory the parent writes before the second round of measurements; 0 skips it.
  long long parent_rss_mib = 256;
  // Asks for transparent huge pages for that memory instead of 4 KiB pages.
  bool huge_pages = false;
  std::string exec_path = "/bin/true";
  // Each figure stops early when this is spent, so a slow machine stays within bounds.
  double max_seconds_per_figure = 0.75;
};

struct SpawnFigures {
  long long parent_rss_kib = 0;
  long long parent_page_tables_kib = 0;
  long long parent_anon_huge_pages_kib = 0;
  SampleSummary fork_us;         // fork() until the child has written a byte to a pipe
  SampleSummary fork_exec_us;    // fork() + execv(exec_path) until the program has exited
  SampleSummary posix_spawn_us;  // posix_spawn(exec_path) until the program has exited
  SampleSummary thread_us;       // std::thread until the thread has written a byte to a pipe
};

struct SpawnResult {
  SpawnOptions options;
  SpawnFigures small_parent;
  std::optional<SpawnFigures> large_parent;
};

// One fork(), timed until the child has written a byte to a pipe; the child is reaped.
double fork_until_child_runs_us();

SpawnResult run_spawn_probe(const SpawnOptions& options);
Json to_json(const SpawnResult& result);
std::string summary_line(const SpawnResult& result);

}  // namespace echolab::probe
