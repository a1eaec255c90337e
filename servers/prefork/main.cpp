// echolab-prefork: the Apache prefork MPM model. A master process forks children that each
// serve one connection at a time with blocking I/O; see docs/prefork.md.
#include <csignal>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "common/server/listener.hpp"
#include "common/server/log.hpp"
#include "common/server/server_main.hpp"
#include "servers/prefork/master.hpp"
#include "servers/prefork/prefork_options.hpp"
#include "servers/prefork/spawner.hpp"
#include "servers/prefork/worker_limits.hpp"

namespace {

using echolab::log_error;
using echolab::log_event;
using namespace echolab::prefork;

// Caps --max-workers to what the kernel allows (with a warning saying which limit to raise);
// returns 0 when even one process cannot have the descriptors it needs.
std::size_t checked_worker_cap(const PreforkOptions& options) {
  const echolab::SystemLimits limits = echolab::read_system_limits();
  if (limits.open_files_soft < kDescriptorsPerProcess) {
    log_error("fatal",
              {{"problem", "ulimit -n is " + std::to_string(limits.open_files_soft) +
                               ", each process needs " + std::to_string(kDescriptorsPerProcess) +
                               ": raise it with ulimit -n"}});
    return 0;
  }
  if (static_cast<std::uint64_t>(options.server.backlog) > limits.somaxconn) {
    log_error("limit_warning",
              {{"problem", "--backlog " + std::to_string(options.server.backlog) +
                               " is cut to net.core.somaxconn " + std::to_string(limits.somaxconn) +
                               ": raise it with sysctl -w net.core.somaxconn"}});
  }
  const WorkerCap cap = cap_workers(options.worker_cap(), limits);
  if (!cap.limited_by.empty()) {
    log_error("limit_warning",
              {{"problem", "--max-workers " + std::to_string(options.worker_cap()) + " capped to " +
                               std::to_string(cap.workers) + ": " + cap.limited_by}});
  }
  return cap.workers;
}

}  // namespace

int main(int argc, char** argv) {
  // The spawner the master execs (spawner.hpp): before any option parsing, so that it starts
  // the children from as little touched memory as possible.
  if (argc == 3 && std::string_view(argv[1]) == kSpawnerFlag) {
    return run_spawner(std::atoi(argv[2]));
  }
  return echolab::run_server_main("echolab-prefork", [argc, argv] {
    echolab::set_log_model("prefork");
    CLI::App app{
        "echolab-prefork: pre-forked processes, one connection per process (Apache prefork)",
        "echolab-prefork"};
    PreforkOptions options;
    add_prefork_options(app, options);
    if (const int exit_code = echolab::parse_command_line(app, argc, argv); exit_code >= 0) {
      return exit_code;
    }
    static_cast<void>(std::signal(SIGPIPE, SIG_IGN));
    const std::size_t worker_cap = checked_worker_cap(options);
    if (worker_cap == 0) {
      return 1;
    }
    Master master(options, worker_cap,
                  echolab::open_listener(options.server.listen, options.server.backlog));
    return master.run();
  });
}
