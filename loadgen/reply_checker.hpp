// Counts the replies in the bytes a connection receives and says when they are wrong,
// without sockets: echolab-load feeds it whatever each read returned.
//
// HTTP replies are framed by llhttp (status line, Content-Length or chunked, keep-alive);
// a status other than 200, broken framing, or a POST body that is not the payload sent is
// a bad reply, and so is one longer than its size limit (status line, headers and body),
// which is how an endless reply from a broken or hostile server ends. A raw echo must return
// the payload byte for byte.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "loadgen/load_options.hpp"

namespace echolab::load {

struct ReplyScan {
  std::size_t replies = 0;     // good replies completed by these bytes
  bool bad = false;            // the bytes break the protocol or the echo; stop reading
  bool oversized = false;      // with `bad`: the reply outgrew its size limit
  bool server_closes = false;  // the last complete reply announced the end of the connection
  std::string problem;         // what was wrong, when `bad`
};

class ReplyChecker {
 public:
  virtual ~ReplyChecker() = default;
  ReplyChecker() = default;
  ReplyChecker(const ReplyChecker&) = delete;
  ReplyChecker& operator=(const ReplyChecker&) = delete;
  ReplyChecker(ReplyChecker&&) = delete;
  ReplyChecker& operator=(ReplyChecker&&) = delete;

  // Forgets any partial reply: the next bytes come from a new connection.
  virtual void restart() = 0;
  virtual ReplyScan scan(std::span<const char> bytes) = 0;
  // The server closed the connection; completes a reply whose end is the close.
  virtual ReplyScan scan_end() = 0;
};

// `echo` is the payload each reply must carry back, or empty to accept any body (HTTP GET).
// The checker keeps a view of it, so it must outlive the checker. An HTTP reply longer than
// `max_reply_bytes` is bad (a raw echo reply is the payload's size by definition).
std::unique_ptr<ReplyChecker> make_reply_checker(WireProtocol protocol, std::string_view echo,
                                                 std::size_t max_reply_bytes);

// The status code of an HTTP reply from its first bytes ("HTTP/1.1 408 ..."), or nothing
// when they are not (or not yet) a status line.
std::optional<int> http_status_of(std::string_view first_bytes);

}  // namespace echolab::load
