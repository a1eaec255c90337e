// echolab-floor: the least an HTTP/1.1 keep-alive responder can do per request on this machine,
// the floor every server's CPU per request is stated against (docs/floor.md). A measuring
// instrument, not a server: no parsing, no metrics, no timeouts, no defence against hostile
// clients; it listens on loopback unless told otherwise.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <exception>
#include <map>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/floor/event_loops.hpp"
#include "common/posix/die_with_parent.hpp"
#include "common/posix/unique_fd.hpp"
#include "common/server/listener.hpp"
#include "common/server/log.hpp"
#include "common/server/server_main.hpp"
#include "common/server/server_options.hpp"

namespace {

using echolab::UniqueFd;

enum class Backend { epoll, io_uring };

struct FloorOptions {
  echolab::Endpoint listen{"127.0.0.1", 8085};
  unsigned workers = std::max(std::thread::hardware_concurrency(), 1U);
  Backend backend = Backend::epoll;
};

// The same listen() backlog as the servers' default, so connection storms queue alike.
constexpr int kBacklog = 4096;

void add_floor_options(CLI::App& app, FloorOptions& options) {
  echolab::add_endpoint_option(app, "--listen", options.listen, "Address and port to answer on");
  app.add_option("--workers", options.workers, "Worker processes, each one event loop")
      ->check(CLI::Range(1U, 1024U))
      ->capture_default_str();
  app.add_option("--backend", options.backend, "The event loop: epoll or io_uring")
      ->transform(CLI::CheckedTransformer(std::map<std::string, Backend>{
          {"epoll", Backend::epoll}, {"io_uring", Backend::io_uring}}))
      ->default_str("epoll");
}

// One listening socket per worker, all bound to one port with SO_REUSEPORT, as hybrid's
// workers are: the kernel hands each connection to one worker, so no worker wakes for a
// connection another takes, and the floor pays no accept contention the model beside it
// does not. Opened before the fork, so port 0 is resolved once, by the first.
std::vector<UniqueFd> open_listeners(echolab::Endpoint endpoint, unsigned count) {
  std::vector<UniqueFd> listeners;
  for (unsigned i = 0; i < count; ++i) {
    listeners.push_back(
        echolab::open_listener(endpoint, kBacklog, echolab::ListenerSharing::reuse_port));
    fcntl(listeners.back().get(), F_SETFL, O_NONBLOCK);
    endpoint.port = echolab::local_port(listeners.front().get());
  }
  return listeners;
}

[[noreturn]] void run_worker(const FloorOptions& options, int listener, pid_t master) {
  // The master kills its workers; SIGKILL from the kernel covers a master that was killed.
  if (!echolab::die_with_parent(SIGKILL, master)) {
    _exit(1);
  }
  try {
    if (options.backend == Backend::io_uring) {
      echolab::floor::run_io_uring_loop(listener);
    }
    echolab::floor::run_epoll_loop(listener);
  } catch (const std::exception& error) {
    echolab::log_error("worker_failed", {{"error", error.what()}});
    _exit(1);
  }
}

std::vector<pid_t> fork_workers(const FloorOptions& options, std::vector<UniqueFd>& listeners,
                                const sigset_t& original_mask) {
  const pid_t master = getpid();
  std::vector<pid_t> workers;
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const pid_t pid = fork();
    if (pid < 0) {
      throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid == 0) {
      sigprocmask(SIG_SETMASK, &original_mask, nullptr);  // SIGTERM kills a worker outright
      for (std::size_t other = 0; other < listeners.size(); ++other) {
        if (other != i) {
          listeners[other].reset();
        }
      }
      run_worker(options, listeners[i].get(), master);
    }
    workers.push_back(pid);
  }
  return workers;
}

// Waits for SIGTERM or SIGINT (exit 0) or a worker's death (exit 1), then kills and reaps
// every worker.
int supervise(const sigset_t& waited, const std::vector<pid_t>& workers) {
  int signal = 0;
  sigwait(&waited, &signal);
  // A SIGTERM sent to the whole process group also kills the workers: their SIGCHLD may come
  // first, and is then no failure.
  sigset_t pending{};
  sigpending(&pending);
  const bool worker_died = signal == SIGCHLD && sigismember(&pending, SIGTERM) == 0 &&
                           sigismember(&pending, SIGINT) == 0;
  if (worker_died) {
    echolab::log_error("worker_exited");
  }
  for (const pid_t worker : workers) {
    kill(worker, SIGKILL);
  }
  for (const pid_t worker : workers) {
    waitpid(worker, nullptr, 0);
  }
  echolab::log_event("stop");
  return worker_died ? 1 : 0;
}

int run(const FloorOptions& options) {
  sigset_t waited{};
  sigemptyset(&waited);
  for (const int signal : {SIGTERM, SIGINT, SIGCHLD}) {
    sigaddset(&waited, signal);
  }
  sigset_t original_mask{};
  sigprocmask(SIG_BLOCK, &waited, &original_mask);
  auto listeners = open_listeners(options.listen, options.workers);
  echolab::Endpoint bound = options.listen;
  bound.port = echolab::local_port(listeners.front().get());
  const auto workers = fork_workers(options, listeners, original_mask);
  listeners.clear();  // each worker holds its own
  echolab::log_event("start",
                     {{"listen", bound.to_string()},
                      {"workers", options.workers},
                      {"backend", options.backend == Backend::epoll ? "epoll" : "io_uring"}});
  return supervise(waited, workers);
}

}  // namespace

int main(int argc, char** argv) {
  return echolab::run_server_main("echolab-floor", [argc, argv] {
    echolab::set_log_model("floor");
    CLI::App app{
        "echolab-floor: a minimal HTTP/1.1 keep-alive responder, the floor of this machine",
        "echolab-floor"};
    FloorOptions options;
    add_floor_options(app, options);
    if (const int status = echolab::parse_command_line(app, argc, argv); status >= 0) {
      return status;
    }
    return run(options);
  });
}
