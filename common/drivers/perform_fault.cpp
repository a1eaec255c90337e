#include "common/drivers/perform_fault.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>

namespace echolab {
namespace {

// Sleeps to an absolute deadline so that signals (a graceful-shutdown SIGTERM among them)
// cannot cut the "slow database call" short.
void sleep_until_done(std::chrono::microseconds duration) {
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  const auto total_ns = deadline.tv_nsec + duration.count() * 1000;
  deadline.tv_sec += static_cast<time_t>(total_ns / 1'000'000'000);
  deadline.tv_nsec = static_cast<long>(total_ns % 1'000'000'000);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr) == EINTR) {
  }
}

void spin_for(std::chrono::microseconds duration) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < until) {
  }
}

[[noreturn]] void crash_with_sigsegv() {
  // A real invalid access, not raise(): the kernel delivers SIGSEGV exactly as it would for
  // a bug in a handler. The default action is restored first in case a sanitizer installed
  // its own handler.
  static_cast<void>(std::signal(SIGSEGV, SIG_DFL));
  volatile int* invalid = nullptr;
  *invalid = 1;  // NOLINT(clang-analyzer-core.NullDereference): the point of /crash
  std::abort();
}

}  // namespace

void perform(const FaultAction& action) noexcept {
  switch (action.kind) {
    case FaultAction::Kind::crash:
      crash_with_sigsegv();
    case FaultAction::Kind::sleep:
      sleep_until_done(action.duration);
      return;
    case FaultAction::Kind::burn:
      spin_for(action.duration);
      return;
  }
}

}  // namespace echolab
