#include "loadgen/request_template.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "loadgen/reply_checker.hpp"

namespace echolab::load {
namespace {

LoadOptions http_options() {
  LoadOptions options;
  options.target = parse_target("127.0.0.1:8082");
  return options;
}

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++count;
  }
  return count;
}

TEST(MakePayload, HasTheSizeAskedAndCannotPassForAnHttpMethod) {
  for (const std::size_t size : {1u, 2u, 64u, 1000u}) {
    const std::string payload = make_payload(size);
    EXPECT_EQ(payload.size(), size);
    EXPECT_FALSE(std::isupper(static_cast<unsigned char>(payload[0])));
    EXPECT_EQ(payload.back(), '\n');
  }
  EXPECT_EQ(make_payload(5), "abcd\n");
}

TEST(BuildRequests, GetIsAMinimalKeepAliveRequest) {
  const RequestTemplate requests = build_requests(http_options());
  EXPECT_EQ(requests.batch, "GET / HTTP/1.1\r\nHost: 127.0.0.1:8082\r\n\r\n");
  EXPECT_EQ(requests.requests_per_batch, 1u);
  EXPECT_FALSE(requests.reply_echoes_payload);
}

TEST(BuildRequests, PostCarriesThePayloadWithItsLength) {
  LoadOptions options = http_options();
  options.method = HttpMethod::post;
  options.path = "/echo";
  options.payload_bytes = 100;
  const RequestTemplate requests = build_requests(options);
  EXPECT_TRUE(requests.batch.starts_with("POST /echo HTTP/1.1\r\n"));
  EXPECT_NE(requests.batch.find("Content-Length: 100\r\n"), std::string::npos);
  EXPECT_TRUE(requests.batch.ends_with("\r\n\r\n" + make_payload(100)));
  EXPECT_EQ(requests.payload, make_payload(100));
  EXPECT_TRUE(requests.reply_echoes_payload);
}

TEST(BuildRequests, PipelineRepeatsTheRequestInOneBatch) {
  LoadOptions options = http_options();
  options.pipeline = 16;
  const RequestTemplate requests = build_requests(options);
  EXPECT_EQ(requests.requests_per_batch, 16u);
  EXPECT_EQ(occurrences(requests.batch, "GET / HTTP/1.1\r\n"), 16u);
}

TEST(BuildRequests, ChurnAsksTheServerToClose) {
  LoadOptions options = http_options();
  options.new_connection_per_request = true;
  EXPECT_NE(build_requests(options).batch.find("Connection: close\r\n"), std::string::npos);
}

TEST(BuildRequests, RawSendsThePayloadAlone) {
  LoadOptions options = http_options();
  options.protocol = WireProtocol::raw;
  options.payload_bytes = 32;
  options.pipeline = 2;
  const RequestTemplate requests = build_requests(options);
  EXPECT_EQ(requests.batch, make_payload(32) + make_payload(32));
  EXPECT_TRUE(requests.reply_echoes_payload);
  // The batch echoed back is exactly what the raw checker counts as two replies.
  // A named object: GCC 12 at -O3 warns that a temporary LoadOptions' strings "may be used
  // uninitialized" once they are inlined away (-Werror=maybe-uninitialized in Release builds).
  const LoadOptions defaults;
  const auto checker =
      make_reply_checker(WireProtocol::raw, requests.payload, defaults.max_response_bytes);
  EXPECT_EQ(
      checker->scan(std::span<const char>(requests.batch.data(), requests.batch.size())).replies,
      2u);
}

}  // namespace
}  // namespace echolab::load
