#include "bench/floor/answers.hpp"

#include <algorithm>
#include <array>

namespace echolab::floor {
namespace {

// Enough answers for one send() to carry a deep pipeline, small enough to stay in L1.
constexpr std::size_t kRepeatedCopies = 64;

constexpr std::string_view kRequestEnd = "\r\n\r\n";

}  // namespace

std::size_t RequestEndCounter::feed(std::span<const char> bytes) {
  std::size_t ends = 0;
  for (const char byte : bytes) {
    if (byte == kRequestEnd[matched_]) {
      ++matched_;
    } else {
      // A mismatched byte can still begin a new "\r\n" (as in "\r\r\n\r\n").
      matched_ = byte == '\r' ? 1 : 0;
    }
    if (matched_ == kRequestEnd.size()) {
      ++ends;
      matched_ = 0;
    }
  }
  return ends;
}

std::span<const char> AnswerQueue::next(std::span<const char> repeated) const {
  const std::size_t available = repeated.size() - offset_;
  return repeated.subspan(offset_,
                          static_cast<std::size_t>(std::min<std::uint64_t>(available, unsent_)));
}

void AnswerQueue::sent(std::size_t bytes) {
  unsent_ -= bytes;
  offset_ = (offset_ + bytes) % kAnswer.size();
}

std::span<const char> repeated_answers() {
  static const auto buffer = [] {
    std::array<char, kAnswer.size() * kRepeatedCopies> bytes{};
    for (std::size_t copy = 0; copy < kRepeatedCopies; ++copy) {
      std::copy(kAnswer.begin(), kAnswer.end(), bytes.begin() + copy * kAnswer.size());
    }
    return bytes;
  }();
  return buffer;
}

}  // namespace echolab::floor
