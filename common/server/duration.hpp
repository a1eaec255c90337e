// Durations on the command line: "30s", "500ms", "250us", "2m", "1h", "1.5s"; a bare number
// is seconds. Every server flag and echolab-load read them the same way.
#pragma once

#include <chrono>
#include <ctime>
#include <string_view>

namespace echolab {

// Throws std::invalid_argument quoting the text when it is not a duration, has an unknown
// unit, or is negative or beyond 1e18 ns.
std::chrono::nanoseconds parse_duration(std::string_view text);

// For the system calls that take a timespec (ppoll, sigtimedwait).
timespec to_timespec(std::chrono::milliseconds duration);

}  // namespace echolab
