// Feeds arbitrary bytes to a Session, split at a point the input chooses, under every
// protocol mode, and checks the invariants the servers rely on.
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/protocol/session.hpp"

namespace {

void feed_in_two_parts(echolab::ProtocolMode mode, bool faults, std::span<const char> input,
                       std::size_t split) {
  echolab::ProtocolConfig config;
  config.mode = mode;
  config.fault_injection = faults;
  config.limits.max_header_bytes = 512;
  config.limits.max_body_bytes = 1024;
  echolab::Session session(config);
  std::size_t answered = 0;
  for (const auto part : {input.first(split), input.subspan(split)}) {
    const echolab::FeedResult result = session.feed(part);
    answered += result.requests;
    if (result.error_statuses.size() > result.requests) {
      __builtin_trap();  // every error status belongs to an answered request
    }
    session.output_sent(session.output().size());
  }
  // A closing session answered something (the error or the closing response) first.
  if (session.close_after_flush() && answered == 0) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::size_t split = data[0] % size;
  const std::span<const char> input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t at = std::min(split, input.size());
  feed_in_two_parts(echolab::ProtocolMode::detect, (data[0] & 0x80) != 0, input, at);
  feed_in_two_parts(echolab::ProtocolMode::http, false, input, at);
  return 0;
}
