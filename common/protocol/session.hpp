// The sans-I/O protocol core every server drives: bytes in, response bytes out.
// A Session knows nothing of sockets, threads or clocks, so the four servers differ only
// in how they move bytes between a socket and this object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/fault_route.hpp"
#include "common/protocol/protocol_config.hpp"

namespace echolab {

// Where the connection stands in its current request, for the driver's timeouts: between
// requests (idle), inside a request's header section, or inside its body (trailers too).
enum class RequestPhase { idle, header, body };

// Reads the memory of the calling process for tokens that start with `prefix` and returns the
// body of the /leak answer. It makes system calls, so the Session only calls the one it is
// given: the drivers give common/posix/memory_scan.hpp's, the unit tests their own. (Not a
// field of ProtocolConfig: prefork's configuration crosses an exec as bytes, and a function's
// address does not.)
using MemoryScanner = std::string (*)(std::string_view prefix);

// What one call to Session::feed() produced, for the driver to act on and to report.
struct FeedResult {
  // Responses queued by this call (every status). Raw echo has no requests: there it counts
  // the chunks echoed, one per call that received bytes.
  std::size_t requests = 0;
  std::vector<int> error_statuses;  // the non-2xx statuses among them (400, 404, 413, ...)
  std::vector<FaultAction> faults;  // to carry out before the output is sent
};

class Session {
 public:
  // Without a scanner, /leak answers 501.
  explicit Session(const ProtocolConfig& config, MemoryScanner scan_memory = nullptr);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Consumes every byte of `input` (bytes after a closing response are discarded) and
  // appends the responses to output().
  FeedResult feed(std::span<const char> input);

  // Bytes waiting to be sent; the driver sends them and reports with output_sent().
  [[nodiscard]] const std::string& output() const { return output_; }
  void output_sent(std::size_t bytes);

  // True once the connection must be closed after output() has been sent.
  [[nodiscard]] bool close_after_flush() const { return close_after_flush_; }

  // True between requests: nothing of a request has been received yet. A graceful
  // shutdown closes connections only in this state.
  [[nodiscard]] bool idle() const { return phase() == RequestPhase::idle; }
  [[nodiscard]] RequestPhase phase() const;

  // The client took too long: the connection closes after flush, and a request it had begun
  // (HTTP) is answered 408, reported in the result like any answer.
  FeedResult time_out();

  // The connection has lived long enough (--max-connection-lifetime): the HTTP request being
  // read, or the next, is its last and is answered with `Connection: close`. Raw echo has no
  // such answer; its driver closes it at the next point between reads.
  void end_keep_alive();

  [[nodiscard]] Protocol protocol() const { return protocol_; }

 private:
  class HttpParser;
  class RawEcho;

  // Sniffs the first bytes; false while they could still start either protocol (they are
  // then held in detect_buffer_).
  bool detect_protocol(std::span<const char>& input);
  void start(Protocol protocol);
  void dispatch(std::span<const char> input, FeedResult& result);

  // Gives back a buffer that a large request grew, so that an idle keep-alive connection
  // holds only its base size (10,000 idle connections after a 1 MiB POST each would
  // otherwise keep about 20 GiB).
  void release_large_output();
  // What feed() does; feed() adds the answer to an allocation failure.
  void feed_input(std::span<const char> input, FeedResult& result);
  void answer_out_of_memory(FeedResult& result);

  // On the heap, so that the parser's reference to it survives a move of the Session.
  std::unique_ptr<const ProtocolConfig> config_;
  MemoryScanner scan_memory_ = nullptr;
  Protocol protocol_ = Protocol::undecided;
  std::string detect_buffer_;  // first bytes held back until the protocol is known
  std::string output_;
  bool close_after_flush_ = false;
  bool keep_alive_ended_ = false;  // for a protocol not yet detected
  std::unique_ptr<HttpParser> http_;
  std::unique_ptr<RawEcho> raw_;
};

}  // namespace echolab
