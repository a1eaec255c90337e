#include "probes/child_process.hpp"

#include <sys/wait.h>

#include <cerrno>
#include <utility>

namespace echolab::probe {
namespace {

pid_t wait_retrying(pid_t pid, int& status) noexcept {
  for (;;) {
    const pid_t reaped = ::waitpid(pid, &status, 0);
    if (reaped >= 0 || errno != EINTR) return reaped;
  }
}

}  // namespace

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

int ChildProcess::wait_for_exit() {
  int status = 0;
  // Whether or not waitpid succeeds, the pid is no longer ours to kill: it may be reused.
  const pid_t pid = std::exchange(pid_, -1);
  if (wait_retrying(pid, status) < 0) throw_system_error("waitpid " + std::to_string(pid));
  return status;
}

void ChildProcess::kill_and_reap() noexcept {
  if (pid_ <= 0) return;
  (void)::kill(pid_, SIGKILL);
  int status = 0;
  (void)wait_retrying(pid_, status);
  pid_ = -1;
}

}  // namespace echolab::probe
