// The floor responder's whole protocol: where requests end, and the fixed answer owed for each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace echolab::floor {

// Every request gets these bytes, whatever it asked.
inline constexpr std::string_view kAnswer =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!";

// Counts the ends of header sections ("\r\n\r\n") in a byte stream read in pieces of any size.
// Finding them is the floor's one concession to HTTP: without it a pipelined pair would get
// one answer and a request split over two reads two, and wrk would count either as an error.
// Bodies are not understood (a request with one is not answered correctly): the floor is
// measured with GETs only.
class RequestEndCounter {
 public:
  // The request ends completed by `bytes`, continuing the match left by the previous call.
  std::size_t feed(std::span<const char> bytes);

 private:
  std::size_t matched_ = 0;  // how much of "\r\n\r\n" the bytes so far end with
};

// The answers a connection still owes, as a byte count over kAnswer repeated, so that any
// number of pipelined answers costs one integer, not a buffer.
class AnswerQueue {
 public:
  void add(std::size_t answers) { unsent_ += answers * kAnswer.size(); }
  [[nodiscard]] bool empty() const { return unsent_ == 0; }
  // The next bytes to send: a slice of `repeated` (kAnswer back to back, at least once).
  [[nodiscard]] std::span<const char> next(std::span<const char> repeated) const;
  void sent(std::size_t bytes);

 private:
  std::uint64_t unsent_ = 0;
  std::size_t offset_ = 0;  // into kAnswer, where the next byte to send is
};

// kAnswer `copies` times back to back: what AnswerQueue::next slices.
std::span<const char> repeated_answers();

}  // namespace echolab::floor
