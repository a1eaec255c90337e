#include "common/fault.hpp"

#include <charconv>
#include <csignal>
#include <ctime>
#include <thread>

namespace echolab {
namespace {

// Reads the decimal value of `key` from a query string "a=1&b=2".
std::optional<long> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > key.size() && pair.starts_with(key) && pair[key.size()] == '=') {
      const std::string_view digits = pair.substr(key.size() + 1);
      long value = 0;
      const auto [end, error] =
          std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (error != std::errc{} || end != digits.data() + digits.size()) {
        return std::nullopt;
      }
      return value;
    }
    if (amp == std::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

ParsedFault timed_fault(FaultAction::Kind kind, std::optional<long> value, long max,
                        long to_microseconds) {
  if (!value || *value < 0 || *value > max) {
    return {FaultRoute::invalid, {}};
  }
  return {FaultRoute::valid, {kind, std::chrono::microseconds(*value * to_microseconds)}};
}

}  // namespace

ParsedFault parse_fault_route(std::string_view target) {
  const auto question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
  if (path == "/crash") {
    return {FaultRoute::valid, {FaultAction::Kind::crash, {}}};
  }
  if (path == "/sleep") {
    return timed_fault(FaultAction::Kind::sleep, query_value(query, "ms"), kMaxSleep.count(), 1000);
  }
  if (path == "/burn") {
    return timed_fault(FaultAction::Kind::burn, query_value(query, "us"), kMaxBurn.count(), 1);
  }
  return {};
}

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

void perform(const FaultAction& action) {
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
