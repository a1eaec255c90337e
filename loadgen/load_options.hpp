// echolab-load's command line: what to load, how, and for how long.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/server/server_options.hpp"
#include "loadgen/shard.hpp"
#include "loadgen/start_time.hpp"

namespace echolab::load {

enum class WireProtocol { http, raw };
enum class HttpMethod { get, post };

// closed: each connection sends its next request when the previous reply is in.
// open:   requests leave on a fixed schedule (--rate), whatever the replies do.
// hold:   every connection stays open and sends one request every --interval.
enum class LoopMode { closed, open, hold };

// Attack clients for the slow-clients experiment; none for an ordinary load run.
// slow_headers: each connection sends a request head one header line per interval, never
//               finishing it (slowloris).
// never_read:   each connection sends requests as fast as the socket takes them and never
//               reads a byte of the replies.
enum class AttackMode { none, slow_headers, never_read };

std::string_view to_string(WireProtocol protocol);
std::string_view to_string(HttpMethod method);
std::string_view to_string(LoopMode mode);
std::string_view to_string(AttackMode mode);

struct Target {
  std::string host;
  std::uint16_t port = 0;
  [[nodiscard]] std::string to_string() const;  // "host:port", "[v6]:port"
};

struct LoadOptions {
  Target target;
  WireProtocol protocol = WireProtocol::http;
  HttpMethod method = HttpMethod::get;
  std::string path = "/";
  std::size_t payload_bytes = 64;
  std::size_t connections = 10;
  std::size_t threads = 2;
  std::chrono::nanoseconds duration = std::chrono::seconds(10);
  std::chrono::nanoseconds ramp{0};
  std::optional<std::chrono::nanoseconds> hold;
  std::chrono::nanoseconds interval = std::chrono::seconds(1);
  std::size_t pipeline = 1;
  std::optional<double> rate;  // requests per second over all connections
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);
  // A server that leaves every outstanding request unanswered this long has stalled: the
  // run reports it and fails, whatever --timeout says.
  std::chrono::nanoseconds stall_threshold = std::chrono::seconds(1);
  // The share of the requests the schedule made due (open loop and hold) that may stay
  // unsent at the end before the run fails: a fraction, 0.01 for 1 %.
  double unsent_tolerance = 0.01;
  bool new_connection_per_request = false;
  // A reply longer than this (status line, headers and body) is cut: a broken or hostile
  // server must not make a connection read forever. Room for the servers' 1 MiB echo.
  std::size_t max_response_bytes = std::size_t{4} << 20;
  std::optional<std::chrono::nanoseconds> slow_headers_interval;
  bool never_read = false;
  std::string json_path;
  bool quiet = false;
  // This process's part of the run; `connections` and `rate` describe the whole run.
  Shard shard;
  std::optional<WallClock::time_point> start_at;  // wait for this moment before connecting
  // The load generator's own Prometheus endpoint, up from before the start until --metrics-linger
  // after the end, so that a scrape can see the final totals.
  std::optional<Endpoint> metrics_listen;
  std::chrono::nanoseconds metrics_linger{0};

  [[nodiscard]] LoopMode mode() const;
  [[nodiscard]] AttackMode attack() const;
  // The whole run: --ramp + --hold in hold mode, --duration otherwise.
  [[nodiscard]] std::chrono::nanoseconds run_time() const;
  // True when a request carries the payload (raw echo, or HTTP POST).
  [[nodiscard]] bool sends_payload() const;
  // The connections this process opens: its shard's share of `connections`.
  [[nodiscard]] std::size_t shard_connections() const;
  // This process's share of --rate: each connection keeps the rate it has in the whole run.
  [[nodiscard]] std::optional<double> shard_rate() const;
};

// "HOST:PORT" or "[V6]:PORT"; throws std::invalid_argument naming what is wrong.
Target parse_target(std::string_view text);

// What the command line asks for: either options to run with, or an exit with a message
// (the help text with code 0, or one line naming the bad flag or value with code 2).
struct CommandLine {
  std::optional<LoadOptions> options;
  int exit_code = 0;
  std::string message;
};

// `arguments` excludes the program name.
CommandLine parse_command_line(const std::vector<std::string>& arguments);

}  // namespace echolab::load
