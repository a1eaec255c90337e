#include "common/protocol/client_deadline.hpp"

#include <utility>

namespace echolab {

std::string_view to_string(TimeoutKind kind) {
  switch (kind) {
    case TimeoutKind::idle:
      return "idle";
    case TimeoutKind::header:
      return "header";
    case TimeoutKind::body:
      return "body";
    case TimeoutKind::send:
      return "send";
    case TimeoutKind::lifetime:
      return "lifetime";
  }
  return "unknown";
}

ClientDeadline::ClientDeadline(const ClientTimeouts& timeouts, Clock::time_point now)
    : timeouts_(timeouts), opened_(now), idle_since_(now), phase_started_(now) {}

void ClientDeadline::received(std::size_t bytes, RequestPhase phase, bool request_completed,
                              Clock::time_point now) {
  if (phase == RequestPhase::idle) {
    idle_since_ = now;  // raw echo and finished requests: the idle wait starts again
  } else if (phase != phase_ || request_completed) {
    // A new header section or body: its deadline runs from here, not from the first read of
    // the connection, and never restarts on later reads (a header line every few seconds
    // must not keep a connection forever).
    phase_started_ = now;
    body_bytes_ = 0;
  }
  if (phase == RequestPhase::body) {
    body_bytes_ += bytes;
  }
  phase_ = phase;
}

void ClientDeadline::sending(Clock::time_point now) {
  if (!sending_) {
    sending_ = true;
    send_started_ = now;
    sent_bytes_ = 0;
  }
}

void ClientDeadline::sent(std::size_t bytes) { sent_bytes_ += bytes; }

void ClientDeadline::send_done(Clock::time_point now) {
  const bool waited = std::exchange(sending_, false);
  if (phase_ == RequestPhase::idle) {
    idle_since_ = now;  // keep-alive: the client may take its time from the answer on
  } else if (waited) {
    // A pipelined request already begun: while its client was reading the answer slowly (at
    // --min-rate), it could not be read; its header or body time runs from the answer's end.
    phase_started_ = now;
  }
}

ClientDeadline::Deadline ClientDeadline::next() const {
  if (sending_) {
    return {send_started_ + allowance(timeouts_.send, sent_bytes_), TimeoutKind::send};
  }
  switch (phase_) {
    case RequestPhase::idle:
      return between_requests();
    case RequestPhase::header:
      return {phase_started_ + timeouts_.header, TimeoutKind::header};
    case RequestPhase::body:
      return {phase_started_ + allowance(timeouts_.body, body_bytes_), TimeoutKind::body};
  }
  return between_requests();
}

ClientDeadline::Deadline ClientDeadline::between_requests() const {
  const Clock::time_point idle_end = idle_since_ + timeouts_.idle;
  const Clock::time_point lifetime_end = opened_ + timeouts_.max_lifetime;
  if (lifetime_end < idle_end) {
    return {lifetime_end, TimeoutKind::lifetime};
  }
  return {idle_end, TimeoutKind::idle};
}

bool ClientDeadline::lifetime_over(Clock::time_point now) const {
  return now >= opened_ + timeouts_.max_lifetime;
}

ClientDeadline::Clock::duration ClientDeadline::allowance(std::chrono::milliseconds grace,
                                                          std::uint64_t bytes) const {
  if (timeouts_.min_rate == 0) {
    return grace;
  }
  const std::chrono::duration<double> earned(static_cast<double>(bytes) /
                                             static_cast<double>(timeouts_.min_rate));
  return grace + std::chrono::duration_cast<Clock::duration>(earned);
}

}  // namespace echolab
