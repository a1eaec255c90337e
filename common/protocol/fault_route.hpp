// Fault routes: what a request may ask the worker that serves it to suffer. The Session
// only recognises the request (here, with no system call); the driver carries the action out
// (common/drivers/perform_fault.hpp), so a crash or a blocking sleep hits exactly the process
// or thread of that concurrency model.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

namespace echolab {

struct FaultAction {
  enum class Kind { crash, sleep, burn };
  Kind kind = Kind::sleep;
  std::chrono::microseconds duration{0};  // sleep and burn only
  friend bool operator==(const FaultAction&, const FaultAction&) = default;
};

// Upper bounds keep a stray request from parking a worker for long.
inline constexpr std::chrono::milliseconds kMaxSleep{60'000};
inline constexpr std::chrono::microseconds kMaxBurn{10'000'000};

enum class FaultRoute { not_a_fault, valid, invalid };

struct ParsedFault {
  FaultRoute route = FaultRoute::not_a_fault;
  FaultAction action;
};

// Recognises "/crash", "/sleep?ms=N" and "/burn?us=N" (HTTP targets and raw control lines
// share this one grammar). `invalid` means a fault path with a missing or out-of-range N.
ParsedFault parse_fault_route(std::string_view target);

// The memory routes: what a compromised handler can do to the memory of the process that runs
// it. "/leak?prefix=P" answers every token found in that process's readable memory that starts
// with P (what other clients sent, still in live or freed buffers); "/corrupt" overwrites the
// greeting that every connection of the process answers. The Session answers both itself:
// their effect is the answer.
enum class MemoryRoute { not_a_memory_route, leak, corrupt, invalid };

// A prefix short enough to be typed by mistake would match too much; tokens are alphanumeric.
inline constexpr std::size_t kMinTokenPrefix = 8;
inline constexpr std::size_t kMaxTokenPrefix = 64;

struct ParsedMemoryRoute {
  MemoryRoute route = MemoryRoute::not_a_memory_route;
  std::string_view token_prefix;  // leak only: a view into the target
};

// `invalid` means /leak without a prefix of kMinTokenPrefix..kMaxTokenPrefix letters and digits.
ParsedMemoryRoute parse_memory_route(std::string_view target);

}  // namespace echolab
