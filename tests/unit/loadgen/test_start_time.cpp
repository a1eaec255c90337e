#include "loadgen/start_time.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "loadgen/load_options.hpp"

namespace echolab::load {
namespace {

using namespace std::chrono_literals;

// 2026-12-04T04:10:00Z
constexpr std::int64_t kEpoch = 1'796'357'400;
const WallClock::time_point kNow = WallClock::time_point(std::chrono::seconds(kEpoch));

TEST(StartAt, ReadsUnixSecondsWithAFraction) {
  EXPECT_EQ(parse_start_at("1796357410.25", kNow), kNow + 10250ms);
  EXPECT_EQ(parse_start_at("1796357460", kNow), kNow + 60s);
}

TEST(StartAt, ReadsIso8601Utc) {
  EXPECT_EQ(parse_start_at("2026-12-04T04:10:30Z", kNow), kNow + 30s);
  EXPECT_EQ(parse_start_at("2026-12-04T04:11:00.5Z", kNow), kNow + 60500ms);
  EXPECT_EQ(iso8601_utc(kNow + 60500ms), "2026-12-04T04:11:00.500000Z");
  EXPECT_DOUBLE_EQ(unix_seconds(kNow + 250ms), 1796357400.25);
}

TEST(StartAt, AFewSecondsLateStillStarts) {
  EXPECT_EQ(parse_start_at("1796357396", kNow), kNow - 4s);
}

TEST(StartAt, RefusesTooFarAheadPassedOrUnreadable) {
  EXPECT_THROW(parse_start_at("1796361001", kNow), std::invalid_argument);  // 1 h and 1 s ahead
  EXPECT_NO_THROW(parse_start_at("1796361000", kNow));                      // exactly 1 h
  EXPECT_THROW(parse_start_at("1796357394", kNow), std::invalid_argument);  // 6 s ago
  for (const char* text : {"x", "", "-5", "1.2.3", "2026-12-04 04:10:00", "2026-12-04T04:10:00",
                           "2026-13-04T04:10:00Z", "2026-12-04T04:10:00+01:00", "1e9"}) {
    EXPECT_THROW(parse_start_at(text, kNow), std::invalid_argument) << text;
  }
}

TEST(StartAtOption, RefusesInOneLineNamingTheFlag) {
  for (const char* bad : {"1", "x", "2999-01-01T00:00:00Z", "999999999999"}) {
    const CommandLine result = parse_command_line({"--start-at", bad, "127.0.0.1:8082"});
    EXPECT_FALSE(result.options.has_value());
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_NE(result.message.find("--start-at"), std::string::npos) << result.message;
    EXPECT_EQ(result.message.find('\n'), std::string::npos) << result.message;
  }
}

TEST(StartAtOption, AcceptsAMomentSoon) {
  const auto soon =
      std::chrono::duration<double>((WallClock::now() + 30s).time_since_epoch()).count();
  const CommandLine result =
      parse_command_line({"--start-at", std::to_string(soon), "127.0.0.1:8082"});
  ASSERT_TRUE(result.options.has_value()) << result.message;
  ASSERT_TRUE(result.options->start_at.has_value());
  EXPECT_NEAR(unix_seconds(*result.options->start_at), soon, 1e-5);
}

}  // namespace
}  // namespace echolab::load
