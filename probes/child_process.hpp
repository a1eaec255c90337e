// A forked child owned by the probe that forked it: unless it was waited for, it is killed
// and reaped when its owner goes out of scope, so no probe leaves a child behind, whatever
// path it leaves by.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/posix/die_with_parent.hpp"
#include "probes/probe_error.hpp"

namespace echolab::probe {

class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) noexcept : pid_(pid) {}
  ~ChildProcess() { kill_and_reap(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;

  pid_t pid() const noexcept { return pid_; }

  // Waits for the child to exit and returns its wait status; afterwards nothing is owned.
  int wait_for_exit();

 private:
  void kill_and_reap() noexcept;

  pid_t pid_ = -1;
};

// Forks a child that runs `body` (returning its exit code) and then _exits, without running
// the parent's destructors or atexit handlers. The child is killed if the probe dies first,
// even by SIGKILL (PR_SET_PDEATHSIG), so it cannot outlive the probe.
template <typename Body>
ChildProcess fork_child(Body&& body) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_system_error("fork");
  if (pid == 0) {
    if (!die_with_parent(SIGKILL, parent)) ::_exit(1);
    int exit_code = 1;
    try {
      exit_code = body();
    } catch (...) {
      exit_code = 1;
    }
    ::_exit(exit_code);
  }
  return ChildProcess(pid);
}

}  // namespace echolab::probe
