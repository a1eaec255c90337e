// How long a connection waits for its client, whatever the concurrency model: a clock-free
// account of the connection's phase (between requests, in a header section, in a body,
// sending an answer) that names the next deadline. The drivers feed it the times they
// read; the blocking loop waits until next(), the pool's timer is armed for it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/protocol/session.hpp"

namespace echolab {

// The defences against slow and stalled clients, beside their nginx and Apache equivalents
// (docs/slow-clients.md says why each default).
struct ClientTimeouts {
  std::chrono::milliseconds idle{30'000};    // between requests: keepalive_timeout
  std::chrono::milliseconds header{10'000};  // a whole header section: client_header_timeout
  std::chrono::milliseconds body{10'000};    // a body's grace: mod_reqtimeout body=
  std::chrono::milliseconds send{10'000};    // an answer's grace: send_timeout
  std::chrono::milliseconds linger{2'000};   // reading on after an error answer: lingering_time
  // A connection open this long is closed at its next point between requests (a request in
  // flight is finished, under its own deadlines): nginx's keepalive_time. Without it a client
  // that trickles a byte of raw echo within every idle timeout would hold a worker forever.
  std::chrono::milliseconds max_lifetime{3'600'000};
  // A body or an answer that keeps moving at this many bytes/s is never cut: each byte
  // moves its deadline by 1/min_rate s (mod_reqtimeout's MinRate). 0: the grace alone.
  std::uint64_t min_rate = 500;
};

// `lifetime`: --max-connection-lifetime ended the connection at a point between requests.
enum class TimeoutKind { idle, header, body, send, lifetime };
inline constexpr std::array<TimeoutKind, 5> kTimeoutKinds = {TimeoutKind::idle, TimeoutKind::header,
                                                             TimeoutKind::body, TimeoutKind::send,
                                                             TimeoutKind::lifetime};
std::string_view to_string(TimeoutKind kind);

class ClientDeadline {
 public:
  using Clock = std::chrono::steady_clock;
  struct Deadline {
    Clock::time_point at;
    TimeoutKind kind;
  };

  // A new connection owes its first header section within the header timeout, counted from
  // `now` (its accept): a client that connects and sends nothing is a slow header too.
  ClientDeadline(const ClientTimeouts& timeouts, Clock::time_point now);

  // The Session took `bytes` and now stands in `phase`; `request_completed` when the read
  // finished at least one request (a new one may have begun in the same bytes).
  void received(std::size_t bytes, RequestPhase phase, bool request_completed,
                Clock::time_point now);
  // An answer waits for the client: the send deadline runs from the first call until done.
  void sending(Clock::time_point now);
  // Bytes the client took while the answer waited (those the socket buffer took at once
  // earn nothing: they say nothing of the client's rate).
  void sent(std::size_t bytes);
  // The answer is out: the idle time, or a pipelined request's own time if the send waited,
  // runs from `now`.
  void send_done(Clock::time_point now);

  [[nodiscard]] Deadline next() const;
  // True once the connection has outlived --max-connection-lifetime: the request being read
  // is its last (HTTP answers it with `Connection: close`).
  [[nodiscard]] bool lifetime_over(Clock::time_point now) const;
  [[nodiscard]] const ClientTimeouts& timeouts() const { return timeouts_; }

 private:
  // The grace plus the time `bytes` earn at the minimum rate.
  [[nodiscard]] Clock::duration allowance(std::chrono::milliseconds grace,
                                          std::uint64_t bytes) const;

  // Between requests: the idle deadline, or the lifetime's end if that comes first.
  [[nodiscard]] Deadline between_requests() const;

  ClientTimeouts timeouts_;
  Clock::time_point opened_;
  RequestPhase phase_ = RequestPhase::header;
  Clock::time_point idle_since_;
  Clock::time_point phase_started_;
  std::uint64_t body_bytes_ = 0;
  bool sending_ = false;
  Clock::time_point send_started_;
  std::uint64_t sent_bytes_ = 0;
};

}  // namespace echolab
