// The bytes echolab-load sends, built once before the run so that sending a request is one
// write of a prebuilt buffer.
#pragma once

#include <cstddef>
#include <string>

#include "loadgen/load_options.hpp"

namespace echolab::load {

struct RequestTemplate {
  // `requests_per_batch` requests back to back; with --slow-headers, the request line and the
  // Host line of a head without its end.
  std::string batch;
  std::size_t requests_per_batch = 1;
  std::string payload;  // the body (POST) or the bytes (raw) the reply must echo
  bool reply_echoes_payload = false;
};

// `bytes` printable bytes ending in a newline. It starts with a lower-case letter, so a
// server that detects the protocol from the first bytes never takes it for an HTTP method.
std::string make_payload(std::size_t bytes);

RequestTemplate build_requests(const LoadOptions& options);

}  // namespace echolab::load
