#include "loadgen/result_merge.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

namespace echolab::load {
namespace {

// Reads the fields of one result; every refusal names the file and the field.
class FieldReader {
 public:
  FieldReader(const std::string& file, const Json& root) : file_(file), root_(root) {}

  [[noreturn]] void refuse(const std::string& field, const std::string& why) const {
    throw MergeRefused(file_ + ": field \"" + field + "\" " + why);
  }

  // The member at a dotted path ("histograms.latency_ns", "series.3.requests": a number
  // indexes an array); refused when missing.
  const Json& at(const std::string& path) const {
    const Json* node = &root_;
    std::size_t begin = 0;
    while (begin <= path.size()) {
      const auto dot = std::min(path.find('.', begin), path.size());
      node = child(*node, path.substr(begin, dot - begin), path);
      begin = dot + 1;
    }
    return *node;
  }

  bool has(const std::string& key) const { return root_.is_object() && root_.contains(key); }

  std::uint64_t count(const std::string& path) const {
    const Json& value = at(path);
    if (!value.is_number_unsigned()) {
      refuse(path, "is not a count");
    }
    return value.get<std::uint64_t>();
  }

  double number(const std::string& path) const {
    const Json& value = at(path);
    if (!value.is_number()) {
      refuse(path, "is not a number");
    }
    return value.get<double>();
  }

  std::optional<double> optional_number(const std::string& path) const {
    return at(path).is_null() ? std::nullopt : std::optional<double>(number(path));
  }

  std::string text(const std::string& path) const {
    const Json& value = at(path);
    if (!value.is_string()) {
      refuse(path, "is not a string");
    }
    return value.get<std::string>();
  }

  bool flag(const std::string& path) const {
    const Json& value = at(path);
    if (!value.is_boolean()) {
      refuse(path, "is not true or false");
    }
    return value.get<bool>();
  }

  LatencyHistogram histogram(const std::string& path) const {
    std::vector<LatencyHistogram::Bucket> buckets;
    const Json& pairs = at(path + ".buckets");
    if (!pairs.is_array()) {
      refuse(path + ".buckets", "is not an array");
    }
    for (const Json& pair : pairs) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_unsigned() ||
          !pair[1].is_number_unsigned()) {
        refuse(path + ".buckets", "holds an entry that is not [value, count]");
      }
      buckets.push_back(
          {.highest_value = pair[0].get<std::uint64_t>(), .count = pair[1].get<std::uint64_t>()});
    }
    const LatencyHistogram::Exact exact{
        .min = count(path + ".min"), .max = count(path + ".max"), .sum = number(path + ".sum")};
    try {
      auto restored = LatencyHistogram::restore(buckets, exact);
      if (restored.count() != count(path + ".count")) {
        refuse(path + ".count", "is not the sum of its buckets");
      }
      return restored;
    } catch (const std::invalid_argument& error) {
      refuse(path + ".buckets", std::string("is not of this layout: ") + error.what());
    }
  }

  WallClock::time_point wall_time(const std::string& path) const {
    return WallClock::time_point(std::chrono::duration_cast<WallClock::duration>(
        std::chrono::microseconds(std::llround(number(path) * 1e6))));
  }

 private:
  const Json* child(const Json& node, const std::string& key, const std::string& path) const {
    if (node.is_array() && !key.empty() &&
        key.find_first_not_of("0123456789") == std::string::npos) {
      const auto index = std::stoull(key);
      if (index < node.size()) {
        return &node[index];
      }
    } else if (node.is_object() && node.contains(key)) {
      return &node[key];
    }
    refuse(path, "is missing");
  }

  const std::string& file_;
  const Json& root_;
};

std::chrono::nanoseconds from_seconds(double seconds) {
  return std::chrono::nanoseconds(std::llround(seconds * 1e9));
}

