// One attack client of the slow-clients experiment (--slow-headers or --never-read). It does
// not measure requests: it measures how long the server lets it hold a connection, and how
// the server ends it.
//
// slow headers: sends "GET PATH HTTP/1.1" and a Host line, then one more header line every
//   interval, never ending the head; reads only to see the server's answer (e.g. 408).
// never read: sends the request batch again and again as fast as the socket takes it and
//   never reads a byte, so the server's replies pile up until its writes block.
//
// When the server closes, resets or answers, the connection records how long it was held
// and reconnects: the attack keeps its pressure on the server for the whole run, as a real
// one would, and every connection the server sheds is one more sample of how long it takes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "loadgen/client_connection.hpp"

namespace echolab::load {

class AttackConnection final : public ClientConnection {
 public:
  explicit AttackConnection(WorkerContext& context);

 private:
  void on_open() override;
  void check_open_timeout(Clock::time_point now) override;
  void on_open_at_end(Clock::time_point run_end) override;

  void send_header_line();
  void on_header_due(const asio::error_code& error);
  void read_answer();
  void on_answer(const asio::error_code& error, std::size_t length);
  void flood();
  void on_flooded(const asio::error_code& error, std::size_t bytes);
  // Sends a few bytes of the head without waiting. A slow-headers connection sends a few
  // bytes a second, so its socket buffer is never full; were it full, the part not taken is
  // dropped and the head stays as unfinished as it was meant to be.
  void send_now(std::string_view bytes);
  // The server closed, reset or answered: record the connection and open another.
  void ended_by_server();

  std::array<char, 16> answer_{};  // the first bytes of the server's answer: its status line
  std::size_t answer_length_ = 0;
  std::uint64_t sent_ = 0;  // bytes sent on this connection
};

}  // namespace echolab::load
