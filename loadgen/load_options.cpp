#include "loadgen/load_options.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "common/server/duration.hpp"

namespace echolab::load {

std::string_view to_string(WireProtocol protocol) {
  return protocol == WireProtocol::http ? "http" : "raw";
}

std::string_view to_string(HttpMethod method) { return method == HttpMethod::get ? "GET" : "POST"; }

std::string_view to_string(LoopMode mode) {
  switch (mode) {
    case LoopMode::closed:
      return "closed";
    case LoopMode::open:
      return "open";
    case LoopMode::hold:
      return "hold";
  }
  return "closed";
}

std::string_view to_string(AttackMode mode) {
  switch (mode) {
    case AttackMode::none:
      return "none";
    case AttackMode::slow_headers:
      return "slow_headers";
    case AttackMode::never_read:
      return "never_read";
  }
  return "none";
}

std::string Target::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

LoopMode LoadOptions::mode() const {
  if (hold) {
    return LoopMode::hold;
  }
  return rate ? LoopMode::open : LoopMode::closed;
}

AttackMode LoadOptions::attack() const {
  if (slow_headers_interval) {
    return AttackMode::slow_headers;
  }
  return never_read ? AttackMode::never_read : AttackMode::none;
}

std::chrono::nanoseconds LoadOptions::run_time() const { return hold ? ramp + *hold : duration; }

bool LoadOptions::sends_payload() const {
  return protocol == WireProtocol::raw || method == HttpMethod::post;
}

std::size_t LoadOptions::shard_connections() const { return shard.connections_of(connections); }

std::optional<double> LoadOptions::shard_rate() const {
  if (!rate) {
    return std::nullopt;
  }
  return *rate * static_cast<double>(shard_connections()) / static_cast<double>(connections);
}

Target parse_target(std::string_view text) {
  Target target;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) {
      throw std::invalid_argument("'" + std::string(text) + "' is not [IPV6]:PORT");
    }
    target.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw std::invalid_argument("'" + std::string(text) + "' is not HOST:PORT");
    }
    target.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535 || target.host.empty()) {
    throw std::invalid_argument("'" + std::string(text) + "' is not HOST:PORT with a port 1-65535");
  }
  target.port = static_cast<std::uint16_t>(port);
  return target;
}

