// Protocol settings shared by every server (and set by the same command-line flags).
#pragma once

#include <cstddef>

namespace echolab {

enum class Protocol { undecided, http, raw };

// `detect` chooses per connection from its first bytes; the others force one protocol.
enum class ProtocolMode { detect, http, raw };

struct ProtocolLimits {
  std::size_t max_header_bytes = 8 * 1024;   // request line + headers + blank line -> 431
  std::size_t max_body_bytes = 1024 * 1024;  // decoded body (chunked too) -> 413
  // The Nth answer on a connection says `Connection: close`, and the connection closes after
  // it (nginx's keepalive_requests; 0: no cap). HTTP only: raw echo has no requests, only
  // reads, and is bounded by --max-connection-lifetime instead. Off by default: the lifetime
  // is what frees a worker from a trickling client, and a cap would close every benchmark's
  // keep-alive connections each N requests, losing what a client pipelined past the Nth.
  std::size_t max_requests_per_connection = 0;
};

struct ProtocolConfig {
  ProtocolMode mode = ProtocolMode::detect;
  ProtocolLimits limits;
  bool fault_injection = false;  // /crash, /sleep, /burn, /leak, /corrupt; off unless asked for
};

}  // namespace echolab
