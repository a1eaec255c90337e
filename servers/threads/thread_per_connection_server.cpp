#include "servers/threads/thread_per_connection_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>

#include "common/server/log.hpp"
#include "common/server/server_main.hpp"
#include "common/server/shutdown_signals.hpp"

namespace echolab {

namespace {

// After --shutdown-timeout the sockets still open are cut; a thread that is not back from its
// handler this long after that is stuck in it (a /sleep) and is left behind.
constexpr std::chrono::milliseconds kGraceAfterCut{250};
// After pthread_create() failed: the longest pause before trying again with no thread exited.
constexpr std::chrono::milliseconds kStartRetry{100};

}  // namespace

struct ThreadPerConnectionServer::ThreadStart {
  ThreadPerConnectionServer* server;
  int client_fd;  // owned by open_sockets_, which closes it (release_socket)
  const BlockingConnectionSettings* settings;
  std::chrono::steady_clock::time_point created;
};

ThreadPerConnectionServer::ThreadPerConnectionServer(const ThreadsOptions& options,
                                                     StripedMetrics& metrics)
    : options_(options), metrics_(metrics), accept_policy_(options.server.max_connections) {
  connection_settings_.protocol = options.server.protocol;
  connection_settings_.timeouts = options.server.timeouts;
  connection_settings_.stop_fd = stop_.fd();
  queued_settings_ = settings_for_queued(connection_settings_);
}

int ThreadPerConnectionServer::run(UniqueFd listener, int signal_fd) {
  const int listen_fd = listener.get();
  for (;;) {
    if (!wait_for_free_thread(signal_fd)) {
      break;
    }
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      continue;  // EINTR
    }
    if (fds[1].revents != 0 && shutdown_requested(signal_fd)) {
      break;
    }
    if (fds[0].revents == 0) {
      continue;  // a SIGHUP: the listener is blocking, accept() would wait for a connection
    }
    UniqueFd client(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (!client) {
      if (accept_policy_.failed(errno) != AcceptFailure::retry) {
        std::this_thread::sleep_for(kAcceptPause);  // let connections finish, don't spin
      }
      continue;
    }
    if (!accept_policy_.admit(open_connections())) {
      metrics_.connection_rejected();
      continue;  // `client` closes it
    }
    start_thread(std::move(client), connection_settings_);
  }
  // The listener is the acceptor's alone: non-blocking now, to take what is still queued.
  fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  take_queued_connections(
      listen_fd, [this](UniqueFd client) { start_thread(std::move(client), queued_settings_); });
  listener.reset();
  drain();
  return 0;
}

std::size_t ThreadPerConnectionServer::open_connections() {
  const std::lock_guard lock(mutex_);
  return active_threads_;
}

// --max-threads: while every thread is busy, stop accepting, so new connections wait in the
// kernel's listen backlog. Returns false when a shutdown signal arrives meanwhile. Logged once
// per episode, as AcceptPolicy logs its limits: under saturation each freed thread takes one
// queued connection and the cap is reached again at once, which is still the same episode; it
// ends when the acceptor finds a thread free without waiting.
bool ThreadPerConnectionServer::wait_for_free_thread(int signal_fd) {
  std::unique_lock lock(mutex_);
  if (active_threads_ < options_.max_threads) {
    at_thread_cap_ = false;
    return true;
  }
  if (!std::exchange(at_thread_cap_, true)) {
    log_event("limit_reached", {{"limit", "max-threads"}, {"value", options_.max_threads}});
  }
  while (active_threads_ >= options_.max_threads) {
    thread_exited_.wait_for(lock, std::chrono::milliseconds(100));
    pollfd signal{signal_fd, POLLIN, 0};
    if (poll(&signal, 1, 0) > 0 && shutdown_requested(signal_fd)) {
      return false;
    }
  }
  return true;
}

void ThreadPerConnectionServer::start_thread(UniqueFd client,
                                             const BlockingConnectionSettings& settings) {
  auto start = std::make_unique<ThreadStart>(
      ThreadStart{this, client.get(), &settings, std::chrono::steady_clock::now()});
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  if (options_.stack_size != 0) {
    pthread_attr_setstacksize(&attributes, options_.stack_size);
  }
  {
    const std::lock_guard lock(mutex_);
    ++active_threads_;
    open_sockets_.emplace(start->client_fd, std::move(client));
  }
  pthread_t thread{};
  const int error = pthread_create(&thread, &attributes, &thread_main, start.get());
  pthread_attr_destroy(&attributes);
  if (error != 0) {
    metrics_.connection_rejected();
    back_off_after_failed_start(start->client_fd, error);
    return;
  }
  thread_start_failing_ = false;
  static_cast<void>(start.release());  // now owned by the thread, which deletes it
}

// No thread for this connection (out of memory for its stack, or of tasks): it is closed and
// counted as rejected, like one over --max-connections. The next connection would fail the
// same way until a thread exits, so accepting stops until one does, or for kStartRetry at
// most; the connections meanwhile wait in the listen backlog. One line per episode, written
// before the connection closes: a client that sees the close can then find the line.
void ThreadPerConnectionServer::back_off_after_failed_start(int client_fd, int error) {
  std::unique_lock lock(mutex_);
  --active_threads_;
  if (!std::exchange(thread_start_failing_, true)) {
    log_error("limit_reached", {{"limit", "threads"},
                                {"error", std::strerror(error)},
                                {"threads", active_threads_},
                                {"note", "connections are rejected until a thread exits"}});
  }
  open_sockets_.erase(client_fd);  // closes it
  const std::size_t running = active_threads_;
  thread_exited_.wait_for(lock, kStartRetry, [this, running] { return active_threads_ < running; });
}

void* ThreadPerConnectionServer::thread_main(void* start) {
  const std::unique_ptr<ThreadStart> owned(static_cast<ThreadStart*>(start));
  owned->server->serve(*owned);
  return nullptr;
}

void ThreadPerConnectionServer::serve(ThreadStart& start) {
  // Counted here rather than by the acceptor: a connection no thread could be started for
  // is rejected, not accepted.
  metrics_.connection_accepted();
  // The article's claim, measured: from pthread_create() until the new thread runs.
  metrics_.worker_spawned(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start.created).count());
  metrics_.workers_changed(0, +1);
  serve_blocking_connection(start.client_fd, *start.settings, metrics_);
  metrics_.connection_closed();
  metrics_.workers_changed(0, -1);
  release_socket(start.client_fd);
}

