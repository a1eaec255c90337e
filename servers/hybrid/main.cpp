// echolab-hybrid: nginx's model. A master process that never reads a client byte forks
// --workers processes, each a single-threaded Asio event loop serving many connections with
// the pool's asynchronous driver; see docs/hybrid.md.
#include <thread>

#include <CLI/CLI.hpp>

#include "common/server/capacity.hpp"
#include "common/server/log.hpp"
#include "common/server/server_main.hpp"
#include "servers/hybrid/hybrid_options.hpp"
#include "servers/hybrid/master.hpp"

int main(int argc, char** argv) {
  using namespace echolab;
  return run_server_main("echolab-hybrid", [argc, argv] {
    set_log_model("hybrid");
    CLI::App app{"echolab-hybrid: worker processes each running one event loop (nginx)",
                 "echolab-hybrid"};
    hybrid::HybridOptions options;
    hybrid::add_hybrid_options(app, options);
    if (const int exit_code = parse_command_line(app, argc, argv); exit_code >= 0) {
      return exit_code;
    }
    for (const std::string& problem : check_capacity(options.server.max_connections, 0)) {
      log_error("limit_warning", {{"problem", problem}});
    }
    const std::size_t workers =
        hybrid::resolved_worker_count(options.workers, std::thread::hardware_concurrency());
    hybrid::Master master(options, workers);
    return master.run();
  });
}
