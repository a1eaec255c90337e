#include "common/duration.hpp"

#include <charconv>
#include <stdexcept>
#include <string>

namespace echolab {

std::chrono::microseconds parse_duration(std::string_view text) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  double micros_per_unit = 0;
  if (unit.empty() || unit == "s") {
    micros_per_unit = 1e6;
  } else if (unit == "ms") {
    micros_per_unit = 1e3;
  } else if (unit == "us") {
    micros_per_unit = 1;
  } else if (unit == "m") {
    micros_per_unit = 60e6;
  }
  if (error != std::errc{} || micros_per_unit == 0 || value < 0) {
    throw std::invalid_argument("'" + std::string(text) +
                                "' is not a duration (examples: 30s, 500ms, 2m, 250us)");
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(value * micros_per_unit));
}

timespec to_timespec(std::chrono::milliseconds duration) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(duration);
  return {static_cast<time_t>(seconds.count()),
          static_cast<long>(std::chrono::nanoseconds(duration - seconds).count())};
}

}  // namespace echolab
