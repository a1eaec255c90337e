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
                          "\"hold\": null"}) {
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

}  // namespace
}  // namespace echolab::load
