#include "probes/sample_summary.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "probes/probe_error.hpp"

namespace echolab::probe {
namespace {

double nearest_rank(const std::vector<double>& sorted, double percentile) {
  const auto rank =
      static_cast<std::size_t>(std::ceil(percentile / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

double median_of(const std::vector<double>& sorted) {
  const std::size_t middle = sorted.size() / 2;
  if (sorted.size() % 2 == 1) return sorted[middle];
  return (sorted[middle - 1] + sorted[middle]) / 2.0;
}

}  // namespace

SampleSummary summarize(std::vector<double> values) {
  if (values.empty()) throw ProbeError("no samples were taken");
  std::sort(values.begin(), values.end());
  SampleSummary summary;
  summary.samples = values.size();
  summary.median = median_of(values);
  summary.p90 = nearest_rank(values, 90);
  summary.p99 = nearest_rank(values, 99);
  summary.min = values.front();
  summary.max = values.back();
  return summary;
}

double median_ratio(const SampleSummary& numerator, const SampleSummary& denominator) {
  if (denominator.median <= 0) return std::numeric_limits<double>::quiet_NaN();
  return numerator.median / denominator.median;
}

Json figure(double value) { return std::round(value * 1000.0) / 1000.0; }

Json to_json(const SampleSummary& summary) {
  return {{"samples", summary.samples}, {"median", figure(summary.median)},
          {"p90", figure(summary.p90)}, {"p99", figure(summary.p99)},
          {"min", figure(summary.min)}, {"max", figure(summary.max)}};
}

std::string fixed_decimals(double value, int decimals) {
  char buffer[64];
  const auto result =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, decimals);
  if (result.ec != std::errc()) return "?";
  return std::string(buffer, result.ptr);
}

}  // namespace echolab::probe
