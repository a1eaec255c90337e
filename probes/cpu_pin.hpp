// Pins the calling thread to one CPU for a scope. Threads and processes started while it is
// pinned inherit the pin, so two of them must take turns on that CPU: every hand-over is a
// context switch, with no second CPU to hide it.
#pragma once

#include <sched.h>

#include <optional>

namespace echolab::probe {

class ScopedCpuPin {
 public:
  // nullopt pins to the first CPU the thread may run on now.
  explicit ScopedCpuPin(std::optional<int> cpu);
  // Restores the affinity the thread had before.
  ~ScopedCpuPin();
  ScopedCpuPin(const ScopedCpuPin&) = delete;
  ScopedCpuPin& operator=(const ScopedCpuPin&) = delete;
  ScopedCpuPin(ScopedCpuPin&&) = delete;
  ScopedCpuPin& operator=(ScopedCpuPin&&) = delete;

  int cpu() const { return cpu_; }

 private:
  cpu_set_t previous_{};
  int cpu_ = -1;
};

}  // namespace echolab::probe