void read_options(const FieldReader& read, LoadOptions& options) {
  try {
    options.target = parse_target(read.text("target"));
  } catch (const std::invalid_argument& error) {
    read.refuse("target", error.what());
  }
  const std::string protocol = read.text("protocol");
  if (protocol != "http" && protocol != "raw") {
    read.refuse("protocol", "is neither http nor raw");
  }
  options.protocol = protocol == "raw" ? WireProtocol::raw : WireProtocol::http;
  if (options.protocol == WireProtocol::http) {
    options.method = read.text("method") == "POST" ? HttpMethod::post : HttpMethod::get;
    options.path = read.text("path");
  }
  const std::string mode = read.text("mode");
  if (mode == "slow_headers" || mode == "never_read") {
    read.refuse("mode", "is " + mode + ": attack results are not merged");
  }
  if (mode != "closed" && mode != "open" && mode != "hold") {
    read.refuse("mode", "is not closed, open or hold");
  }
  options.connections = read.count("connections");
  options.threads = read.count("threads");
  options.pipeline = read.count("pipeline");
  options.payload_bytes = read.count("payload_bytes");
  options.rate = read.optional_number("rate");
  options.ramp = from_seconds(read.number("ramp_s"));
  const auto planned = from_seconds(read.number("duration_planned_s"));
  if (mode == "hold") {
    options.hold = planned - options.ramp;
    options.interval = from_seconds(read.number("interval_s"));
  } else {
    options.duration = planned;
  }
  if (options.mode() != (mode == "open"   ? LoopMode::open
                         : mode == "hold" ? LoopMode::hold
                                          : LoopMode::closed)) {
    read.refuse("mode", "is " + mode + ", which its \"rate\" contradicts");
  }
  options.timeout = from_seconds(read.number("timeout_s"));
  options.stall_threshold = from_seconds(read.number("stall_threshold_s"));
  options.unsent_tolerance = read.number("unsent_tolerance");
  options.new_connection_per_request = read.flag("new_connection_per_request");
  if (const auto limit = read.optional_number("max_response_bytes")) {
    options.max_response_bytes = static_cast<std::size_t>(*limit);
  }
}

void read_stats(const FieldReader& read, RunReport& report) {
  LoadStats& stats = report.stats;
  stats.requests = read.count("requests");
  stats.bytes_received = read.count("bytes");
  stats.bytes_sent = read.count("bytes_sent");
  stats.connects = read.count("connects");
  stats.connects_pending = read.count("connects_pending");
  stats.connections_not_started = read.count("connections_not_started");
  stats.requests_unfinished = read.count("requests_unfinished");
  stats.requests_unsent = read.count("requests_unsent");
  if (!read.at("requests_due").is_null()) {
    stats.requests_due = read.count("requests_due");
  }
  const Json& first_errors = read.at("first_errors");
  for (const ErrorKind kind : kErrorKinds) {
    const std::string name(to_string(kind));
    stats.errors[static_cast<std::size_t>(kind)] = read.count("errors." + name);
    if (first_errors.is_object() && first_errors.contains(name)) {
      stats.first_error[static_cast<std::size_t>(kind)] = read.text("first_errors." + name);
    }
  }
  stats.latency_ns = read.histogram("histograms.latency_ns");
  stats.connect_ns = read.histogram("histograms.connect_ns");
  if (report.options.hold) {
    stats.hold_latency_ns = read.histogram("histograms.hold_latency_ns");
    report.hold_s = read.number("hold.duration_s");
  }
  if (stats.latency_ns.count() != stats.requests) {
    read.refuse("histograms.latency_ns.count", "differs from \"requests\"");
  }
}

void read_stalls(const FieldReader& read, const std::string& file, RunReport& report) {
  const Json& stalls = read.at("stalls");
  if (!stalls.is_array()) {
    read.refuse("stalls", "is not an array");
  }
  for (std::size_t i = 0; i < stalls.size(); ++i) {
    const std::string path = "stalls." + std::to_string(i);
    if (!stalls[i].is_object()) {
      read.refuse(path, "is not an object");
    }
    const FieldReader stall(file, stalls[i]);
    report.stalls.push_back({.start = from_seconds(stall.number("start_s")),
                             .length = from_seconds(stall.number("length_s"))});
    // A stall of a result that was itself merged keeps the file it was first seen in.
    report.stall_files.push_back(stalls[i].contains("file") ? stall.text("file") : file);
  }
}

