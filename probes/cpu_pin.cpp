#include "probes/cpu_pin.hpp"

#include <string>

#include "probes/probe_error.hpp"

namespace echolab::probe {
namespace {

int first_allowed_cpu(const cpu_set_t& allowed) {
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) return cpu;
  }
  throw ProbeError("this thread may run on no CPU");
}

}  // namespace

ScopedCpuPin::ScopedCpuPin(std::optional<int> cpu) {
  if (::sched_getaffinity(0, sizeof previous_, &previous_) != 0) {
    throw_system_error("sched_getaffinity");
  }
  cpu_ = cpu.value_or(first_allowed_cpu(previous_));
  if (cpu_ < 0 || cpu_ >= CPU_SETSIZE || !CPU_ISSET(cpu_, &previous_)) {
    throw ProbeError("CPU " + std::to_string(cpu_) + " is not one this process may run on");
  }
  cpu_set_t only{};
  CPU_ZERO(&only);
  CPU_SET(cpu_, &only);
  if (::sched_setaffinity(0, sizeof only, &only) != 0) {
    throw_system_error("sched_setaffinity to CPU " + std::to_string(cpu_));
  }
}

ScopedCpuPin::~ScopedCpuPin() { (void)::sched_setaffinity(0, sizeof previous_, &previous_); }

}  // namespace echolab::probe
