#include "common/server/server_options.hpp"

#include <charconv>
#include <iostream>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "common/server/duration.hpp"

namespace echolab {

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Endpoint parse_endpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    throw std::invalid_argument("'" + std::string(text) + "' is not HOST:PORT");
  }
  std::string_view host = text.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    throw std::invalid_argument("'" + std::string(port_text) + "' in '" + std::string(text) +
                                "' is not a port (0-65535)");
  }
  return {std::string(host), static_cast<std::uint16_t>(port)};
}

std::string_view to_string(Model model) {
  switch (model) {
    case Model::prefork:
      return "prefork";
    case Model::threads:
      return "threads";
    case Model::pool:
      return "pool";
    case Model::hybrid:
      return "hybrid";
  }
  return "unknown";
}

ServerOptions default_options(Model model) {
  ServerOptions options;
  options.model = model;
  const auto offset = static_cast<std::uint16_t>(model);
  options.listen = {"0.0.0.0", static_cast<std::uint16_t>(8081 + offset)};
  options.metrics_listen = {"0.0.0.0", static_cast<std::uint16_t>(9101 + offset)};
  return options;
}

namespace {

// Runs a parser, turning its std::invalid_argument into CLI11's error naming the flag.
template <typename Parse>
auto rethrow_for_cli(const std::string& flag, Parse parse) {
  try {
    return parse();
  } catch (const std::invalid_argument& error) {
    throw CLI::ValidationError(flag, error.what());
  }
}

// The shortest duration any server flag accepts. Zero is never what was meant: an idle
// timeout of 0 closes every connection before its first request, a shutdown timeout of 0
// cuts every request in flight. Durations are kept in milliseconds, so anything shorter
// would round down to 0 anyway.
constexpr std::chrono::milliseconds kShortestDuration{1};

// Binds a duration flag ("30s", "500ms") to a millisecond field; a value under `minimum` is
// refused with an error naming the flag.
void add_duration_option(CLI::App& app, const std::string& name, std::chrono::milliseconds& target,
                         const std::string& help,
                         std::chrono::milliseconds minimum = kShortestDuration) {
  app.add_option_function<std::string>(
         name,
         [&target, name, minimum](const std::string& text) {
           const std::chrono::nanoseconds parsed =
               rethrow_for_cli(name, [&] { return parse_duration(text); });
           if (parsed < minimum) {
             throw CLI::ValidationError(name, "'" + text + "' is below the minimum of " +
                                                  std::to_string(minimum.count()) + "ms");
           }
           target = std::chrono::duration_cast<std::chrono::milliseconds>(parsed);
         },
         help)
      ->default_str(std::to_string(target.count()) + "ms");
}

// Each beside its nginx or Apache counterpart: docs/slow-clients.md.
void add_client_timeout_options(CLI::App& app, ClientTimeouts& timeouts) {
  add_duration_option(app, "--idle-timeout", timeouts.idle,
                      "Close a connection idle between requests for this long");
  add_duration_option(app, "--header-timeout", timeouts.header,
                      "A request's whole header section must arrive within this, or 408");
  add_duration_option(app, "--body-timeout", timeouts.body,
                      "A request body's grace: past it the body must keep --min-rate, or 408");
  add_duration_option(app, "--send-timeout", timeouts.send,
                      "An answer's grace: past it a client that does not read at --min-rate "
                      "is disconnected");
  add_duration_option(app, "--linger-timeout", timeouts.linger,
                      "After an error answer (or an answer to close with client bytes unread "
                      "or unacknowledged), read and drop what the client still sends for at "
                      "most this long, so the answer is not lost to a reset");
  add_duration_option(app, "--max-connection-lifetime", timeouts.max_lifetime,
                      "Close a connection open this long at its next point between requests "
                      "(a request in flight is finished)");
  app.add_option("--min-rate", timeouts.min_rate,
                 "Bytes/s that a body or an answer must keep after its grace (0: the grace is "
                 "a hard limit)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 40))
      ->capture_default_str();
}

}  // namespace

void add_endpoint_option(CLI::App& app, const std::string& name, Endpoint& target,
                         const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [&target, name](const std::string& text) {
           target = rethrow_for_cli(name, [&] { return parse_endpoint(text); });
         },
         help)
      ->default_str(target.to_string());
}

void add_server_options(CLI::App& app, ServerOptions& options) {
  add_endpoint_option(app, "--listen", options.listen, "Address and port to serve on");
  add_endpoint_option(app, "--metrics-listen", options.metrics_listen,
                      "Address and port of the Prometheus /metrics endpoint");
  add_client_timeout_options(app, options.timeouts);
  add_duration_option(app, "--shutdown-timeout", options.shutdown_timeout,
                      "On SIGTERM/SIGINT, wait this long for in-flight requests, then exit");
  app.add_option("--max-connections", options.max_connections,
                 "Connections served at once; more wait in the backlog or are rejected")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--backlog", options.backlog, "listen() backlog")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--protocol", options.protocol.mode, "detect (from the first bytes), http or raw")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, ProtocolMode>{{"detect", ProtocolMode::detect},
                                              {"http", ProtocolMode::http},
                                              {"raw", ProtocolMode::raw}},
          CLI::ignore_case))
      ->default_str("detect");
  app.add_option("--max-header-bytes", options.protocol.limits.max_header_bytes,
                 "Largest request header section; larger gets 431")
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 24))
      ->capture_default_str();
  app.add_option("--max-body-bytes", options.protocol.limits.max_body_bytes,
                 "Largest request body; larger gets 413")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-requests-per-connection",
                 options.protocol.limits.max_requests_per_connection,
                 "The Nth HTTP answer on a connection says 'Connection: close' and is its last "
                 "(0: no cap)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 32))
      ->capture_default_str();
  app.add_flag("--fault-injection", options.protocol.fault_injection,
               "Enable GET /crash, /sleep?ms=N, /burn?us=N, /leak?prefix=P and /corrupt (off: "
               "they answer 404)");
}

int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& error) {
    std::cerr << app.get_name() << ": " << error.what() << " (see --help)\n";
    return 2;
  }
}

}  // namespace echolab