namespace {

// Registers a duration option whose text is converted with parse_duration().
CLI::Option* add_duration(CLI::App& app, const std::string& name, std::chrono::nanoseconds& into,
                          const std::string& description) {
  return app
      .add_option_function<std::string>(
          name,
          [&into, name](const std::string& text) {
            try {
              into = parse_duration(text);
            } catch (const std::invalid_argument& error) {
              throw CLI::ValidationError(name, error.what());
            }
          },
          description)
      ->type_name("DURATION");
}

// Words the user types, kept as text until the parse is over.
struct WordOptions {
  std::string target;
  std::string protocol = "http";
  std::string method = "GET";
};

// Durations whose presence is itself a choice, kept apart until the parse is over.
struct OptionalDurations {
  std::chrono::nanoseconds hold{0};
  std::chrono::nanoseconds slow_headers{0};
};

void add_attack_options(CLI::App& app, LoadOptions& options, OptionalDurations& durations) {
  add_duration(app, "--slow-headers", durations.slow_headers,
               "Attack (slowloris): each connection sends a GET head one header line per "
               "INTERVAL and never ends it; reports how long the server held it and its answer");
  app.add_flag("--never-read", options.never_read,
               "Attack: each connection sends requests as fast as the socket takes them and "
               "never reads a reply; reports how long until the server closed it");
}

// A run described once and started by several processes on several machines.
void add_distributed_options(CLI::App& app, LoadOptions& options) {
  app.add_option_function<std::string>(
         "--shard",
         [&options](const std::string& text) {
           try {
             options.shard = parse_shard(text);
           } catch (const std::invalid_argument& error) {
             throw CLI::ValidationError("--shard", error.what());
           }
         },
         "Run shard I of N (e.g. 2/3): every I/N connection of -c, and the same share of --rate; "
         "merge the N results with `echolab-load merge`")
      ->type_name("I/N");
  app.add_option_function<std::string>(
         "--start-at",
         [&options](const std::string& text) {
           try {
             options.start_at = parse_start_at(text, WallClock::now());
           } catch (const std::invalid_argument& error) {
             throw CLI::ValidationError("--start-at", error.what());
           }
         },
         "Wait until this wall-clock time before connecting, so that replicas measure the same "
         "window: Unix seconds (1764821400.5) or ISO 8601 UTC (2026-12-04T04:10:00Z), at most "
         "an hour ahead")
      ->type_name("TIME");
}

// The load generator's own series, for a Prometheus that scrapes the load beside the server.
void add_metrics_options(CLI::App& app, LoadOptions& options) {
  app.add_option_function<std::string>(
         "--metrics-listen",
         [&options](const std::string& text) {
           try {
             options.metrics_listen = parse_endpoint(text);
           } catch (const std::invalid_argument& error) {
             throw CLI::ValidationError("--metrics-listen", error.what());
           }
         },
         "Serve the run's own Prometheus series (echolab_load_*) on ADDR:PORT at /metrics "
         "(IPv4)")
      ->type_name("ADDR:PORT");
  add_duration(app, "--metrics-linger", options.metrics_linger,
               "With --metrics-listen: keep serving the final totals this long after the run, "
               "so that the last scrape sees them")
      ->default_str("0s");
}

void add_options(CLI::App& app, LoadOptions& options, WordOptions& words,
                 OptionalDurations& durations) {
  const auto count_range = CLI::Range(std::size_t{1}, std::size_t{10'000'000});
  app.add_option("HOST:PORT", words.target, "Server to load (IPv6 as [ADDR]:PORT)")->required();
  app.add_option("--protocol", words.protocol, "http (keep-alive) or raw (TCP echo)")
      ->check(CLI::IsMember({"http", "raw"}, CLI::ignore_case))
      ->capture_default_str();
  app.add_option("--method", words.method,
                 "HTTP method: GET, or POST sending --payload bytes and checking the echo")
      ->check(CLI::IsMember({"GET", "POST"}, CLI::ignore_case))
      ->capture_default_str();
  app.add_option("--path", options.path, "HTTP request target")->capture_default_str();
  app.add_option("--payload", options.payload_bytes,
                 "Bytes per request for raw echo and POST, checked byte for byte in the reply")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("-c,--connections", options.connections, "Connections to keep open")
      ->check(count_range)
      ->capture_default_str();
  app.add_option("-t,--threads", options.threads,
                 "Threads, each running its own event loop over its share of the connections")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}))
      ->capture_default_str();
  add_duration(app, "-d,--duration", options.duration, "How long to run (e.g. 10s, 500ms)")
      ->default_str("10s");
  add_duration(app, "--ramp", options.ramp,
               "Open the connections at an even pace over this time instead of all at once")
      ->default_str("0s");
  add_duration(app, "--hold", durations.hold,
               "Hold mode: after the ramp, keep every connection open this long, each sending one "
               "request every --interval (replaces --duration)");
  add_duration(app, "--interval", options.interval,
               "Hold mode: time between two requests of one connection")
      ->default_str("1s");
  app.add_option("--pipeline", options.pipeline,
                 "Requests sent back to back before waiting for their replies (closed loop)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}))
      ->capture_default_str();
  app.add_option("-R,--rate", options.rate,
                 "Open loop: total requests per second on a fixed schedule; latency counts from "
                 "the intended send time")
      ->check(CLI::PositiveNumber);
  add_duration(app, "--timeout", options.timeout,
               "A request or connect without an answer in this time counts as a timeout error")
      ->default_str("10s");
  add_duration(app, "--stall-threshold", options.stall_threshold,
               "A stall: no reply for this long while requests are outstanding; reported, and "
               "it fails the run")
      ->default_str("1s");
  app.add_option_function<double>(
         "--unsent-tolerance",
         [&options](double percent) { options.unsent_tolerance = percent / 100.0; },
         "Open loop and hold: the percentage of the requests due that may stay unsent at the "
         "end (the connection still waiting on a reply) before the run fails")
      ->check(CLI::Range(0.0, 100.0))
      ->type_name("PERCENT")
      ->default_str("1");
  app.add_flag("--new-connection-per-request", options.new_connection_per_request,
               "Connection churn: reconnect for every request (latency then includes connect)");
  app.add_option("--max-response-bytes", options.max_response_bytes,
                 "HTTP: a reply longer than this (head and body) is cut and counted as "
                 "oversized_reply")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30))
      ->capture_default_str();
  add_attack_options(app, options, durations);
  add_distributed_options(app, options);
  add_metrics_options(app, options);
  app.add_option("--json", options.json_path, "Write the result as JSON to this file");
  app.add_flag("-q,--quiet", options.quiet, "No progress line on stderr");
}

// The attack modes replace the request loop: only the flags that shape their bytes apply.
std::optional<std::string> attack_conflict_in(const CLI::App& app, const LoadOptions& options) {
  const auto given = [&app](const char* name) { return app.count(name) > 0; };
  if (options.slow_headers_interval && options.never_read) {
    return "--slow-headers and --never-read exclude each other";
  }
  if (options.attack() == AttackMode::none) {
    return std::nullopt;
  }
  if (options.hold || options.rate || options.new_connection_per_request ||
      options.protocol == WireProtocol::raw) {
    return "--slow-headers and --never-read attack over HTTP on their own schedule (not with "
           "--hold, --rate, --new-connection-per-request or --protocol raw)";
  }
  if (given("--max-response-bytes")) {
    return "--max-response-bytes applies to load runs, not to --slow-headers or --never-read";
  }
  if (options.slow_headers_interval &&
      (given("--method") || given("--payload") || options.pipeline > 1)) {
    return "--slow-headers sends one unfinished GET head: drop --method, --payload and "
           "--pipeline";
  }
  if (options.slow_headers_interval && options.slow_headers_interval->count() <= 0) {
    return "--slow-headers INTERVAL must be more than 0";
  }
  return std::nullopt;
}

