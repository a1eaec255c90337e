// Command-line options every server shares, parsed with CLI11.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/protocol/client_deadline.hpp"
#include "common/protocol/protocol_config.hpp"

// Only a reference to CLI11's App here: the files that build the command line include CLI11
// (a heavy header-only library), the many that need only the options do not.
namespace CLI {
class App;
}  // namespace CLI

namespace echolab {

struct Endpoint {
  std::string host = "0.0.0.0";
  std::uint16_t port = 0;
  [[nodiscard]] std::string to_string() const;
};

// Parses "HOST:PORT" or "[V6]:PORT"; throws std::invalid_argument naming what is wrong.
Endpoint parse_endpoint(std::string_view text);

enum class Model { prefork, threads, pool, hybrid };
std::string_view to_string(Model model);

struct ServerOptions {
  Model model = Model::threads;
  Endpoint listen;
  Endpoint metrics_listen;
  ClientTimeouts timeouts;
  std::chrono::milliseconds shutdown_timeout{10'000};
  std::size_t max_connections = 10'000;
  int backlog = 4096;
  ProtocolConfig protocol;
};

// Defaults for one model: its ports (8081/9101, 8082/9102, 8083/9103, 8084/9104) and the rest.
ServerOptions default_options(Model model);

// Adds --listen, --metrics-listen, the client timeouts (--idle-timeout, --header-timeout,
// --body-timeout, --send-timeout, --linger-timeout, --max-connection-lifetime, --min-rate),
// --shutdown-timeout, --max-connections, --backlog, --protocol, --max-header-bytes,
// --max-body-bytes, --max-requests-per-connection and --fault-injection.
void add_server_options(CLI::App& app, ServerOptions& options);

// Adds a HOST:PORT flag (`--listen` and the like) bound to `target`: a bad value is refused
// on one line naming the flag.
void add_endpoint_option(CLI::App& app, const std::string& name, Endpoint& target,
                         const std::string& help);

// Parses the command line. Returns -1 to go on, or the exit code to leave with: 0 after
// --help, 2 after a bad flag or value (reported on one line naming it).
int parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace echolab