// The series and its histograms, one per second; a result written before series existed has
// none, and then neither has the merge.
void read_series(const FieldReader& read, RunReport& report) {
  if (!read.has("series")) {
    return;
  }
  const Json& entries = read.at("series");
  const Json& histograms = read.at("histograms.series_latency_ns");
  if (!entries.is_array() || !histograms.is_array() || histograms.size() != entries.size()) {
    read.refuse("histograms.series_latency_ns", "is not one histogram per second of \"series\"");
  }
  std::vector<SecondCounts> seconds(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string path = "series." + std::to_string(i);
    SecondCounts& second = seconds[i];
    second.requests = read.count(path + ".requests");
    second.duration_s = read.number(path + ".duration_s");
    const std::string by_kind = path + ".errors_by_kind";
    for (const ErrorKind kind : kErrorKinds) {
      const std::string name(to_string(kind));
      if (read.at(by_kind).contains(name)) {
        second.errors[static_cast<std::size_t>(kind)] =
            read.count(std::string(by_kind).append(".").append(name));
      }
    }
    if (!read.at(path + ".connections_open").is_null()) {
      second.connections_open = read.count(path + ".connections_open");
    }
    const LatencyHistogram latency =
        read.histogram("histograms.series_latency_ns." + std::to_string(i));
    if (latency.count() != second.requests) {
      read.refuse(path + ".requests", "differs from its histogram's count");
    }
    second.latency_buckets = latency.non_empty_buckets();
    second.latency_exact = latency.exact();
  }
  report.series = SecondSeries::restore(std::move(seconds));
}

std::optional<Shard> read_shard(const FieldReader& read, std::uint64_t& connections_total) {
  if (read.at("shard").is_null()) {
    return std::nullopt;
  }
  Shard shard;
  shard.index = read.count("shard.index");
  shard.count = read.count("shard.count");
  connections_total = read.count("shard.connections_total");
  if (shard.index == 0 || shard.index > shard.count) {
    read.refuse("shard.index", "is not 1 to \"shard.count\"");
  }
  return shard;
}

std::string shown(const Json& value) { return value.dump(); }

// The fields two results must share to be one measurement.
constexpr std::array kMustAgree = {"target",
                                   "protocol",
                                   "mode",
                                   "method",
                                   "path",
                                   "payload_bytes",
                                   "pipeline",
                                   "new_connection_per_request",
                                   "max_response_bytes",
                                   "timeout_s",
                                   "interval_s",
                                   "duration_planned_s",
                                   "stall_threshold_s",
                                   "unsent_tolerance"};

void check_agreement(const LoadedResult& first, const LoadedResult& other) {
  for (const char* field : kMustAgree) {
    if (first.json[field] != other.json[field]) {
      throw MergeRefused(other.file + ": field \"" + field + "\" is " + shown(other.json[field]) +
                         ", " + first.file + "'s is " + shown(first.json[field]));
    }
  }
  if (first.json["histograms"]["layout"] != other.json["histograms"]["layout"]) {
    throw MergeRefused(other.file + ": field \"histograms.layout\" is " +
                       shown(other.json["histograms"]["layout"]) + ", " + first.file + "'s is " +
                       shown(first.json["histograms"]["layout"]));
  }
}

// The same file twice, or two files with the same result, would count every request twice.
void check_no_duplicate(const std::vector<LoadedResult>& results) {
  for (std::size_t i = 0; i < results.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (results[i].json == results[j].json) {
        throw MergeRefused(results[i].file + ": the same result as " + results[j].file +
                           " (a file given twice counts its requests twice)");
      }
    }
  }
}

