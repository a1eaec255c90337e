// Durations on the command line: "30s", "500ms", "2m", "250us"; a bare number is seconds.
#pragma once

#include <chrono>
#include <string_view>

namespace echolab {

// Throws std::invalid_argument with the offending text when it is not a duration.
std::chrono::microseconds parse_duration(std::string_view text);

}  // namespace echolab
