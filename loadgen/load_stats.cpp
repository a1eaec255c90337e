#include "loadgen/load_stats.hpp"

#include <numeric>

namespace echolab::load {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::refused:
      return "refused";
    case ErrorKind::reset:
      return "reset";
    case ErrorKind::timeout:
      return "timeout";
    case ErrorKind::bad_reply:
      return "bad_reply";
    case ErrorKind::other:
      return "other";
  }
  return "other";
}

void LoadStats::count_error(ErrorKind kind, std::string_view message) {
  const auto index = static_cast<std::size_t>(kind);
  if (errors[index]++ == 0) {
    first_error[index] = message;
  }
}

std::uint64_t LoadStats::total_errors() const {
  return std::accumulate(errors.begin(), errors.end(), std::uint64_t{0});
}

void LoadStats::merge(const LoadStats& other) {
  requests += other.requests;
  bytes_received += other.bytes_received;
  bytes_sent += other.bytes_sent;
  connects += other.connects;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (errors[i] == 0) {
      first_error[i] = other.first_error[i];
    }
    errors[i] += other.errors[i];
  }
  latency_ns.merge(other.latency_ns);
  connect_ns.merge(other.connect_ns);
  hold_latency_ns.merge(other.hold_latency_ns);
}

}  // namespace echolab::load
