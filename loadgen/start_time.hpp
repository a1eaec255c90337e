// --start-at: the wall-clock moment at which every replica of a run starts, so that N
// processes on N machines measure the same window. Wall-clock (not steady) time, because it
// is the only clock the machines share (through NTP).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace echolab::load {

using WallClock = std::chrono::system_clock;

// How far ahead a start may be, and how late it may be noticed (it then starts at once).
inline constexpr std::chrono::hours kLatestStartAhead{1};
inline constexpr std::chrono::seconds kStartLatenessAllowed{5};

// Unix epoch seconds with an optional fraction ("1764821400.5"), or ISO 8601 in UTC
// ("2026-12-04T04:10:00Z", "2026-12-04T04:10:00.250Z"). Refuses a time more than
// kLatestStartAhead after `now` or more than kStartLatenessAllowed before it; throws
// std::invalid_argument saying why.
WallClock::time_point parse_start_at(std::string_view text, WallClock::time_point now);

// Unix epoch seconds, to the microsecond.
double unix_seconds(WallClock::time_point time);
// ISO 8601 in UTC to the microsecond: "2026-12-04T04:10:00.250000Z".
std::string iso8601_utc(WallClock::time_point time);

}  // namespace echolab::load
