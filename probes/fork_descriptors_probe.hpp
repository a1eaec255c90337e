// fork() from a parent holding more and more open descriptors: the child gets a copy of the
// descriptor table and a reference to every open file, so the cost of fork grows with the
// descriptors held, as it grows with the memory mapped (the spawn probe's large parent). The
// levels alternate sample by sample, so a machine's drift falls on all of them alike.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "probes/sample_summary.hpp"

namespace echolab::probe {

struct ForkDescriptorsOptions {
  int samples = 100;
  std::vector<long long> levels{10, 1'000, 10'000};  // descriptors the parent holds
  double max_seconds_per_level = 0.75;               // the rounds' budget is this times the levels
};

struct DescriptorLevel {
  long long wanted = 0;
  long long held = 0;                       // what the parent held when it forked
  std::optional<std::string> skipped;       // why a level was not reached
  SampleSummary fork_until_child_runs_us;   // as in the spawn probe
  SampleSummary fork_until_child_exits_us;  // the child also closes every descriptor
};

struct ForkDescriptorsResult {
  ForkDescriptorsOptions options;
  long long open_files_limit = 0;  // the soft RLIMIT_NOFILE after raising it to the hard one
  std::vector<DescriptorLevel> levels;
  // Fork until the child runs at the most descriptors minus at the fewest, round by round
  // (the levels alternate); none unless two levels were reached.
  std::optional<SampleSummary> most_minus_fewest_us;
};

ForkDescriptorsResult run_fork_descriptors_probe(const ForkDescriptorsOptions& options);
Json to_json(const ForkDescriptorsResult& result);
std::string summary_line(const ForkDescriptorsResult& result);

}  // namespace echolab::probe
