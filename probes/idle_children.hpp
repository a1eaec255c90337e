// Forked children that each write a little fresh memory of their own and then block on a pipe
// read, costing no CPU: the shape of a prefork server's idle workers. They inherit, and so
// share copy-on-write, every page their parent had when they were forked.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "probes/child_process.hpp"
#include "probes/pipe.hpp"

namespace echolab::probe {

class IdleChildren {
 public:
  // Returns once every child has written its memory and run `before_ready` (when given);
  // throws ProbeError if one dies first or they are not all ready within 30 s. Whatever path
  // the owner leaves by, ChildProcess kills and reaps the children.
  IdleChildren(int count, std::size_t touch_bytes,
               const std::function<void()>& before_ready = nullptr);

  const std::vector<ChildProcess>& children() const { return children_; }

  // Closing the pipe lets the children exit; they are then waited for.
  void release_and_reap();

 private:
  Pipe release_;
  std::vector<ChildProcess> children_;
};

}  // namespace echolab::probe
