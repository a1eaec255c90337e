// Summarises repeated measurements of one figure: median, p90, p99, min and max.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "loadgen/probes/json_writer.hpp"

namespace echolab::probe {

struct SampleSummary {
  std::size_t samples = 0;
  double median = 0;  // the middle value, or the mean of the two middle values
  double p90 = 0;     // percentiles by nearest rank: always one of the samples
  double p99 = 0;
  double min = 0;
  double max = 0;
};

// Throws ProbeError when `values` is empty: a figure without samples is not a figure.
SampleSummary summarize(std::vector<double> values);

// The ratio of two medians, or NaN (written as null) when the denominator is not positive.
double median_ratio(const SampleSummary& numerator, const SampleSummary& denominator);

// "key": {"samples": n, "median": ..., "p90": ..., "p99": ..., "min": ..., "max": ...}
void add_summary(JsonWriter& json, std::string_view key, const SampleSummary& summary);

}  // namespace echolab::probe
