// Fault routes: what a request may ask the worker that serves it to suffer. The Session
// only recognises the request (here, with no system call); the driver carries the action out
// (common/drivers/perform_fault.hpp), so a crash or a blocking sleep hits exactly the process
// or thread of that concurrency model.
#pragma once

#include <chrono>
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

}  // namespace echolab