// Combinations the flags cannot express on their own; the message names the flags.
std::optional<std::string> conflict_in(const CLI::App& app, const LoadOptions& options) {
  const auto given = [&app](const char* name) { return app.count(name) > 0; };
  if (auto conflict = attack_conflict_in(app, options)) {
    return conflict;
  }
  const bool hold = options.hold.has_value();
  if (given("--metrics-linger") && !options.metrics_listen) {
    return "--metrics-linger needs --metrics-listen";
  }
  if (hold && given("--duration")) {
    return "--hold sets the run time (ramp + hold); drop --duration";
  }
  if (hold && options.rate) {
    return "--rate and --hold exclude each other (--hold sends one request per --interval)";
  }
  if (!hold && given("--interval")) {
    return "--interval needs --hold";
  }
  if (options.protocol == WireProtocol::raw && given("--max-response-bytes")) {
    return "--max-response-bytes applies to --protocol http";
  }
  if (options.sends_payload() && options.max_response_bytes <= options.payload_bytes) {
    return "--max-response-bytes must exceed --payload: the echoed body alone is " +
           std::to_string(options.payload_bytes) + " bytes";
  }
  if (options.pipeline > 1 && (hold || options.rate || options.new_connection_per_request)) {
    return "--pipeline applies to the closed loop only (not with --rate, --hold or "
           "--new-connection-per-request)";
  }
  if (options.new_connection_per_request && (hold || options.rate)) {
    return "--new-connection-per-request applies to the closed loop only";
  }
  if (options.protocol == WireProtocol::raw && (given("--method") || given("--path"))) {
    return "--method and --path apply to --protocol http";
  }
  if (options.protocol == WireProtocol::raw && options.payload_bytes == 0) {
    return "--payload must be at least 1 byte for --protocol raw";
  }
  if (given("--payload") && !options.sends_payload()) {
    return "--payload needs --method POST or --protocol raw";
  }
  if (!options.path.starts_with('/') || options.path.find_first_of(" \r\n") != std::string::npos) {
    return "--path must start with / and contain no spaces or line breaks";
  }
  if (!hold && options.duration.count() <= 0) {
    return "--duration must be more than 0";
  }
  if (!hold && options.ramp >= options.duration) {
    return "--ramp must be shorter than --duration";
  }
  if (hold && (options.hold->count() <= 0 || options.interval.count() <= 0)) {
    return "--hold and --interval must be more than 0";
  }
  if (options.timeout.count() <= 0) {
    return "--timeout must be more than 0";
  }
  if (options.stall_threshold < std::chrono::milliseconds(1)) {
    return "--stall-threshold must be at least 1ms";
  }
  if (options.shard_connections() == 0) {
    return "--shard " + options.shard.to_string() + " has no connection: -c " +
           std::to_string(options.connections) + " is fewer than " +
           std::to_string(options.shard.count) + " shards";
  }
  return std::nullopt;
}

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& arguments) {
  CLI::App app{
      "echolab-load: an HTTP and raw TCP echo load generator with closed loop, open loop "
      "(--rate) and connection ramp-and-hold, and two attack clients (--slow-headers, "
      "--never-read).\nExit status: 0 no error, 1 errors were counted or no request completed, "
      "2 bad usage.",
      "echolab-load"};
  LoadOptions options;
  WordOptions words;
  OptionalDurations durations;
  add_options(app, options, words, durations);

  CommandLine result;
  try {
    // CLI11 consumes a vector from its back.
    std::vector<std::string> reversed(arguments.rbegin(), arguments.rend());
    app.parse(reversed);
    options.target = parse_target(words.target);
  } catch (const CLI::CallForHelp&) {
    result.message = app.help();
    return result;
  } catch (const CLI::ParseError& error) {
    result.exit_code = 2;
    result.message = error.what();
    return result;
  } catch (const std::invalid_argument& error) {
    result.exit_code = 2;
    result.message = std::string("HOST:PORT: ") + error.what();
    return result;
  }
  options.protocol =
      CLI::detail::to_lower(words.protocol) == "raw" ? WireProtocol::raw : WireProtocol::http;
  options.method =
      CLI::detail::to_lower(words.method) == "post" ? HttpMethod::post : HttpMethod::get;
  if (app.count("--hold") > 0) {
    options.hold = durations.hold;
  }
  if (app.count("--slow-headers") > 0) {
    options.slow_headers_interval = durations.slow_headers;
  }
  if (const auto conflict = conflict_in(app, options)) {
    result.exit_code = 2;
    result.message = *conflict;
    return result;
  }
  options.threads = std::min(options.threads, options.shard_connections());
  result.options = std::move(options);
  return result;
}

}  // namespace echolab::load
