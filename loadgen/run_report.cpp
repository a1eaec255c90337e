#include "loadgen/run_report.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "loadgen/schedule.hpp"

namespace echolab::load {
namespace {

struct Percentile {
  const char* json_key;
  const char* label;
  double percentile;
};
constexpr std::array kPercentiles = {
    Percentile{"p50", "p50", 50.0}, Percentile{"p90", "p90", 90.0}, Percentile{"p99", "p99", 99.0},
    Percentile{"p99_9", "p99.9", 99.9}, Percentile{"p99_99", "p99.99", 99.99}};

// Nanoseconds to microseconds, to a tenth.
double microseconds(double nanoseconds) { return std::round(nanoseconds / 100.0) / 10.0; }
double microseconds(std::uint64_t nanoseconds) {
  return microseconds(static_cast<double>(nanoseconds));
}

// Nanoseconds to milliseconds, to a tenth.
double milliseconds(std::uint64_t nanoseconds) {
  return std::round(static_cast<double>(nanoseconds) / 1e5) / 10.0;
}

double seconds(std::chrono::nanoseconds time) {
  return std::chrono::duration<double>(time).count();
}

// The histogram without loss: its exact extremes and sum, and its non-empty counters as
// [highest value, count] pairs, in nanoseconds.
Json buckets_json(const LatencyHistogram& histogram) {
  const auto exact = histogram.exact();
  Json buckets = Json::array();
  for (const auto& bucket : histogram.non_empty_buckets()) {
    buckets.push_back(Json::array({bucket.highest_value, bucket.count}));
  }
  return {{"count", histogram.count()},
          {"min", exact.min},
          {"max", exact.max},
          {"sum", exact.sum},
          {"buckets", std::move(buckets)}};
}

// Each second's latencies without loss, so that a merge computes a second's percentiles from
// every file's samples of that second.
Json series_histograms_json(const SecondSeries& series) {
  Json seconds = Json::array();
  for (const SecondCounts& second : series.seconds()) {
    seconds.push_back(buckets_json(second.latency_ns()));
  }
  return seconds;
}

Json histograms_json(const RunReport& report) {
  return {{"layout", histogram_layout_json()},
          {"latency_ns", buckets_json(report.stats.latency_ns)},
          {"connect_ns", buckets_json(report.stats.connect_ns)},
          {"hold_latency_ns",
           report.options.hold ? buckets_json(report.stats.hold_latency_ns) : Json(nullptr)},
          {"series_latency_ns", series_histograms_json(report.series)}};
}

// One entry per second of the run; percentiles null in a second that completed no request.
Json series_json(const SecondSeries& series) {
  Json entries = Json::array();
  for (std::size_t index = 0; index < series.seconds().size(); ++index) {
    const SecondCounts& second = series.seconds()[index];
    const LatencyHistogram latency = second.latency_ns();
    const auto percentile_us = [&latency](double percentile) {
      return latency.count() == 0 ? Json(nullptr)
                                  : Json(microseconds(latency.value_at_percentile(percentile)));
    };
    Json entry = {{"second", std::uint64_t{index}},
                  {"duration_s", std::round(second.duration_s * 1e6) / 1e6},
                  {"requests", second.requests},
                  {"errors", second.total_errors()}};
    Json& by_kind = entry["errors_by_kind"] = Json::object();
    for (const ErrorKind kind : kErrorKinds) {
      if (const auto count = second.errors[static_cast<std::size_t>(kind)]; count > 0) {
        by_kind[to_string(kind)] = count;
      }
    }
    entry["p50_us"] = percentile_us(50.0);
    entry["p90_us"] = percentile_us(90.0);
    entry["p99_us"] = percentile_us(99.0);
    entry["max_us"] = latency.count() == 0 ? Json(nullptr) : Json(microseconds(latency.max()));
    entry["connections_open"] =
        second.connections_open ? Json(*second.connections_open) : Json(nullptr);
    entries.push_back(std::move(entry));
  }
  return entries;
}

Json window_json(WallClock::time_point start, WallClock::time_point end) {
  return {{"start_unix_s", unix_seconds(start)},
          {"end_unix_s", unix_seconds(end)},
          {"start", iso8601_utc(start)},
          {"end", iso8601_utc(end)}};
}

Json shard_json(const LoadOptions& options) {
  if (options.shard.whole()) {
    return nullptr;
  }
  return {{"index", std::uint64_t{options.shard.index}},
          {"count", std::uint64_t{options.shard.count}},
          {"connections_total", std::uint64_t{options.connections}},
          {"rate_total", options.rate ? Json(*options.rate) : Json(nullptr)}};
}

Json merged_from_json(const RunReport& report) {
  if (report.merged_from.empty()) {
    return nullptr;
  }
  Json parts = Json::array();
  for (const MergedPart& part : report.merged_from) {
    parts.push_back({{"file", part.file},
                     {"shard", part.shard ? Json(part.shard->to_string()) : Json(nullptr)},
                     {"connections", part.connections},
                     {"requests", part.requests},
                     {"window", window_json(part.window_start, part.window_end)}});
  }
  return parts;
}

// Seconds to the microsecond.
double rounded_seconds(std::chrono::nanoseconds time) {
  return std::round(seconds(time) * 1e6) / 1e6;
}

Json stalls_json(const RunReport& report) {
  Json stalls = Json::array();
  for (std::size_t i = 0; i < report.stalls.size(); ++i) {
    Json stall = {{"start_s", rounded_seconds(report.stalls[i].start)},
                  {"length_s", rounded_seconds(report.stalls[i].length)}};
    if (i < report.stall_files.size()) {
      stall["file"] = report.stall_files[i];
    }
    stalls.push_back(std::move(stall));
  }
  return stalls;
}

Json to_json(const LatencyHistogram& histogram) {
  Json json = {{"count", histogram.count()},
               {"min", microseconds(histogram.min())},
               {"mean", microseconds(histogram.mean())}};
  for (const auto& p : kPercentiles) {
    json[p.json_key] = microseconds(histogram.value_at_percentile(p.percentile));
  }
  json["max"] = microseconds(histogram.max());
  return json;
}

// `pretty` (indented JSON) with each array of numbers on one line: a histogram's [value,
// count] pairs, one per line as the indentation puts them, were most of a result's lines.
std::string with_number_arrays_inline(const std::string& pretty) {
  std::string out;
  out.reserve(pretty.size());
  bool in_string = false;
  for (std::size_t i = 0; i < pretty.size(); ++i) {
    const char c = pretty[i];
    out += c;
    if (in_string) {
      if (c == '\\' && i + 1 < pretty.size()) {
        out += pretty[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != '[') {
      continue;
    }
    const std::size_t close = pretty.find_first_of("[]{}\"", i + 1);
    if (close == std::string::npos || pretty[close] != ']') {
      continue;
    }
    // Only numbers, commas and white space up to the bracket that closes it: one line.
    for (std::size_t j = i + 1; j < close; ++j) {
      if (pretty[j] == '\n') {
        while (j + 1 < close && pretty[j + 1] == ' ') {
          ++j;
        }
      } else {
        out += pretty[j] == ',' ? std::string(", ") : std::string(1, pretty[j]);
      }
    }
    out += ']';
    i = close;
  }
  return out;
}

}  // namespace

Json histogram_layout_json() {
  return {{"unit", "ns"},
          {"exact_below", LatencyHistogram::kExactBelow},
          {"sub_buckets", LatencyHistogram::kSubBuckets},
          {"highest_trackable", LatencyHistogram::kHighestTrackable}};
}

namespace {

// The few figures of a distribution an attack reports, converted by `unit`.
template <typename Unit>
Json summary_json(const LatencyHistogram& histogram, Unit unit) {
  return {{"count", histogram.count()},
          {"p50", unit(histogram.value_at_percentile(50.0))},
          {"p90", unit(histogram.value_at_percentile(90.0))},
          {"max", unit(histogram.max())}};
}

Json attack_json(const RunReport& report) {
  const LoadOptions& options = report.options;
  const AttackStats& attack = report.stats.attack;
  Json statuses = Json::object();
  for (const auto& [status, count] : attack.statuses) {
    statuses[std::to_string(status)] = count;
  }
  return {
      {"mode", to_string(options.attack())},
      {"interval_s", options.slow_headers_interval ? Json(seconds(*options.slow_headers_interval))
                                                   : Json(nullptr)},
      {"connections", std::uint64_t{options.shard_connections()}},
      {"connects", report.stats.connects},
      {"held_ms", summary_json(attack.held_ns, [](std::uint64_t ns) { return milliseconds(ns); })},
      {"closed_by_server", attack.closed_by_server},
      {"still_open_at_end", attack.still_open_at_end},
      {"statuses", statuses},
      {"bytes_sent", report.stats.bytes_sent},
      {"sent_bytes_per_connection",
       summary_json(attack.sent_bytes, [](std::uint64_t bytes) { return bytes; })}};
}

// The options of the run, added to `json` after the members it already has.
void add_options(Json& json, const LoadOptions& options) {
  const bool http = options.protocol == WireProtocol::http;
  json["target"] = options.target.to_string();
  json["protocol"] = to_string(options.protocol);
  json["method"] = http ? Json(to_string(options.method)) : Json(nullptr);
  json["path"] = http ? Json(options.path) : Json(nullptr);
  json["mode"] = options.attack() == AttackMode::none ? to_string(options.mode())
                                                      : to_string(options.attack());
  json["connections"] = std::uint64_t{options.shard_connections()};
  json["threads"] = std::uint64_t{options.threads};
  json["pipeline"] = std::uint64_t{options.pipeline};
  json["payload_bytes"] = std::uint64_t{options.sends_payload() ? options.payload_bytes : 0};
  json["rate"] = options.rate ? Json(*options.shard_rate()) : Json(nullptr);
  json["ramp_s"] = seconds(options.ramp);
  json["interval_s"] = options.hold ? Json(seconds(options.interval)) : Json(nullptr);
  json["timeout_s"] = seconds(options.timeout);
  json["stall_threshold_s"] = seconds(options.stall_threshold);
  json["unsent_tolerance"] = options.unsent_tolerance;
  json["duration_planned_s"] = seconds(options.run_time());
  json["new_connection_per_request"] = options.new_connection_per_request;
  json["max_response_bytes"] = http && options.attack() == AttackMode::none
                                   ? Json(std::uint64_t{options.max_response_bytes})
                                   : Json(nullptr);
  json["shard"] = shard_json(options);
}

// printf formatting into a string, for the few lines of the summary that need it.
template <typename... Arguments>
std::string formatted(const char* format, Arguments... arguments) {
  std::array<char, 160> text{};
  const int length = std::snprintf(text.data(), text.size(), format, arguments...);
  return std::string(text.data(), static_cast<std::size_t>(
                                      std::clamp(length, 0, static_cast<int>(text.size()) - 1)));
}

std::string human_time(double nanoseconds) {
  if (nanoseconds < 1e6) {
    return formatted("%.1fus", nanoseconds / 1e3);
  }
  if (nanoseconds < 1e9) {
    return formatted("%.2fms", nanoseconds / 1e6);
  }
  return formatted("%.2fs", nanoseconds / 1e9);
}

std::string human_bytes(std::uint64_t bytes) {
  return formatted("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

// "2 reset, 1 timeout": the kinds that occurred, in their order.
std::string errors_by_kind(const LoadStats& stats) {
  std::string text;
  for (const ErrorKind kind : kErrorKinds) {
    if (const auto count = stats.error_count(kind); count > 0) {
      text.append(text.empty() ? "" : ", ").append(std::to_string(count)).append(" ");
      text.append(to_string(kind));
    }
  }
  return text;
}

void write_histogram_line(std::ostream& out, const char* label, const LatencyHistogram& h) {
  out << "  " << label;
  if (h.count() == 0) {
    out << "  (none)\n";
    return;
  }
  out << "  mean " << human_time(h.mean());
  for (const auto& p : kPercentiles) {
    out << "  " << p.label << ' '
        << human_time(static_cast<double>(h.value_at_percentile(p.percentile)));
  }
  out << "  max " << human_time(static_cast<double>(h.max())) << '\n';
}

void write_attack_lines(std::ostream& out, const LoadStats& stats) {
  const AttackStats& attack = stats.attack;
  out << "  attack       " << attack.closed_by_server << " ended by the server, "
      << attack.still_open_at_end << " still open at the end\n";
  if (attack.held_ns.count() > 0) {
    out << "  held         p50 "
        << human_time(static_cast<double>(attack.held_ns.value_at_percentile(50.0))) << "  p90 "
        << human_time(static_cast<double>(attack.held_ns.value_at_percentile(90.0))) << "  max "
        << human_time(static_cast<double>(attack.held_ns.max())) << '\n';
  }
  if (!attack.statuses.empty()) {
    out << "  answers     ";
    for (const auto& [status, count] : attack.statuses) {
      out << ' ' << count << " x " << status;
    }
    out << '\n';
  }
}

void write_window_lines(std::ostream& out, const RunReport& report) {
  out << "  window       " << iso8601_utc(report.window_start) << " to "
      << iso8601_utc(report.window_end) << '\n';
  for (const MergedPart& part : report.merged_from) {
    out << "    " << part.file << ": "
        << (part.shard ? "shard " + part.shard->to_string() + ", " : std::string())
        << part.connections << " connections, " << part.requests << " requests, "
        << iso8601_utc(part.window_start) << " to " << iso8601_utc(part.window_end) << '\n';
  }
}

// Open loop and hold: what the schedule owed; and, in any mode, the stalls.
void write_schedule_lines(std::ostream& out, const RunReport& report) {
  const LoadStats& stats = report.stats;
  if (report.options.attack() == AttackMode::none && report.options.mode() != LoopMode::closed) {
    out << formatted("  unsent       %llu of %llu requests due (tolerance %g %%)\n",
                     static_cast<unsigned long long>(stats.requests_unsent),
                     static_cast<unsigned long long>(stats.requests_due),
                     100.0 * report.options.unsent_tolerance);
  }
  if (report.stalls.empty()) {
    return;
  }
  out << "  stalls       " << report.stalls.size() << " (no answer for "
      << milliseconds_text(report.options.stall_threshold) << " or more)\n";
  for (std::size_t i = 0; i < report.stalls.size(); ++i) {
    out << formatted("    from %.2f s for %.2f s", seconds(report.stalls[i].start),
                     seconds(report.stalls[i].length))
        << (i < report.stall_files.size() ? " (" + report.stall_files[i] + ")" : std::string())
        << '\n';
  }
}

std::string describe_run(const LoadOptions& options) {
  // Built with append(): GCC 12 at -O3 reports a false -Wrestrict on chains of operator+.
  std::string text(to_string(options.protocol));
  if (options.protocol == WireProtocol::http) {
    text.append(" ").append(to_string(options.method)).append(" ");
    text.append(options.target.to_string()).append(options.path);
  } else {
    text.append(" echo ").append(options.target.to_string());
  }
  if (options.sends_payload()) {
    text += ", " + std::to_string(options.payload_bytes) + "-byte payload";
  }
  constexpr std::array kModeText = {"closed loop", "open loop", "ramp and hold"};
  if (options.slow_headers_interval) {
    text += ", slow headers, a line every " + milliseconds_text(*options.slow_headers_interval);
  } else if (options.never_read) {
    text += ", never reading";
  } else {
    text += ", " + std::string(kModeText[static_cast<std::size_t>(options.mode())]);
  }
  if (options.shard.whole()) {
    text += ", " + std::to_string(options.connections) + " connections, ";
  } else {
    text += ", shard " + options.shard.to_string() + ": " +
            std::to_string(options.shard_connections()) + " of " +
            std::to_string(options.connections) + " connections, ";
  }
  text += std::to_string(options.threads) + " threads";
  if (options.pipeline > 1) {
    text += ", pipeline " + std::to_string(options.pipeline);
  }
  if (options.rate) {
    text += ", " + std::to_string(std::llround(*options.shard_rate())) + " requests/s scheduled";
  }
  if (options.new_connection_per_request) {
    text += ", a new connection per request";
  }
  return text;
}

}  // namespace

double RunReport::requests_per_second() const {
  return duration_s > 0 ? static_cast<double>(stats.requests) / duration_s : 0.0;
}

namespace {

// No request completed (no connection opened, for an attack): the run measured nothing.
std::optional<std::string> nothing_measured(const RunReport& report) {
  const LoadStats& stats = report.stats;
  std::string why;
  if (report.options.attack() == AttackMode::none && stats.requests == 0) {
    why = formatted("no request completed in %.2f s: ", report.duration_s);
  } else if (report.options.attack() != AttackMode::none && stats.connects == 0) {
    why = formatted("no connection opened in %.2f s: ", report.duration_s);
  } else {
    return std::nullopt;
  }
  why += std::to_string(stats.connects) + " connects completed";
  if (stats.requests_unfinished > 0) {
    why +=
        ", " + std::to_string(stats.requests_unfinished) + " requests still unanswered at the end";
  }
  if (stats.total_errors() == 0) {
    return why + ", no error counted";
  }
  return why + ", errors: " + errors_by_kind(stats);
}

std::optional<std::string> unsent_beyond_tolerance(const RunReport& report) {
  const LoadStats& stats = report.stats;
  const double allowed = report.options.unsent_tolerance * static_cast<double>(stats.requests_due);
  if (static_cast<double>(stats.requests_unsent) <= allowed) {
    return std::nullopt;
  }
  return formatted(
      "%llu of %llu requests due were never sent (%.2f %%, over --unsent-tolerance "
      "%g %%)",
      static_cast<unsigned long long>(stats.requests_unsent),
      static_cast<unsigned long long>(stats.requests_due),
      100.0 * static_cast<double>(stats.requests_unsent) / static_cast<double>(stats.requests_due),
      100.0 * report.options.unsent_tolerance);
}

std::optional<std::string> stalled(const RunReport& report) {
  if (report.stalls.empty()) {
    return std::nullopt;
  }
  const Stall& longest =
      *std::max_element(report.stalls.begin(), report.stalls.end(),
                        [](const Stall& a, const Stall& b) { return a.length < b.length; });
  return formatted(
      "%zu stall%s (no answer while requests waited, %s or more), the longest "
      "%.2f s from %.2f s",
      report.stalls.size(), report.stalls.size() == 1 ? "" : "s",
      milliseconds_text(report.options.stall_threshold).c_str(), seconds(longest.length),
      seconds(longest.start));
}

}  // namespace

std::optional<std::string> RunReport::failure() const {
  std::vector<std::string> reasons;
  if (auto why = nothing_measured(*this)) {
    reasons.push_back(std::move(*why));
  } else if (stats.total_errors() > 0) {
    reasons.push_back(std::to_string(stats.total_errors()) +
                      " errors counted: " + errors_by_kind(stats));
  }
  for (auto why : {unsent_beyond_tolerance(*this), stalled(*this)}) {
    if (why) {
      reasons.push_back(std::move(*why));
    }
  }
  if (reasons.empty()) {
    return std::nullopt;
  }
  std::string line = reasons.front();
  for (std::size_t i = 1; i < reasons.size(); ++i) {
    line.append("; ").append(reasons[i]);
  }
  return line;
}

int RunReport::exit_status() const { return failure() ? 1 : 0; }

void write_json(std::ostream& out, const RunReport& report) {
  const LoadStats& stats = report.stats;
  Json json = {{"tool", "echolab-load"}};
  add_options(json, report.options);
  json["duration_s"] = std::round(report.duration_s * 1e6) / 1e6;
  json["window"] = window_json(report.window_start, report.window_end);
  json["requests"] = stats.requests;
  json["requests_per_second"] = std::round(report.requests_per_second() * 10) / 10;
  json["bytes"] = stats.bytes_received;
  json["bytes_sent"] = stats.bytes_sent;
  json["connects"] = stats.connects;
  json["connects_pending"] = stats.connects_pending;
  json["connections_not_started"] = stats.connections_not_started;
  json["connections_open_peak"] = report.connections_open_peak;
  json["interrupted"] = report.interrupted;
  json["requests_unfinished"] = stats.requests_unfinished;
  const bool scheduled =
      report.options.attack() == AttackMode::none && report.options.mode() != LoopMode::closed;
  json["requests_due"] = scheduled ? Json(stats.requests_due) : Json(nullptr);
  json["requests_unsent"] = stats.requests_unsent;
  json["stalls"] = stalls_json(report);
  const auto failure = report.failure();
  json["failure"] = failure ? Json(*failure) : Json(nullptr);
  json["latency_us"] = to_json(stats.latency_ns);
  json["connect_us"] = to_json(stats.connect_ns);
  json["hold"] = report.options.hold ? Json{{"duration_s", std::round(report.hold_s * 1e6) / 1e6},
                                            {"requests", stats.hold_latency_ns.count()},
                                            {"latency_us", to_json(stats.hold_latency_ns)}}
                                     : Json(nullptr);
  json["attack"] =
      report.options.attack() != AttackMode::none ? attack_json(report) : Json(nullptr);
  Json& errors = json["errors"];
  for (const ErrorKind kind : kErrorKinds) {
    errors[to_string(kind)] = stats.error_count(kind);
  }
  errors["total"] = stats.total_errors();
  Json& first_errors = json["first_errors"] = Json::object();
  for (const ErrorKind kind : kErrorKinds) {
    if (stats.error_count(kind) > 0) {
      first_errors[to_string(kind)] = stats.first_error[static_cast<std::size_t>(kind)];
    }
  }
  json["series"] = series_json(report.series);
  json["merged_from"] = merged_from_json(report);
  json["histograms"] = histograms_json(report);
  // The request path comes from the command line and may hold bytes that are not UTF-8: they
  // are replaced, where the library would otherwise throw after the run has been done.
  out << with_number_arrays_inline(json.dump(2, ' ', false, Json::error_handler_t::replace))
      << '\n';
}

namespace {

// " (5 still connecting at the end)": the connections a run ended without, where there are any.
std::string unopened_text(const LoadStats& stats) {
  std::string text;
  if (stats.connects_pending > 0) {
    text += std::to_string(stats.connects_pending) + " still connecting at the end";
  }
  if (stats.connections_not_started > 0) {
    text +=
        (text.empty() ? "" : ", ") + std::to_string(stats.connections_not_started) + " not started";
  }
  return text.empty() ? text : " (" + text + ")";
}

}  // namespace

void write_summary(std::ostream& out, const RunReport& report) {
  const LoadStats& stats = report.stats;
  out << "echolab-load: " << describe_run(report.options) << '\n';
  out << formatted("  %.2f s%s, %llu requests, %.1f requests/s\n", report.duration_s,
                   report.interrupted ? " (interrupted)" : "",
                   static_cast<unsigned long long>(stats.requests), report.requests_per_second());
  out << "  " << human_bytes(stats.bytes_received) << " received, " << human_bytes(stats.bytes_sent)
      << " sent, " << stats.connects << " connects" << unopened_text(stats) << ", peak "
      << report.connections_open_peak << " open\n";
  write_window_lines(out, report);
  write_histogram_line(out, "latency     ", stats.latency_ns);
  write_histogram_line(out, "connect     ", stats.connect_ns);
  if (report.options.hold) {
    write_histogram_line(out, "hold latency", stats.hold_latency_ns);
  }
  if (report.options.attack() != AttackMode::none) {
    write_attack_lines(out, stats);
  }
  write_schedule_lines(out, report);
  if (stats.total_errors() == 0) {
    out << "  errors       none\n";
    return;
  }
  out << "  errors       " << stats.total_errors() << '\n';
  for (const ErrorKind kind : kErrorKinds) {
    if (const auto count = stats.error_count(kind); count > 0) {
      out << "    " << to_string(kind) << ' ' << count
          << " (first: " << stats.first_error[static_cast<std::size_t>(kind)] << ")\n";
    }
  }
}

}  // namespace echolab::load
