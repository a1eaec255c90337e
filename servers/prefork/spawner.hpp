// The spawner: a fresh exec of this binary that forks the children on the master's behalf.
//
// Every anonymous page a process has when it forks is reachable from each child's mappings
// through the anon_vma of the parent, and the kernel's reverse-map walk of such a page
// (memory reclaim, DAMON's access sampling) visits every one of those mappings: with 10,000
// children forked from the master, each page of the master's heap, stack and data cost 10,000
// steps per check, and kdamond spent a third of the machine on it. The spawner is started by
// fork + exec, so it shares no anonymous memory with the master, touches little before it
// forks, and never touches it afterwards. Its children are made children of the master
// (clone with CLONE_PARENT), so the master reaps them, sees their crashes and keeps their
// parent-death signal, exactly as if it had forked them itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <vector>

#include "common/posix/unique_fd.hpp"
#include "servers/prefork/child.hpp"

namespace echolab::prefork {

// argv[1] of the spawner's exec; argv[2] is the descriptor of its end of the control socket.
inline constexpr const char* kSpawnerFlag = "--internal-spawner";

// Master side: starts the spawner and asks it for children.
class Spawner {
 public:
  Spawner() = default;
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Fork + exec of /proc/self/exe; returns once the spawner has the setup and is ready,
  // false (logged) when it could not start. `scoreboard_fd` and the setup's listener are
  // passed across exec.
  bool launch(const ChildSetup& setup, int scoreboard_fd, std::size_t slot_count);
  // One child per slot, each already prepared in the scoreboard; one pid per slot in the same
  // order, or -errno for a slot whose fork failed. Empty when the spawner is gone.
  std::vector<pid_t> spawn(std::span<const std::uint32_t> slots);
  // Closes the control socket: the spawner exits, and the master reaps it as any child.
  void stop();
  [[nodiscard]] pid_t pid() const { return pid_; }
  // The master's end of the control socket (-1 for none): no other process may hold it, or
  // the spawner would not see the master close it.
  [[nodiscard]] int control_fd() const { return control_.get(); }
  // The master reaped it.
  void exited();

 private:
  pid_t pid_ = -1;
  UniqueFd control_;
};

// Spawner side, from main() when argv[1] is kSpawnerFlag: serves the master's requests until
// it closes the control socket; returns the exit status.
int run_spawner(int control_fd);

}  // namespace echolab::prefork