// Shards 1..N of one run, each once: a missing one would pass for the whole run.
void check_shard_set_complete(const std::vector<LoadedResult>& results) {
  const LoadedResult& first = results.front();
  for (const LoadedResult& result : results) {
    if (result.shard.has_value() != first.shard.has_value()) {
      const LoadedResult& whole = result.shard ? first : result;
      const LoadedResult& shard = result.shard ? result : first;
      throw MergeRefused(
          result.file + ": field \"shard\" is " +
          (result.shard ? result.shard->to_string() : std::string("null")) + ", " + first.file +
          "'s is " + (first.shard ? first.shard->to_string() : std::string("null")) + ": shards (" +
          shard.file + ") and whole runs (" + whole.file + ") do not mix");
    }
  }
  if (!first.shard) {
    return;
  }
  for (std::size_t index = 1; index <= first.shard->count; ++index) {
    const bool present = std::any_of(results.begin(), results.end(), [index](const auto& result) {
      return result.shard->index == index;
    });
    if (!present) {
      throw MergeRefused("shard " + std::to_string(index) + "/" +
                         std::to_string(first.shard->count) +
                         " is missing: " + std::to_string(results.size()) + " of " +
                         std::to_string(first.shard->count) + " shards given");
    }
  }
}

void check_shards(const std::vector<LoadedResult>& results) {
  const LoadedResult* sharded = nullptr;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const LoadedResult& result = results[i];
    if (!result.shard) {
      continue;
    }
    if (sharded != nullptr &&
        (result.shard->count != sharded->shard->count ||
         result.shard_connections_total != sharded->shard_connections_total)) {
      throw MergeRefused(result.file + ": field \"shard\" is " + result.shard->to_string() +
                         " of " + std::to_string(result.shard_connections_total) +
                         " connections, " + sharded->file + "'s is " + sharded->shard->to_string() +
                         " of " + std::to_string(sharded->shard_connections_total));
    }
    sharded = sharded != nullptr ? sharded : &result;
    for (std::size_t j = 0; j < i; ++j) {
      if (results[j].shard && results[j].shard->index == result.shard->index) {
        throw MergeRefused(result.file + ": field \"shard.index\" is " +
                           std::to_string(result.shard->index) + ", as in " + results[j].file +
                           ": the same shard twice");
      }
    }
  }
}

// Every file's stalls, moved to the merged window's time (each file counts from its own
// start), earliest first, each with the file it was seen in.
void merge_stalls(const std::vector<LoadedResult>& results, RunReport& merged) {
  struct Seen {
    Stall stall;
    std::string file;
  };
  std::vector<Seen> seen;
  for (const LoadedResult& result : results) {
    const auto offset = std::chrono::duration_cast<std::chrono::nanoseconds>(
        result.report.window_start - merged.window_start);
    for (std::size_t i = 0; i < result.report.stalls.size(); ++i) {
      const Stall& stall = result.report.stalls[i];
      seen.push_back(
          {{.start = stall.start + offset, .length = stall.length}, result.report.stall_files[i]});
    }
  }
  std::stable_sort(seen.begin(), seen.end(),
                   [](const Seen& a, const Seen& b) { return a.stall.start < b.stall.start; });
  merged.stalls.clear();
  merged.stall_files.clear();
  for (const Seen& one : seen) {
    merged.stalls.push_back(one.stall);
    merged.stall_files.push_back(one.file);
  }
}

// Every file's series added by wall-clock second: a file's second k is the merged window's
// second k plus its start's offset from the earliest start, to the nearest second (replicas
// started with --start-at begin within milliseconds, so their seconds line up). A file
// without a series (written before there were any) leaves the merge without one: a partial
// sum would pass for the whole.
void merge_series(const std::vector<LoadedResult>& results, RunReport& merged) {
  merged.series = SecondSeries();
  for (const LoadedResult& result : results) {
    if (result.report.series.seconds().empty() && !result.json.contains("series")) {
      merged.series = SecondSeries();
      return;
    }
    const double offset_s =
        std::chrono::duration<double>(result.report.window_start - merged.window_start).count();
    merged.series.merge(result.report.series, static_cast<std::size_t>(std::llround(offset_s)));
  }
}