// A closed descriptor number can be reused at once (by a metrics scrape, say), and the
// shutdown must never cut a socket by a number that may already name another. So the
// connection's socket stays in open_sockets_, where the shutdown finds it, until its thread is
// done with it: taken out under mutex_, then closed outside it, so that no thread's close
// waits on another's. (A duplicate per socket would do the same at two descriptors per
// connection, and ulimit -n is what 10,000 connections run out of first.)
void ThreadPerConnectionServer::release_socket(int client_fd) {
  decltype(open_sockets_)::node_type socket;
  {
    const std::lock_guard lock(mutex_);
    socket = open_sockets_.extract(client_fd);
    --active_threads_;
    thread_exited_.notify_all();
  }
}  // `socket` closes here, outside the lock

// Idle connections close at once on the stop broadcast; requests in flight finish, up to
// --shutdown-timeout. Then every socket still open is shut down, so a thread blocked in
// recv() or send() returns at once and exits. A thread stuck in a handler (a /sleep) cannot
// be stopped, and it still uses this object, the metrics and the stop pipe: returning from
// main would free them under it. So the process leaves without unwinding anything.
void ThreadPerConnectionServer::drain() {
  std::unique_lock lock(mutex_);
  log_event("shutdown", {{"phase", "draining"}, {"threads", active_threads_}});
  stop_.broadcast();
  const auto all_exited = [this] { return active_threads_ == 0; };
  if (!thread_exited_.wait_for(lock, options_.server.shutdown_timeout, all_exited)) {
    log_event("shutdown", {{"phase", "timeout"},
                           {"threads_left", active_threads_},
                           {"sockets_cut", open_sockets_.size()}});
    for (const auto& [client_fd, socket] : open_sockets_) {
      ::shutdown(client_fd, SHUT_RDWR);
    }
    if (!thread_exited_.wait_for(lock, kGraceAfterCut, all_exited)) {
      log_event("shutdown", {{"phase", "done"},
                             {"threads_left", active_threads_},
                             {"drained", false},
                             {"note", "threads stuck in a handler: exiting without unwinding"}});
      exit_without_unwinding(0);
    }
  }
  log_event("shutdown", {{"phase", "done"}, {"threads_left", active_threads_}, {"drained", true}});
}

}  // namespace echolab
