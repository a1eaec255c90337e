#include "loadgen/result_merge.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace echolab::load {
namespace {

using namespace std::chrono_literals;

const WallClock::time_point kStart = WallClock::time_point(std::chrono::seconds(1'796'357'400));

// A finished shard of a 10-connection closed-loop run, with these latencies (ns).
RunReport shard_report(std::size_t index, const std::vector<std::uint64_t>& latencies,
                       WallClock::time_point start, WallClock::time_point end) {
  RunReport report;
  report.options.target = parse_target("127.0.0.1:8082");
  report.options.connections = 10;
  report.options.shard = {.index = index, .count = 2};
  report.options.threads = 2;
  for (const std::uint64_t latency : latencies) {
    report.stats.latency_ns.record(latency);
  }
  report.stats.requests = latencies.size();
  report.stats.connects = report.options.shard_connections();
  for (std::size_t i = 0; i < report.stats.connects; ++i) {
    report.stats.connect_ns.record(50'000 + 1'000 * i);
  }
  report.connections_open_peak = report.stats.connects;
  report.window_start = start;
  report.window_end = end;
  report.duration_s = std::chrono::duration<double>(end - start).count();
  return report;
}

std::string json_of(const RunReport& report) {
  std::ostringstream out;
  write_json(out, report);
  return out.str();
}

std::vector<std::uint64_t> samples(std::mt19937_64& random, double mean_ns, std::size_t n) {
  // Log-normal latencies: a long tail, as a server's.
  std::lognormal_distribution<double> distribution(std::log(mean_ns), 1.0);
  std::vector<std::uint64_t> values;
  for (std::size_t i = 0; i < n; ++i) {
    values.push_back(static_cast<std::uint64_t>(distribution(random)) + 1);
  }
  return values;
}

// The value of rank ceil(p n) among all samples, sorted: what a percentile means.
std::uint64_t brute_force_percentile(std::vector<std::uint64_t> values, double percentile) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(
      std::ceil(percentile / 100.0 * static_cast<double>(values.size()) * (1 - 1e-12)));
  return values[std::max<std::size_t>(rank, 1) - 1];
}

TEST(ResultMerge, PercentilesAreThoseOfEverySampleNotAnAverage) {
  std::mt19937_64 random(42);
  // Two shards that saw very different latencies: averaging their p99s would be far off.
  const auto fast = samples(random, 100'000, 20'000);   // around 100 us
  const auto slow = samples(random, 5'000'000, 3'000);  // around 5 ms
  const auto merged = merge_results(
      {read_result("a.json", json_of(shard_report(1, fast, kStart, kStart + 10s))),
       read_result("b.json", json_of(shard_report(2, slow, kStart + 1s, kStart + 12s)))});

  std::vector<std::uint64_t> all = fast;
  all.insert(all.end(), slow.begin(), slow.end());
  LatencyHistogram one;
  for (const std::uint64_t value : all) {
    one.record(value);
  }
  const LatencyHistogram& summed = merged.stats.latency_ns;
  ASSERT_EQ(summed.count(), all.size());
  EXPECT_EQ(summed.min(), *std::min_element(all.begin(), all.end()));
  EXPECT_EQ(summed.max(), *std::max_element(all.begin(), all.end()));
  EXPECT_NEAR(summed.mean(), one.mean(), one.mean() * 1e-12);
  for (const double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    // Exactly the histogram of all the samples, bucket for bucket...
    EXPECT_EQ(summed.value_at_percentile(p), one.value_at_percentile(p)) << p;
    // ...so within the bucket's precision of the true percentile, and never below it.
    const auto truth = brute_force_percentile(all, p);
    EXPECT_GE(summed.value_at_percentile(p), truth) << p;
    EXPECT_LE(static_cast<double>(summed.value_at_percentile(p)),
              static_cast<double>(truth) * (1 + LatencyHistogram::kRelativePrecision))
        << p;
  }
}

TEST(ResultMerge, SumsCountsOverTheUnionOfTheWindows) {
  const auto merged = merge_results(
      {read_result("a.json", json_of(shard_report(1, std::vector<std::uint64_t>(600, 1000), kStart,
                                                  kStart + 10s))),
       read_result("b.json", json_of(shard_report(2, std::vector<std::uint64_t>(400, 2000),
                                                  kStart + 1s, kStart + 12s)))});
  EXPECT_EQ(merged.stats.requests, 1000U);
  EXPECT_EQ(merged.options.connections, 10U);
  EXPECT_EQ(merged.stats.connects, 10U);
  EXPECT_EQ(merged.stats.connect_ns.count(), 10U);
  EXPECT_EQ(merged.window_start, kStart);
  EXPECT_EQ(merged.window_end, kStart + 12s);
  EXPECT_DOUBLE_EQ(merged.duration_s, 12.0);
  EXPECT_DOUBLE_EQ(merged.requests_per_second(), 1000.0 / 12.0);
  ASSERT_EQ(merged.merged_from.size(), 2U);
  EXPECT_EQ(merged.merged_from[1].shard->to_string(), "2/2");

  // The merged result is itself a result, of the whole run: no shard, and mergeable again.
  const std::string json = json_of(merged);
  const auto reread = read_result("merged.json", json);
  EXPECT_FALSE(reread.shard.has_value());
  EXPECT_EQ(reread.report.options.connections, 10U);
  EXPECT_EQ(reread.report.stats.latency_ns.value_at_percentile(50),
            merged.stats.latency_ns.value_at_percentile(50));
  EXPECT_EQ(reread.report.stats.latency_ns.value_at_percentile(50), 1003U);  // 1000's bucket
  EXPECT_NE(json.find("\"merged_from\": ["), std::string::npos);
}

TEST(ResultMerge, SumsTheConnectionsThatNeverOpened) {
  RunReport first = shard_report(1, {1000}, kStart, kStart + 1s);
  first.stats.connects_pending = 2;
  RunReport second = shard_report(2, {2000}, kStart, kStart + 1s);
  second.stats.connects_pending = 1;
  second.stats.connections_not_started = 3;
  const auto merged = merge_results(
      {read_result("a.json", json_of(first)), read_result("b.json", json_of(second))});
  EXPECT_EQ(merged.stats.connects_pending, 3U);
  EXPECT_EQ(merged.stats.connections_not_started, 3U);
}

// A refusal is one line that names the file and the field.
void expect_refused(const std::function<void()>& merge, const std::string& file,
                    const std::string& field) {
  try {
    merge();
    ADD_FAILURE() << "merged, expected a refusal naming " << file << " and " << field;
  } catch (const MergeRefused& refusal) {
    const std::string message = refusal.what();
    EXPECT_NE(message.find(file), std::string::npos) << message;
    EXPECT_NE(message.find(field), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

nlohmann::ordered_json json_value_of(const RunReport& report) {
  return nlohmann::ordered_json::parse(json_of(report));
}

// Merges shard 1 as written with shard 2 changed by `change`.
void expect_pair_refused(const std::function<void(nlohmann::ordered_json&)>& change,
                         const std::string& field) {
  const auto first = json_of(shard_report(1, {1000, 2000}, kStart, kStart + 1s));
  auto second = json_value_of(shard_report(2, {3000}, kStart, kStart + 1s));
  change(second);
  expect_refused(
      [&] {
        merge_results({read_result("a.json", first), read_result("b.json", second.dump())});
      },
      "b.json", field);
}

TEST(ResultMerge, RefusesResultsOfDifferentRuns) {
  expect_pair_refused([](auto& json) { json["target"] = "127.0.0.1:9999"; }, "\"target\"");
  expect_pair_refused(
      [](auto& json) {
        json["protocol"] = "raw";
        json["method"] = nullptr;
        json["path"] = nullptr;
      },
      "\"protocol\"");
  expect_pair_refused(
      [](auto& json) {
        json["mode"] = "open";
        json["rate"] = 500.0;
      },
      "\"mode\"");
  expect_pair_refused([](auto& json) { json["path"] = "/other"; }, "\"path\"");
  expect_pair_refused([](auto& json) { json["pipeline"] = 16; }, "\"pipeline\"");
  expect_pair_refused([](auto& json) { json["shard"]["index"] = 1; }, "\"shard.index\"");
  expect_pair_refused([](auto& json) { json["shard"]["count"] = 3; }, "\"shard\"");
}

TEST(ResultMerge, RefusesShardsWithOtherSettings) {
  expect_pair_refused([](auto& json) { json["timeout_s"] = 2.0; }, "\"timeout_s\"");
  expect_pair_refused([](auto& json) { json["duration_planned_s"] = 20.0; },
                      "\"duration_planned_s\"");
  expect_pair_refused([](auto& json) { json["interval_s"] = 0.5; }, "\"interval_s\"");
  expect_pair_refused([](auto& json) { json["stall_threshold_s"] = 0.1; }, "\"stall_threshold_s\"");
  expect_pair_refused([](auto& json) { json["unsent_tolerance"] = 0.5; }, "\"unsent_tolerance\"");
}

TEST(ResultMerge, RefusesTheSameResultTwice) {
  const auto first = json_of(shard_report(1, {1000, 2000}, kStart, kStart + 1s));
  expect_refused(
      [&] {
        merge_results({read_result("a.json", first), read_result("copy.json", first)});
      },
      "copy.json", "the same result as a.json");
  // The same whole run twice: no shard to tell them apart, still refused.
  auto whole = json_value_of(shard_report(1, {1000}, kStart, kStart + 1s));
  whole["shard"] = nullptr;
  expect_refused(
      [&] {
        merge_results({read_result("a.json", whole.dump()), read_result("a.json", whole.dump())});
      },
      "a.json", "the same result");
}

TEST(ResultMerge, RefusesAnIncompleteSetOfShards) {
  auto third = [](std::size_t index) {
    auto json = json_value_of(shard_report(index, {1000 * index}, kStart, kStart + 1s));
    json["shard"]["count"] = 3;
    return json.dump();
  };
  expect_refused(
      [&] {
        merge_results({read_result("a.json", third(1)), read_result("c.json", third(3))});
      },
      "shard 2/3", "missing");
  expect_refused([&] { merge_results({read_result("b.json", third(2))}); }, "shard 1/3", "missing");
  auto whole = json_value_of(shard_report(1, {1000}, kStart, kStart + 1s));
  whole["shard"] = nullptr;
  expect_refused(
      [&] {
        merge_results({read_result("a.json", third(1)), read_result("w.json", whole.dump())});
      },
      "w.json", "do not mix");
}

TEST(ResultMerge, SumsUnsentAndTakesEveryStallOnTheMergedWindow) {
  RunReport first = shard_report(1, {1000}, kStart, kStart + 10s);
  RunReport second = shard_report(2, {2000}, kStart + 2s, kStart + 10s);
  first.stats.requests_unsent = 3;
  second.stats.requests_unsent = 4;
  first.stalls = {{.start = 5s, .length = 1s}};
  second.stalls = {{.start = 1s, .length = 2s}};
  const auto merged = merge_results(
      {read_result("a.json", json_of(first)), read_result("b.json", json_of(second))});
  EXPECT_EQ(merged.stats.requests_unsent, 7U);
  ASSERT_EQ(merged.stalls.size(), 2U);
  // b.json started 2 s after the merged window: its stall at 1 s is at 3 s of the window.
  EXPECT_EQ(merged.stalls[0].start, 3s);
  EXPECT_EQ(merged.stalls[0].length, 2s);
  EXPECT_EQ(merged.stall_files[0], "b.json");
  EXPECT_EQ(merged.stalls[1].start, 5s);
  EXPECT_EQ(merged.stall_files[1], "a.json");
  EXPECT_EQ(merged.exit_status(), 1);
  const auto json = nlohmann::ordered_json::parse(json_of(merged));
  EXPECT_EQ(json["stalls"][0]["file"], "b.json");
  EXPECT_EQ(json["requests_unsent"], 7);
}

// Writes `report` as a result file in the test's temporary directory.
std::string result_file(const std::string& name, const RunReport& report) {
  std::string path = testing::TempDir() + name;
  std::ofstream(path) << json_of(report);
  return path;
}

TEST(ResultMerge, TheCommandExits1WhenTheMergedRunFailed) {
  const auto clean_a = result_file("clean-a.json", shard_report(1, {1000}, kStart, kStart + 1s));
  const auto clean_b = result_file("clean-b.json", shard_report(2, {1000}, kStart, kStart + 1s));
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_merge({clean_a, clean_b}), 0);
  testing::internal::GetCapturedStdout();
  testing::internal::GetCapturedStderr();

  RunReport failed = shard_report(2, {}, kStart, kStart + 1s);
  failed.stats.count_error(ErrorKind::reset, "closed");
  const auto failed_b = result_file("failed-b.json", failed);
  const auto output = testing::TempDir() + "merged.json";
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int status = run_merge({clean_a, failed_b, "--output", output});
  testing::internal::GetCapturedStdout();
  const std::string message = testing::internal::GetCapturedStderr();
  EXPECT_EQ(status, 1);
  EXPECT_NE(message.find("1 errors counted: 1 reset"), std::string::npos) << message;
  std::ifstream written(output);
  const auto merged = nlohmann::ordered_json::parse(written);
  EXPECT_EQ(merged["failure"], "1 errors counted: 1 reset");

  testing::internal::CaptureStderr();
  EXPECT_EQ(run_merge({clean_a, clean_a}), 2);
  const std::string twice = testing::internal::GetCapturedStderr();
  EXPECT_NE(twice.find("the same result as"), std::string::npos) << twice;
}

TEST(ResultMerge, RefusesAnotherHistogramLayout) {
  expect_pair_refused([](auto& json) { json["histograms"]["layout"]["sub_buckets"] = 64; },
                      "\"histograms.layout\"");
  // Two files that agree with each other but not with the reader are refused too.
  auto json = json_value_of(shard_report(1, {1000}, kStart, kStart + 1s));
  json["histograms"]["layout"]["exact_below"] = 128;
  expect_refused([&] { read_result("c.json", json.dump()); }, "c.json", "\"histograms.layout\"");
}

void expect_unreadable(const std::function<void(nlohmann::ordered_json&)>& change,
                       const std::string& field) {
  auto json = json_value_of(shard_report(1, {1000, 300'000}, kStart, kStart + 1s));
  change(json);
  expect_refused([&] { read_result("c.json", json.dump()); }, "c.json", field);
}

TEST(ResultMerge, RefusesWhatIsNotAResultWithHistograms) {
  expect_refused([] { read_result("c.json", "not json {"); }, "c.json",
                 "not an echolab-load result");
  expect_refused([] { read_result("c.json", "[1, 2]"); }, "c.json", "\"tool\"");
  expect_refused([] { read_result("c.json", R"({"tool": "wrk"})"); }, "c.json", "\"tool\"");
  expect_unreadable([](auto& json) { json.erase("histograms"); }, "\"histograms.layout\"");
  expect_unreadable([](auto& json) { json.erase("window"); }, "\"window.start_unix_s\"");
  expect_unreadable([](auto& json) { json["requests"] = "many"; }, "\"requests\"");
  expect_unreadable([](auto& json) { json["mode"] = "never_read"; }, "\"mode\"");
  expect_unreadable([](auto& json) { json["histograms"]["latency_ns"]["buckets"][0][0] = 258; },
                    "\"histograms.latency_ns.buckets\"");
  expect_unreadable([](auto& json) { json["histograms"]["latency_ns"]["buckets"][0][1] = 7; },
                    "\"histograms.latency_ns.count\"");
  expect_unreadable([](auto& json) { json["requests"] = 5; }, "\"histograms.latency_ns.count\"");
}

TEST(ResultMerge, TheCommandRefusesInOneLineAndExits2) {
  testing::internal::CaptureStderr();
  const int status = run_merge({"/nonexistent/a.json"});
  const std::string message = testing::internal::GetCapturedStderr();
  EXPECT_EQ(status, 2);
  EXPECT_NE(message.find("/nonexistent/a.json"), std::string::npos) << message;
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 1) << message;
}

}  // namespace
}  // namespace echolab::load
