#include "loadgen/run_report.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace echolab::load {
namespace {

RunReport sample_report() {
  RunReport report;
  report.options.target = parse_target("127.0.0.1:8082");
  report.options.connections = 100;
  report.duration_s = 2.0;
  report.connections_open_peak = 100;
  report.stats.requests = 5'000;
  report.stats.connects = 100;
  for (std::uint64_t i = 1; i <= 5'000; ++i) {
    report.stats.latency_ns.record(i * 1'000);  // 1 us .. 5 ms
  }
  report.stats.connect_ns.record(80'000);
  return report;
}

std::string json_of(const RunReport& report) {
  std::ostringstream out;
  write_json(out, report);
  return out.str();
}

TEST(RunReport, RateAndExitStatus) {
  RunReport report = sample_report();
  EXPECT_DOUBLE_EQ(report.requests_per_second(), 2'500.0);
  EXPECT_EQ(report.exit_status(), 0);
  report.stats.count_error(ErrorKind::timeout, "no reply within 10000 ms");
  EXPECT_EQ(report.exit_status(), 1);
}

TEST(RunReport, JsonHasTheDocumentedFields) {
  const std::string json = json_of(sample_report());
  for (const char* key : {"\"requests_per_second\": 2500",
                          "\"requests\": 5000",
                          "\"duration_s\": 2",
                          "\"connections\": 100",
                          "\"connections_open_peak\": 100",
                          "\"mode\": \"closed\"",
                          "\"protocol\": \"http\"",
                          "\"bytes\": 0",
                          "\"latency_us\": {",
                          "\"connect_us\": {",
                          "\"p50\": 250",
                          "\"p90\":",
                          "\"p99\":",
                          "\"p99_9\":",
                          "\"p99_99\":",
                          "\"max\": 5000",
                          "\"mean\": 2500.5",
                          "\"refused\": 0",
                          "\"reset\": 0",
                          "\"timeout\": 0",
                          "\"bad_reply\": 0",
                          "\"oversized_reply\": 0",
                          "\"connect_unfinished\": 0",
                          "\"requests_unfinished\": 0",
                          "\"connects_pending\": 0",
                          "\"connections_not_started\": 0",
                          "\"max_response_bytes\": 4194304",
                          "\"hold\": null",
                          "\"attack\": null"}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << "\n" << json;
  }
}

TEST(RunReport, JsonCountsErrorsAndKeepsTheFirstMessage) {
  RunReport report = sample_report();
  report.stats.count_error(ErrorKind::refused, "connect 127.0.0.1:8082: Connection refused");
  report.stats.count_error(ErrorKind::refused, "a later one");
  const std::string json = json_of(report);
  EXPECT_NE(json.find("\"refused\": 2"), std::string::npos) << json;
  EXPECT_NE(json.find("\"total\": 2"), std::string::npos) << json;
  EXPECT_NE(json.find("Connection refused"), std::string::npos) << json;
  EXPECT_EQ(json.find("a later one"), std::string::npos) << json;
}

TEST(RunReport, JsonParsesBackWithEscapedMessagesAndNullForNonFiniteNumbers) {
  RunReport report = sample_report();
  const std::string message = "reply \"HTTP/1.1 500\"\r\n\tthen\x01 \\ closed";
  report.stats.count_error(ErrorKind::bad_reply, message);
  report.options.rate = std::nan("");
  const auto json = nlohmann::json::parse(json_of(report));
  EXPECT_EQ(json["first_errors"]["bad_reply"], message);
  EXPECT_TRUE(json["rate"].is_null());
  EXPECT_TRUE(json["interval_s"].is_null());
  EXPECT_EQ(json["errors"]["bad_reply"], 1);
  EXPECT_EQ(json["latency_us"]["count"], 5000);
}

TEST(RunReport, JsonWithoutErrorsHasAnEmptyFirstErrorsObject) {
  const auto json = nlohmann::json::parse(json_of(sample_report()));
  ASSERT_TRUE(json["first_errors"].is_object());
  EXPECT_TRUE(json["first_errors"].empty());
  EXPECT_EQ(json["errors"]["total"], 0);
}

TEST(RunReport, HoldModeReportsTheHoldLatency) {
  RunReport report = sample_report();
  report.options.hold = std::chrono::seconds(3);
  report.hold_s = 3.0;
  report.stats.hold_latency_ns.record(40'000);
  const std::string json = json_of(report);
  EXPECT_NE(json.find("\"mode\": \"hold\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"hold\": {"), std::string::npos) << json;
  EXPECT_NE(json.find("\"p99\": 40"), std::string::npos) << json;
}

TEST(RunReport, SummaryShowsRateLatencyAndErrors) {
  RunReport report = sample_report();
  report.stats.count_error(ErrorKind::bad_reply, "status 500");
  std::ostringstream out;
  write_summary(out, report);
  const std::string text = out.str();
  EXPECT_NE(text.find("2500.0 requests/s"), std::string::npos) << text;
  EXPECT_NE(text.find("p99.99"), std::string::npos) << text;
  EXPECT_NE(text.find("bad_reply 1 (first: status 500)"), std::string::npos) << text;
}

TEST(RunReport, SummarySaysWhichConnectionsNeverOpenedOnlyWhenThereAreAny) {
  RunReport report = sample_report();
  std::ostringstream all_opened;
  write_summary(all_opened, report);
  EXPECT_NE(all_opened.str().find("100 connects, peak 100 open"), std::string::npos)
      << all_opened.str();
  report.stats.connects_pending = 5;
  report.stats.connections_not_started = 2;
  std::ostringstream some_not;
  write_summary(some_not, report);
  EXPECT_NE(some_not.str().find("100 connects (5 still connecting at the end, 2 not started), "
                                "peak 100 open"),
            std::string::npos)
      << some_not.str();
  EXPECT_NE(json_of(report).find("\"connects_pending\": 5"), std::string::npos);
}

TEST(RunReport, ARunWithoutACompletedRequestFailsAndSaysWhy) {
  RunReport report = sample_report();
  EXPECT_EQ(report.failure(), std::nullopt);
  report.stats = LoadStats{};
  report.stats.count_error(ErrorKind::timeout, "connect took over 1000 ms");
  report.stats.count_error(ErrorKind::connect_unfinished, "connect unanswered");
  EXPECT_EQ(report.failure(),
            "no request completed in 2.00 s: 0 connects completed, errors: 1 timeout, "
            "1 connect_unfinished");
  EXPECT_EQ(report.exit_status(), 1);

  // Nothing went wrong, yet nothing was measured: still a failure, and still explained.
  report.stats = LoadStats{};
  report.stats.connects = 4;
  report.stats.requests_unfinished = 4;
  EXPECT_EQ(report.failure(),
            "no request completed in 2.00 s: 4 connects completed, 4 requests still unanswered "
            "at the end, no error counted");
  EXPECT_EQ(report.exit_status(), 1);
}

TEST(RunReport, ErrorsFailTheRunAndSayWhichKinds) {
  RunReport report = sample_report();
  report.stats.count_error(ErrorKind::reset, "closed");
  report.stats.count_error(ErrorKind::reset, "closed");
  report.stats.count_error(ErrorKind::timeout, "no reply");
  EXPECT_EQ(report.failure(), "3 errors counted: 2 reset, 1 timeout");
  EXPECT_EQ(report.exit_status(), 1);
}

// An open-loop run that owed 1,000 requests.
RunReport open_loop_report(std::uint64_t unsent) {
  RunReport report = sample_report();
  report.options.rate = 500.0;
  report.stats.requests_due = 1'000;
  report.stats.requests = 1'000 - unsent;
  report.stats.requests_unsent = unsent;
  return report;
}

TEST(RunReport, UnsentRequestsFailTheRunBeyondTheTolerance) {
  RunReport report = open_loop_report(10);  // 1 %: the default tolerance, not beyond it
  EXPECT_EQ(report.failure(), std::nullopt);
  report = open_loop_report(11);
  EXPECT_EQ(report.failure(),
            "11 of 1000 requests due were never sent (1.10 %, over --unsent-tolerance 1 %)");
  EXPECT_EQ(report.exit_status(), 1);
  report.options.unsent_tolerance = 0.05;
  EXPECT_EQ(report.failure(), std::nullopt);
  report.options.unsent_tolerance = 0.0;
  report.stats.requests_unsent = 1;
  EXPECT_NE(report.failure(), std::nullopt);

  const auto json = nlohmann::json::parse(json_of(open_loop_report(11)));
  EXPECT_EQ(json["requests_due"], 1000);
  EXPECT_EQ(json["requests_unsent"], 11);
  EXPECT_EQ(json["unsent_tolerance"], 0.01);
  EXPECT_EQ(json["failure"], open_loop_report(11).failure());
  std::ostringstream summary;
  write_summary(summary, open_loop_report(11));
  EXPECT_NE(summary.str().find("unsent       11 of 1000 requests due"), std::string::npos)
      << summary.str();
}

TEST(RunReport, AStallFailsTheRunAndIsReportedWithItsStartAndLength) {
  using namespace std::chrono_literals;
  RunReport report = sample_report();
  report.stalls = {{.start = 1'250ms, .length = 1'500ms}, {.start = 5s, .length = 2'750ms}};
  EXPECT_EQ(report.failure(),
            "2 stalls (no answer while requests waited, 1000 ms or more), the longest 2.75 s "
            "from 5.00 s");
  EXPECT_EQ(report.exit_status(), 1);
  const auto json = nlohmann::json::parse(json_of(report));
  ASSERT_EQ(json["stalls"].size(), 2U);
  EXPECT_EQ(json["stalls"][0]["start_s"], 1.25);
  EXPECT_EQ(json["stalls"][0]["length_s"], 1.5);
  EXPECT_EQ(json["stall_threshold_s"], 1.0);
  std::ostringstream summary;
  write_summary(summary, report);
  EXPECT_NE(summary.str().find("from 5.00 s for 2.75 s"), std::string::npos) << summary.str();

  // Every reason is in the one line, errors first.
  report.stats.count_error(ErrorKind::timeout, "no reply");
  EXPECT_EQ(report.failure()->rfind("1 errors counted: 1 timeout; 2 stalls", 0), 0U)
      << *report.failure();
}

TEST(RunReport, ACleanRunHasNoFailureNoStallAndNothingUnsent) {
  const auto json = nlohmann::json::parse(json_of(sample_report()));
  EXPECT_TRUE(json["failure"].is_null());
  EXPECT_EQ(json["stalls"], nlohmann::json::array());
  EXPECT_EQ(json["requests_unsent"], 0);
  EXPECT_TRUE(json["requests_due"].is_null());  // the closed loop owes nothing on a schedule
}

RunReport attack_report() {
  RunReport report;
  report.options.target = parse_target("127.0.0.1:8082");
  report.options.connections = 2;
  report.options.slow_headers_interval = std::chrono::seconds(3);
  report.duration_s = 10.0;
  report.stats.connects = 3;
  report.stats.bytes_sent = 120;
  report.stats.attack.held_ns.record(2'000'000'000);
  report.stats.attack.sent_bytes.record(40);
  report.stats.attack.closed_by_server = 1;
  report.stats.attack.still_open_at_end = 2;
  report.stats.attack.statuses[408] = 1;
  return report;
}

TEST(RunReport, AnAttackReportsHowLongTheServerHeldItsConnections) {
  const RunReport report = attack_report();
  EXPECT_EQ(report.failure(), std::nullopt);  // no request is what an attack expects
  EXPECT_EQ(report.exit_status(), 0);
  const auto json = nlohmann::json::parse(json_of(report));
  EXPECT_EQ(json["mode"], "slow_headers");
  EXPECT_EQ(json["requests"], 0);
  const auto& attack = json["attack"];
  EXPECT_EQ(attack["mode"], "slow_headers");
  EXPECT_EQ(attack["interval_s"], 3.0);
  EXPECT_EQ(attack["connections"], 2);
  EXPECT_EQ(attack["connects"], 3);
  EXPECT_EQ(attack["held_ms"]["count"], 1);
  EXPECT_NEAR(attack["held_ms"]["p50"].get<double>(), 2000.0, 2000.0 / 128);
  EXPECT_EQ(attack["closed_by_server"], 1);
  EXPECT_EQ(attack["still_open_at_end"], 2);
  EXPECT_EQ(attack["statuses"]["408"], 1);
  EXPECT_EQ(attack["bytes_sent"], 120);
  EXPECT_EQ(attack["sent_bytes_per_connection"]["max"], 40);

  std::ostringstream out;
  write_summary(out, report);
  EXPECT_NE(out.str().find("1 ended by the server, 2 still open at the end"), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("1 x 408"), std::string::npos) << out.str();
}

TEST(RunReport, AnAttackThatOpenedNoConnectionFails) {
  RunReport report = attack_report();
  report.stats = LoadStats{};
  report.stats.count_error(ErrorKind::refused, "connect: Connection refused");
  EXPECT_EQ(report.failure(),
            "no connection opened in 10.00 s: 0 connects completed, errors: 1 refused");
  EXPECT_EQ(report.exit_status(), 1);
}

}  // namespace
}  // namespace echolab::load
