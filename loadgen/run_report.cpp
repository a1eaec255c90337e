#include "loadgen/run_report.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "loadgen/json_writer.hpp"

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

double seconds(std::chrono::nanoseconds time) {
  return std::chrono::duration<double>(time).count();
}

void write_histogram(JsonWriter& json, std::string_view key, const LatencyHistogram& histogram) {
  json.begin_object(key);
  json.field("count", histogram.count());
  json.field("min", microseconds(histogram.min()));
  json.field("mean", microseconds(histogram.mean()));
  for (const auto& p : kPercentiles) {
    json.field(p.json_key, microseconds(histogram.value_at_percentile(p.percentile)));
  }
  json.field("max", microseconds(histogram.max()));
  json.end_object();
}

void write_options(JsonWriter& json, const LoadOptions& options) {
  json.field("target", options.target.to_string());
  json.field("protocol", to_string(options.protocol));
  if (options.protocol == WireProtocol::http) {
    json.field("method", to_string(options.method));
    json.field("path", options.path);
  } else {
    json.null_field("method").null_field("path");
  }
  json.field("mode", to_string(options.mode()));
  json.field("connections", std::uint64_t{options.connections});
  json.field("threads", std::uint64_t{options.threads});
  json.field("pipeline", std::uint64_t{options.pipeline});
  json.field("payload_bytes", std::uint64_t{options.sends_payload() ? options.payload_bytes : 0});
  if (options.rate) {
    json.field("rate", *options.rate);
  } else {
    json.null_field("rate");
  }
  json.field("ramp_s", seconds(options.ramp));
  if (options.hold) {
    json.field("interval_s", seconds(options.interval));
  } else {
    json.null_field("interval_s");
  }
  json.field("timeout_s", seconds(options.timeout));
  json.field("new_connection_per_request", options.new_connection_per_request);
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
  text += ", " + std::string(kModeText[static_cast<std::size_t>(options.mode())]) + ", " +
          std::to_string(options.connections) + " connections, " + std::to_string(options.threads) +
          " threads";
  if (options.pipeline > 1) {
    text += ", pipeline " + std::to_string(options.pipeline);
  }
  if (options.rate) {
    text += ", " + std::to_string(std::llround(*options.rate)) + " requests/s scheduled";
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

int RunReport::exit_status() const { return stats.total_errors() == 0 ? 0 : 1; }

void write_json(std::ostream& out, const RunReport& report) {
  JsonWriter json(out);
  json.begin_object();
  json.field("tool", "echolab-load");
  write_options(json, report.options);
  json.field("duration_s", std::round(report.duration_s * 1e6) / 1e6);
  json.field("requests", report.stats.requests);
  json.field("requests_per_second", std::round(report.requests_per_second() * 10) / 10);
  json.field("bytes", report.stats.bytes_received);
  json.field("bytes_sent", report.stats.bytes_sent);
  json.field("connects", report.stats.connects);
  json.field("connections_open_peak", report.connections_open_peak);
  json.field("interrupted", report.interrupted);
  write_histogram(json, "latency_us", report.stats.latency_ns);
  write_histogram(json, "connect_us", report.stats.connect_ns);
  if (report.options.hold) {
    json.begin_object("hold");
    json.field("duration_s", std::round(report.hold_s * 1e6) / 1e6);
    json.field("requests", report.stats.hold_latency_ns.count());
    write_histogram(json, "latency_us", report.stats.hold_latency_ns);
    json.end_object();
  } else {
    json.null_field("hold");
  }
  json.begin_object("errors");
  for (const ErrorKind kind : kErrorKinds) {
    json.field(to_string(kind), report.stats.error_count(kind));
  }
  json.field("total", report.stats.total_errors());
  json.end_object();
  json.begin_object("first_errors");
  for (const ErrorKind kind : kErrorKinds) {
    if (report.stats.error_count(kind) > 0) {
      json.field(to_string(kind), report.stats.first_error[static_cast<std::size_t>(kind)]);
    }
  }
  json.end_object();
  json.end_object();
}

void write_summary(std::ostream& out, const RunReport& report) {
  const LoadStats& stats = report.stats;
  out << "echolab-load: " << describe_run(report.options) << '\n';
  out << formatted("  %.2f s%s, %llu requests, %.1f requests/s\n", report.duration_s,
                   report.interrupted ? " (interrupted)" : "",
                   static_cast<unsigned long long>(stats.requests), report.requests_per_second());
  out << "  " << human_bytes(stats.bytes_received) << " received, " << human_bytes(stats.bytes_sent)
      << " sent, " << stats.connects << " connects, peak " << report.connections_open_peak
      << " open\n";
  write_histogram_line(out, "latency     ", stats.latency_ns);
  write_histogram_line(out, "connect     ", stats.connect_ns);
  if (report.options.hold) {
    write_histogram_line(out, "hold latency", stats.hold_latency_ns);
  }
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
