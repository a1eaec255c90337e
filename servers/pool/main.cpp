// echolab-pool: a thread pool running one asio::io_context, asynchronous I/O.
#include <CLI/CLI.hpp>

#include "common/metrics/striped_metrics.hpp"
#include "common/server/capacity.hpp"
#include "common/server/listener.hpp"
#include "common/server/log.hpp"
#include "common/server/server_main.hpp"
#include "common/server/shutdown_signals.hpp"
#include "servers/pool/pool_server.hpp"

int main(int argc, char** argv) {
  using namespace echolab;
  return run_server_main("echolab-pool", [argc, argv] {
    CLI::App app{"echolab-pool: the thread-pool echo server on standalone Asio", "echolab-pool"};
    PoolOptions options;
    add_server_options(app, options.server);
    app.add_option("--threads", options.threads, "Threads running the io_context (0 = one per CPU)")
        ->check(CLI::Range(std::size_t{0}, std::size_t{4096}))
        ->capture_default_str();
    app.add_flag("--io-context-per-thread", options.context_per_thread,
                 "One io_context per thread (Asio's server2 pattern) instead of one shared");
    if (const int exit_code = parse_command_line(app, argc, argv); exit_code >= 0) {
      return exit_code;
    }
    set_log_model("pool");
    const int signal_fd = open_shutdown_signalfd();  // before any thread starts
    for (const std::string& problem : check_capacity(options.server.max_connections, 0)) {
      log_error("limit_warning", {{"problem", problem}});
    }
    asio::io_context io;
    UniqueFd listener = open_listener(options.server.listen, options.server.backlog);
    StripedMetrics metrics(Model::pool);
    PoolServer server(io, options, metrics, listener.release());  // the acceptor owns it
    const MetricsEndpoint metrics_endpoint(
        options.server.metrics_listen,
        {metrics.collectable(), make_proc_stats_collectable(Model::pool, this_process)});
    return server.run(signal_fd);
  });
}