MergedPart part_of(const LoadedResult& result) {
  return {.file = result.file,
          .shard = result.shard,
          .connections = result.report.options.connections,
          .requests = result.report.stats.requests,
          .window_start = result.report.window_start,
          .window_end = result.report.window_end};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw MergeRefused(path + ": cannot be read");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

LoadedResult read_result(const std::string& file, const std::string& text) {
  LoadedResult result;
  result.file = file;
  try {
    result.json = Json::parse(text);
  } catch (const Json::parse_error&) {
    throw MergeRefused(file + ": not an echolab-load result (not JSON)");
  }
  const FieldReader read(file, result.json);
  if (!result.json.is_object() || !result.json.contains("tool") ||
      result.json["tool"] != "echolab-load") {
    throw MergeRefused(file +
                       ": field \"tool\" is not \"echolab-load\": not an echolab-load result");
  }
  if (read.at("histograms.layout") != histogram_layout_json()) {
    read.refuse("histograms.layout", "is " + shown(read.at("histograms.layout")) +
                                         ", this echolab-load's is " +
                                         shown(histogram_layout_json()));
  }
  read_options(read, result.report.options);
  read_stats(read, result.report);
  result.shard = read_shard(read, result.shard_connections_total);
  result.report.window_start = read.wall_time("window.start_unix_s");
  result.report.window_end = read.wall_time("window.end_unix_s");
  result.report.duration_s = read.number("duration_s");
  result.report.connections_open_peak = read.count("connections_open_peak");
  result.report.interrupted = read.flag("interrupted");
  read_stalls(read, file, result.report);
  read_series(read, result.report);
  return result;
}

RunReport merge_results(const std::vector<LoadedResult>& results) {
  if (results.empty()) {
    throw MergeRefused("no result to merge");
  }
  for (const LoadedResult& other : results) {
    check_agreement(results.front(), other);
  }
  check_no_duplicate(results);
  check_shards(results);
  check_shard_set_complete(results);
  RunReport merged = results.front().report;
  merged.merged_from = {part_of(results.front())};
  for (std::size_t i = 1; i < results.size(); ++i) {
    const RunReport& other = results[i].report;
    merged.options.connections += other.options.connections;
    merged.options.threads += other.options.threads;
    if (merged.options.rate && other.options.rate) {
      *merged.options.rate += *other.options.rate;
    }
    merged.stats.merge(other.stats);
    merged.window_start = std::min(merged.window_start, other.window_start);
    merged.window_end = std::max(merged.window_end, other.window_end);
    merged.hold_s = std::max(merged.hold_s, other.hold_s);
    // An upper bound: the files do not say when their peaks were.
    merged.connections_open_peak += other.connections_open_peak;
    merged.interrupted = merged.interrupted || other.interrupted;
    merged.merged_from.push_back(part_of(results[i]));
  }
  merged.duration_s =
      std::chrono::duration<double>(merged.window_end - merged.window_start).count();
  merge_stalls(results, merged);
  merge_series(results, merged);
  return merged;
}

int run_merge(const std::vector<std::string>& arguments) {
  CLI::App app{
      "echolab-load merge: one result from the --json results of several echolab-load runs "
      "(shards of one run, or replicas started with the same --start-at). Writes the merged "
      "JSON to --output (the summary then goes to stdout) or to stdout (the summary to stderr).",
      "echolab-load merge"};
  std::vector<std::string> files;
  std::string output;
  app.add_option("RESULT", files, "--json results of echolab-load")->required();
  app.add_option("-o,--output", output, "Write the merged JSON to this file");
  try {
    std::vector<std::string> reversed(arguments.rbegin(), arguments.rend());
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& error) {
    std::cerr << "echolab-load merge: " << error.what() << '\n';
    return 2;
  }
  RunReport merged;
  try {
    std::vector<LoadedResult> results;
    results.reserve(files.size());
    for (const std::string& file : files) {
      results.push_back(read_result(file, read_file(file)));
    }
    merged = merge_results(results);
  } catch (const MergeRefused& refusal) {
    std::cerr << "echolab-load merge: " << refusal.what() << '\n';
    return 2;
  }
  if (output.empty()) {
    write_json(std::cout, merged);
    write_summary(std::cerr, merged);
  } else {
    std::ofstream out(output);
    write_json(out, merged);
    out.close();
    if (!out) {
      std::cerr << "echolab-load merge: cannot write --output " << output << '\n';
      return 2;
    }
    write_summary(std::cout, merged);
  }
  if (const auto failure = merged.failure()) {
    std::cerr << "echolab-load merge: the merged run failed: " << *failure << '\n';
  }
  return merged.exit_status();
}

}  // namespace echolab::load
