#include "loadgen/request_template.hpp"

#include <string_view>

namespace echolab::load {

std::string make_payload(std::size_t bytes) {
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string payload(bytes, '\n');
  for (std::size_t i = 0; i + 1 < bytes; ++i) {
    payload[i] = kAlphabet[i % kAlphabet.size()];
  }
  return payload;
}

namespace {

std::string http_request(const LoadOptions& options, const std::string& payload) {
  std::string request;
  request += to_string(options.method);
  request += ' ';
  request += options.path;
  request += " HTTP/1.1\r\nHost: ";
  request += options.target.to_string();
  request += "\r\n";
  if (options.attack() == AttackMode::slow_headers) {
    return request;  // a head that its connection then never finishes
  }
  if (options.new_connection_per_request) {
    // The server closes first, so TIME_WAIT piles up on its side, not in our port range.
    request += "Connection: close\r\n";
  }
  if (options.method == HttpMethod::post) {
    request += "Content-Type: application/octet-stream\r\nContent-Length: ";
    request += std::to_string(payload.size());
    request += "\r\n";
  }
  request += "\r\n";
  request += payload;
  return request;
}

}  // namespace

RequestTemplate build_requests(const LoadOptions& options) {
  RequestTemplate requests;
  requests.reply_echoes_payload = options.sends_payload();
  if (requests.reply_echoes_payload) {
    requests.payload = make_payload(options.payload_bytes);
  }
  const std::string one = options.protocol == WireProtocol::http
                              ? http_request(options, requests.payload)
                              : requests.payload;
  requests.requests_per_batch = options.pipeline;
  requests.batch.reserve(one.size() * options.pipeline);
  for (std::size_t i = 0; i < options.pipeline; ++i) {
    requests.batch += one;
  }
  return requests;
}

}  // namespace echolab::load
