#include "loadgen/load_stats.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <string>

namespace echolab::load {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::refused:
      return "refused";
    case ErrorKind::reset:
      return "reset";
    case ErrorKind::timeout:
      return "timeout";
    case ErrorKind::connect_unfinished:
      return "connect_unfinished";
    case ErrorKind::bad_reply:
      return "bad_reply";
    case ErrorKind::oversized_reply:
      return "oversized_reply";
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

void AttackStats::merge(const AttackStats& other) {
  held_ns.merge(other.held_ns);
  sent_bytes.merge(other.sent_bytes);
  closed_by_server += other.closed_by_server;
  still_open_at_end += other.still_open_at_end;
  for (const auto& [status, count] : other.statuses) {
    statuses[status] += count;
  }
}

void LoadStats::count_unfinished_connects(std::string_view target) {
  const bool none_completed = connect_ns.count() == 0;
  // Longest first, so that the message kept is the longest wait.
  std::sort(unfinished_connect_ns.begin(), unfinished_connect_ns.end(), std::greater<>());
  for (const std::uint64_t waited : unfinished_connect_ns) {
    if (!none_completed && waited <= connect_ns.max()) {
      break;
    }
    count_error(ErrorKind::connect_unfinished,
                "connect to " + std::string(target) + " unanswered after " +
                    std::to_string(waited / 1'000'000) + " ms when the run ended");
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
  connects_pending += other.connects_pending;
  connections_not_started += other.connections_not_started;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (errors[i] == 0) {
      first_error[i] = other.first_error[i];
    }
    errors[i] += other.errors[i];
  }
  latency_ns.merge(other.latency_ns);
  connect_ns.merge(other.connect_ns);
  hold_latency_ns.merge(other.hold_latency_ns);
  requests_unfinished += other.requests_unfinished;
  requests_due += other.requests_due;
  requests_unsent += other.requests_unsent;
  unfinished_connect_ns.insert(unfinished_connect_ns.end(), other.unfinished_connect_ns.begin(),
                               other.unfinished_connect_ns.end());
  attack.merge(other.attack);
}

}  // namespace echolab::load
