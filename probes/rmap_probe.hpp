// What the kernel pays to walk the reverse map of a page, when the page is mapped by N
// processes (forked children, as a prefork server's are) and when it is used by N threads of
// one process. Every kernel path that must find all the mappings of a page (reclaim, migration,
// compaction, writeback, DAMON's and kswapd's access checks) visits one mapping per address
// space: N processes make N of them, N threads one.
//
// The walk is triggered by writeback of a file mapped shared: before writing a dirty page
// back, the kernel write-protects it in every address space that maps it (folio_mkclean), one
// reverse-map walk per page. docs/probes.md says why not madvise(MADV_COLD) or
// MADV_PAGEOUT (they skip a page another process maps) and how this walk relates to the one
// for anonymous memory.
#pragma once

#include <string>
#include <vector>

#include "probes/sample_summary.hpp"

namespace echolab::probe {

struct RmapOptions {
  int samples = 5;         // write-backs timed per count of tasks, for processes and for threads
  int max_tasks = 10'000;  // counts run 1, 10, 100, ... up to this, and this
  int pages = 256;         // pages written back per sample, fewer at large counts
  std::string directory = "/var/tmp";  // for the file: a disk filesystem, not tmpfs
  // Sampling of each count and model stops early when this is spent (after one sample).
  double max_seconds_per_figure = 2.0;
};

struct RmapPoint {
  int tasks = 0;
  int pages = 0;  // written back per sample
  // Time of one write-back divided by its pages.
  SampleSummary process_ns_per_page;
  SampleSummary thread_ns_per_page;
  // Sample i of processes minus sample i of threads: the spread says how sure the difference is.
  SampleSummary process_minus_thread_ns_per_page;
};

struct RmapResult {
  RmapOptions options;
  std::vector<RmapPoint> points;
};

RmapResult run_rmap_probe(const RmapOptions& options);
Json to_json(const RmapResult& result);
std::string summary_line(const RmapResult& result);

}  // namespace echolab::probe
