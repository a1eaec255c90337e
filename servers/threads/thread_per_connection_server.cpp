#include "servers/threads/thread_per_connection_server.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/log.hpp"
#include "common/shutdown_signals.hpp"

namespace echolab {

struct ThreadPerConnectionServer::ThreadStart {
  ThreadPerConnectionServer* server;
  int client_fd;
  std::chrono::steady_clock::time_point created;
};

ThreadPerConnectionServer::ThreadPerConnectionServer(const ThreadsOptions& options,
                                                     StripedMetrics& metrics)
    : options_(options), metrics_(metrics) {
  connection_settings_.protocol = options.server.protocol;
  connection_settings_.timeouts = options.server.timeouts;
  connection_settings_.stop_fd = stop_.fd();
}

int ThreadPerConnectionServer::run(int listen_fd, int signal_fd) {
  bool logged_full = false;
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
    const int client_fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client_fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        log_error("limit_reached", {{"limit", "open files"}, {"error", std::strerror(errno)}});
        usleep(10'000);  // let connections finish instead of spinning on a full table
      }
      continue;
    }
    if (std::lock_guard lock(mutex_); active_threads_ >= options_.server.max_connections) {
      close(client_fd);
      metrics_.connection_rejected();
      if (!std::exchange(logged_full, true)) {
        log_event("limit_reached",
                  {{"limit", "max-connections"}, {"value", options_.server.max_connections}});
      }
      continue;
    }
    logged_full = false;
    start_thread(client_fd);
  }
  close(listen_fd);
  drain();
  return 0;
}

// --max-threads: while every thread is busy, stop accepting, so new connections wait in the
// kernel's listen backlog. Returns false when a shutdown signal arrives meanwhile.
bool ThreadPerConnectionServer::wait_for_free_thread(int signal_fd) {
  std::unique_lock lock(mutex_);
  if (active_threads_ < options_.max_threads) {
    return true;
  }
  log_event("limit_reached", {{"limit", "max-threads"}, {"value", options_.max_threads}});
  while (active_threads_ >= options_.max_threads) {
    thread_exited_.wait_for(lock, std::chrono::milliseconds(100));
    pollfd signal{signal_fd, POLLIN, 0};
    if (poll(&signal, 1, 0) > 0 && shutdown_requested(signal_fd)) {
      return false;
    }
  }
  return true;
}

void ThreadPerConnectionServer::start_thread(int client_fd) {
  metrics_.connection_accepted();
  auto start =
      std::make_unique<ThreadStart>(ThreadStart{this, client_fd, std::chrono::steady_clock::now()});
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  if (options_.stack_size != 0) {
    pthread_attr_setstacksize(&attributes, options_.stack_size);
  }
  {
    const std::lock_guard lock(mutex_);
    ++active_threads_;
  }
  pthread_t thread{};
  const int error = pthread_create(&thread, &attributes, &thread_main, start.get());
  pthread_attr_destroy(&attributes);
  if (error != 0) {
    log_error("limit_reached", {{"limit", "threads"}, {"error", std::strerror(error)}});
    close(client_fd);
    metrics_.connection_closed();
    const std::lock_guard lock(mutex_);
    --active_threads_;
    return;
  }
  static_cast<void>(start.release());  // now owned by the thread, which deletes it
}

void* ThreadPerConnectionServer::thread_main(void* start) {
  const std::unique_ptr<ThreadStart> owned(static_cast<ThreadStart*>(start));
  owned->server->serve(owned->client_fd, owned->created);
  return nullptr;
}

void ThreadPerConnectionServer::serve(int client_fd,
                                      std::chrono::steady_clock::time_point created) {
  // The article's claim, measured: from pthread_create() until the new thread runs.
  metrics_.worker_spawned(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - created).count());
  metrics_.workers_changed(0, +1);
  serve_blocking_connection(client_fd, connection_settings_, metrics_);
  metrics_.connection_closed();
  metrics_.workers_changed(0, -1);
  const std::lock_guard lock(mutex_);
  --active_threads_;
  thread_exited_.notify_all();
}

// Idle connections close at once on the stop broadcast; requests in flight finish, up to
// --shutdown-timeout.
void ThreadPerConnectionServer::drain() {
  std::unique_lock lock(mutex_);
  log_event("shutdown", {{"phase", "draining"}, {"threads", active_threads_}});
  stop_.broadcast();
  const bool drained = thread_exited_.wait_for(lock, options_.server.shutdown_timeout,
                                               [this] { return active_threads_ == 0; });
  log_event("shutdown",
            {{"phase", "done"}, {"threads_left", active_threads_}, {"drained", drained}});
}

}  // namespace echolab
