// echolab-threads: one thread per connection, blocking I/O.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "common/metrics/striped_metrics.hpp"
#include "common/server/capacity.hpp"
#include "common/server/listener.hpp"
#include "common/server/log.hpp"
#include "common/server/server_main.hpp"
#include "common/server/shutdown_signals.hpp"
#include "servers/threads/thread_per_connection_server.hpp"

namespace {

// The system's default thread stack: RLIMIT_STACK (ulimit -s), 8 MiB on most distributions.
std::size_t default_stack_size() {
  rlimit limit{};
  getrlimit(RLIMIT_STACK, &limit);
  constexpr std::size_t kFallback = std::size_t{8} * 1024 * 1024;
  return limit.rlim_cur == RLIM_INFINITY ? kFallback : static_cast<std::size_t>(limit.rlim_cur);
}

void add_threads_options(CLI::App& app, echolab::ThreadsOptions& options) {
  options.stack_size = default_stack_size();
  app.add_option("--stack-size", options.stack_size,
                 "Stack of each connection thread, e.g. 8MiB, 256KiB, 65536 (default: ulimit -s)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(std::size_t{16} * 1024, std::size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-threads", options.max_threads,
                 "Connection threads at once; more connections wait in the listen backlog")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace echolab;
  return run_server_main("echolab-threads", [argc, argv] {
    CLI::App app{"echolab-threads: the thread-per-connection echo server", "echolab-threads"};
    ThreadsOptions options;
    add_server_options(app, options.server);
    add_threads_options(app, options);
    if (const int exit_code = parse_command_line(app, argc, argv); exit_code >= 0) {
      return exit_code;
    }
    set_log_model("threads");
    const int signal_fd = open_shutdown_signalfd();  // before any thread starts
    for (const std::string& problem :
         check_capacity(options.server.max_connections, options.max_threads)) {
      log_error("limit_warning", {{"problem", problem}});
    }
    UniqueFd listener = open_listener(options.server.listen, options.server.backlog);
    StripedMetrics metrics(Model::threads);
    const MetricsEndpoint metrics_endpoint(
        options.server.metrics_listen,
        {metrics.collectable(), make_proc_stats_collectable(Model::threads, this_process)});
    log_event("start", {{"listen", options.server.listen.to_string()},
                        {"metrics", options.server.metrics_listen.to_string()},
                        {"stack_size", options.stack_size},
                        {"max_threads", options.max_threads},
                        {"fault_injection", options.server.protocol.fault_injection}});
    ThreadPerConnectionServer server(options, metrics);
    return server.run(std::move(listener), signal_fd);
  });
}
