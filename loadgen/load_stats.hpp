// What one event-loop thread measured; the threads' stats are merged when the run ends.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/histogram.hpp"

namespace echolab::load {

// Every failure is counted under one of these, never dropped.
//   refused:   the connect was refused (nothing listens, or the backlog is full)
//   reset:     the connection was reset, or closed by the server while a reply was owed
//   timeout:   no connect or no reply within --timeout
//   connect_unfinished: a connect still unanswered when the run ended, pending longer than
//              any connect of the run that completed (so a dropped SYN, not bad luck)
//   bad_reply: a reply broke the protocol, had a status other than 200, or a wrong echo
//   oversized_reply: a reply grew past --max-response-bytes and was cut
//   other:     any other socket error (e.g. no local port or descriptor left)
enum class ErrorKind {
  refused,
  reset,
  timeout,
  connect_unfinished,
  bad_reply,
  oversized_reply,
  other
};
inline constexpr std::array kErrorKinds = {ErrorKind::refused,   ErrorKind::reset,
                                           ErrorKind::timeout,   ErrorKind::connect_unfinished,
                                           ErrorKind::bad_reply, ErrorKind::oversized_reply,
                                           ErrorKind::other};
std::string_view to_string(ErrorKind kind);

// What the attack clients (--slow-headers, --never-read) measured.
struct AttackStats {
  // How long the server let each connection live, from its connect to the server's close,
  // reset or answer; connections still open at the end are counted apart.
  LatencyHistogram held_ns;
  // Bytes each connection sent, whether the server ended it or it was still open at the end.
  LatencyHistogram sent_bytes;
  std::uint64_t closed_by_server = 0;
  std::uint64_t still_open_at_end = 0;
  std::map<int, std::uint64_t> statuses;  // HTTP status of the server's answers, if any

  void merge(const AttackStats& other);
};

struct LoadStats {
  std::uint64_t requests = 0;  // replies received and found good
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t connects = 0;  // successful connects, reconnects included
  // When the run ended: connects begun and not yet seen to complete (errors or not), and
  // connections whose ramp time had not come. With no error, connects + both = connections.
  std::uint64_t connects_pending = 0;
  std::uint64_t connections_not_started = 0;
  std::array<std::uint64_t, kErrorKinds.size()> errors{};
  std::array<std::string, kErrorKinds.size()> first_error;  // the first message of each kind
  LatencyHistogram latency_ns;
  LatencyHistogram connect_ns;
  LatencyHistogram hold_latency_ns;       // requests due during the hold phase only
  std::uint64_t requests_unfinished = 0;  // sent, their replies still owed at the end
  // Open loop and hold: the requests the schedule made due by the end (or sent, if more), and
  // those of them never sent because their connection was still waiting on a reply.
  std::uint64_t requests_due = 0;
  std::uint64_t requests_unsent = 0;
  // How long each connect still in flight at the end had been waiting; they become
  // connect_unfinished errors once every thread's connect times are known.
  std::vector<std::uint64_t> unfinished_connect_ns;
  AttackStats attack;

  void count_error(ErrorKind kind, std::string_view message);
  // After the merge: counts the connects in `unfinished_connect_ns` that waited longer than
  // every connect that completed (all of them when none completed) as connect_unfinished.
  // A connect caught in flight by the end of an ordinary run is not one.
  void count_unfinished_connects(std::string_view target);
  [[nodiscard]] std::uint64_t error_count(ErrorKind kind) const {
    return errors[static_cast<std::size_t>(kind)];
  }
  [[nodiscard]] std::uint64_t total_errors() const;
  void merge(const LoadStats& other);
};

}  // namespace echolab::load
