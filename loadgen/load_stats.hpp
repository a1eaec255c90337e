// What one event-loop thread measured; the threads' stats are merged when the run ends.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "loadgen/histogram.hpp"

namespace echolab::load {

// Every failure is counted under one of these, never dropped.
//   refused:   the connect was refused (nothing listens, or the backlog is full)
//   reset:     the connection was reset, or closed by the server while a reply was owed
//   timeout:   no connect or no reply within --timeout
//   bad_reply: a reply broke the protocol, had a status other than 200, or a wrong echo
//   other:     any other socket error (e.g. no local port or descriptor left)
enum class ErrorKind { refused, reset, timeout, bad_reply, other };
inline constexpr std::array kErrorKinds = {ErrorKind::refused, ErrorKind::reset, ErrorKind::timeout,
                                           ErrorKind::bad_reply, ErrorKind::other};
std::string_view to_string(ErrorKind kind);

struct LoadStats {
  std::uint64_t requests = 0;  // replies received and found good
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t connects = 0;  // successful connects, reconnects included
  std::array<std::uint64_t, kErrorKinds.size()> errors{};
  std::array<std::string, kErrorKinds.size()> first_error;  // the first message of each kind
  LatencyHistogram latency_ns;
  LatencyHistogram connect_ns;
  LatencyHistogram hold_latency_ns;  // requests due during the hold phase only

  void count_error(ErrorKind kind, std::string_view message);
  [[nodiscard]] std::uint64_t error_count(ErrorKind kind) const {
    return errors[static_cast<std::size_t>(kind)];
  }
  [[nodiscard]] std::uint64_t total_errors() const;
  void merge(const LoadStats& other);
};

}  // namespace echolab::load
