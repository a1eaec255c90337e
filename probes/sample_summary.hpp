// Summarises repeated measurements of one figure: median, p90, p99, min and max.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace echolab::probe {

// The probes' JSON documents, members in the order they are added.
using Json = nlohmann::ordered_json;

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

// Summarises one figure of repeated measurements that each yield several figures.
template <typename Measurement>
SampleSummary summarize_field(const std::vector<Measurement>& measurements,
                              double Measurement::*field) {
  std::vector<double> values;
  values.reserve(measurements.size());
  for (const Measurement& measurement : measurements) values.push_back(measurement.*field);
  return summarize(std::move(values));
}

// The ratio of two medians, or NaN (written as null) when the denominator is not positive.
double median_ratio(const SampleSummary& numerator, const SampleSummary& denominator);

// A measured figure as the probes report it, rounded to three decimals: the timers and the
// kernel's accounting are not finer than that, and shorter numbers keep the JSON readable. A
// value that is not finite stays so, and the JSON library writes it as null.
Json figure(double value);

// {"samples": n, "median": ..., "p90": ..., "p99": ..., "min": ..., "max": ...}
Json to_json(const SampleSummary& summary);

// `value` with `decimals` digits after the point, for the human summary lines.
std::string fixed_decimals(double value, int decimals);

}  // namespace echolab::probe
