#include "loadgen/start_time.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>
#include <regex>
#include <stdexcept>

namespace echolab::load {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;

// The clock counts nanoseconds in 64 bits, up to the year 2262; a moment past this (the year
// 2096) is refused before it is converted, since it could only be far more than an hour ahead.
constexpr long double kLatestConvertibleSeconds = 4e9L;

[[noreturn]] void throw_far_ahead(const std::string& text) {
  throw std::invalid_argument("'" + text + "' is more than an hour ahead");
}

std::optional<WallClock::time_point> from_epoch_seconds(const std::string& text) {
  static const std::regex epoch_seconds(R"(\d{1,12}(\.\d{1,9})?)");
  if (!std::regex_match(text, epoch_seconds)) {
    return std::nullopt;
  }
  const long double seconds = std::stold(text);
  if (seconds > kLatestConvertibleSeconds) {
    throw_far_ahead(text);
  }
  return WallClock::time_point(
      duration_cast<WallClock::duration>(std::chrono::nanoseconds(std::llroundl(seconds * 1e9L))));
}

std::optional<WallClock::time_point> from_iso8601(const std::string& text) {
  static const std::regex iso8601(
      R"((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z)");
  std::smatch parts;
  if (!std::regex_match(text, parts, iso8601)) {
    return std::nullopt;
  }
  std::tm fields{};
  fields.tm_year = std::stoi(parts[1]) - 1900;
  fields.tm_mon = std::stoi(parts[2]) - 1;
  fields.tm_mday = std::stoi(parts[3]);
  fields.tm_hour = std::stoi(parts[4]);
  fields.tm_min = std::stoi(parts[5]);
  fields.tm_sec = std::stoi(parts[6]);
  if (fields.tm_mon > 11 || fields.tm_mday < 1 || fields.tm_mday > 31 || fields.tm_hour > 23 ||
      fields.tm_min > 59 || fields.tm_sec > 60) {
    return std::nullopt;
  }
  const std::time_t whole = timegm(&fields);
  if (whole > static_cast<std::time_t>(kLatestConvertibleSeconds)) {
    throw_far_ahead(text);
  }
  const long double fraction = parts[7].matched ? std::stold("0" + parts[7].str()) : 0.0L;
  return WallClock::from_time_t(whole) +
         duration_cast<WallClock::duration>(
             std::chrono::nanoseconds(std::llroundl(fraction * 1e9L)));
}

}  // namespace

WallClock::time_point parse_start_at(std::string_view text, WallClock::time_point now) {
  const std::string owned(text);
  auto start = from_epoch_seconds(owned);
  if (!start) {
    start = from_iso8601(owned);
  }
  if (!start) {
    throw std::invalid_argument("'" + owned +
                                "' is neither Unix seconds (1764821400.5) nor ISO 8601 UTC "
                                "(2026-12-04T04:10:00Z)");
  }
  if (*start > now + kLatestStartAhead) {
    throw std::invalid_argument(iso8601_utc(*start) + " is more than an hour ahead (now " +
                                iso8601_utc(now) + ")");
  }
  if (*start < now - kStartLatenessAllowed) {
    throw std::invalid_argument(iso8601_utc(*start) + " has passed (now " + iso8601_utc(now) + ")");
  }
  return *start;
}

double unix_seconds(WallClock::time_point time) {
  const auto micros = duration_cast<microseconds>(time.time_since_epoch()).count();
  return static_cast<double>(micros) / 1e6;
}

std::string iso8601_utc(WallClock::time_point time) {
  const auto micros = duration_cast<microseconds>(time.time_since_epoch()).count();
  const std::time_t whole = static_cast<std::time_t>(micros / 1'000'000 - (micros % 1'000'000 < 0));
  const auto fraction = ((micros % 1'000'000) + 1'000'000) % 1'000'000;
  std::tm fields{};
  gmtime_r(&whole, &fields);
  std::array<char, 40> text{};
  const int length =
      std::snprintf(text.data(), text.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                    fields.tm_year + 1900, fields.tm_mon + 1, fields.tm_mday, fields.tm_hour,
                    fields.tm_min, fields.tm_sec, static_cast<long long>(fraction));
  return {text.data(), static_cast<std::size_t>(length > 0 ? length : 0)};
}

}  // namespace echolab::load
