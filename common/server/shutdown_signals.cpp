#include "common/server/shutdown_signals.hpp"

#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <csignal>
#include <system_error>
#include <utility>

#include "common/server/log.hpp"

namespace echolab {

int open_shutdown_signalfd() {
  static_cast<void>(std::signal(SIGPIPE, SIG_IGN));
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    throw std::system_error(errno, std::generic_category(), "blocking SIGTERM, SIGINT, SIGHUP");
  }
  const int fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "signalfd");
  }
  return fd;
}

bool shutdown_requested(int signal_fd) {
  signalfd_siginfo info{};
  if (read(signal_fd, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) {
    return false;
  }
  if (info.ssi_signo == SIGHUP) {
    log_nothing_to_reload();
    return false;
  }
  return true;
}

void log_nothing_to_reload() {
  log_event("reload", {{"signal", "SIGHUP"},
                       {"result", "nothing to reload"},
                       {"note", "no configuration file: still serving"}});
}

std::size_t take_queued_connections(int listen_fd, const std::function<void(UniqueFd)>& serve) {
  std::size_t served = 0;
  std::size_t closed = 0;
  for (;;) {
    UniqueFd connection(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (!connection) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      break;  // EAGAIN: the queue is empty (or a limit: what is left gets what it gets)
    }
    int waiting = 0;
    if (ioctl(connection.get(), FIONREAD, &waiting) == 0 && waiting > 0) {
      serve(std::move(connection));
      ++served;
    } else {
      ++closed;  // by `connection`, here
    }
  }
  if (served + closed > 0) {
    log_event("shutdown", {{"phase", "queue"}, {"served", served}, {"closed", closed}});
  }
  return served;
}

}  // namespace echolab
