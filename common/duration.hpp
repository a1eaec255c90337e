// Durations on the command line: "30s", "500ms", "2m", "250us"; a bare number is seconds.
#pragma once

#include <chrono>
#include <ctime>
#include <string_view>

namespace echolab {

// Throws std::invalid_argument with the offending text when it is not a duration.
std::chrono::microseconds parse_duration(std::string_view text);

// For the system calls that take a timespec (ppoll, sigtimedwait).
timespec to_timespec(std::chrono::milliseconds duration);

}  // namespace echolab
