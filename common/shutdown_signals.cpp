#include "common/shutdown_signals.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <system_error>

#include "common/log.hpp"

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

}  // namespace echolab
