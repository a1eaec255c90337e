// `echolab-load merge`: the results of several processes (the shards of one run, or replicas
// started together with --start-at) made into one, as if one process had run them all.
//
// Counts are summed; percentiles come from the sum of the histograms, bucket by bucket, so
// they are those of every sample of every file (to the bucket's 0.8 %), never an average of
// percentiles. The window is the union of the files' windows.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "loadgen/run_report.hpp"
#include "loadgen/shard.hpp"

namespace echolab::load {

// Why files cannot be merged, in one line naming the file and the field.
class MergeRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One result file as read back.
struct LoadedResult {
  std::string file;
  RunReport report;            // its options describe this file's part (shard of its own 1/1)
  std::optional<Shard> shard;  // the --shard it ran as
  std::uint64_t shard_connections_total = 0;
  Json json;  // as written, for the fields that must agree
};

// Throws MergeRefused when `text` is not an echolab-load result with histograms.
LoadedResult read_result(const std::string& file, const std::string& text);

// Throws MergeRefused when two results measured different things (target, protocol, mode,
// method, path, payload, pipeline, timeout, interval, planned duration, stall threshold,
// unsent tolerance, histogram layout), when a result is given twice, or when shards 1..N of
// one run are not all there exactly once.
RunReport merge_results(const std::vector<LoadedResult>& results);

// The `merge` subcommand; `arguments` follow the word "merge". Exit status 0 when the
// merged result was written and the merged run did not fail, 1 when it was written but the
// run failed (as a single run's), 2 for a usage error or results that cannot be merged.
int run_merge(const std::vector<std::string>& arguments);

}  // namespace echolab::load
