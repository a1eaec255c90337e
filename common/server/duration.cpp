#include "common/server/duration.hpp"

#include <charconv>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

namespace echolab {

std::chrono::nanoseconds parse_duration(std::string_view text) {
  static const std::map<std::string_view, double> unit_nanoseconds = {
      {"", 1e9}, {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}, {"ns", 1}, {"m", 60e9}, {"h", 3600e9}};
  double amount = 0;
  const auto [rest, error] = std::from_chars(text.data(), text.data() + text.size(), amount);
  if (error != std::errc() || text.empty()) {
    throw std::invalid_argument("'" + std::string(text) + "' is not a duration (e.g. 10s, 500ms)");
  }
  const std::string_view unit(rest, static_cast<std::size_t>(text.data() + text.size() - rest));
  const auto found = unit_nanoseconds.find(unit);
  if (found == unit_nanoseconds.end()) {
    throw std::invalid_argument("'" + std::string(text) +
                                "' has an unknown unit (use ns, us, ms, s, m or h)");
  }
  const double nanoseconds = amount * found->second;
  if (!std::isfinite(nanoseconds) || nanoseconds < 0 || nanoseconds > 1e18) {
    throw std::invalid_argument("'" + std::string(text) + "' is out of range");
  }
  return std::chrono::nanoseconds(std::llround(nanoseconds));
}

timespec to_timespec(std::chrono::milliseconds duration) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(duration);
  return {static_cast<time_t>(seconds.count()),
          static_cast<long>(std::chrono::nanoseconds(duration - seconds).count())};
}

}  // namespace echolab
