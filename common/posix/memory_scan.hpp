// What a compromised request handler can read: the memory of its own process, every readable
// mapping of it, searched for tokens that other clients sent. The /leak fault route answers
// with scan_own_memory(); it reads through /proc/self/mem, so a page that cannot be read is an
// error counted in the answer, never a crash, and it never reads another process.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace echolab {

struct Mapping {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  friend bool operator==(const Mapping&, const Mapping&) = default;
};

// The readable mappings listed in the text of /proc/<pid>/maps ("r" in the permissions).
std::vector<Mapping> readable_mappings(std::string_view maps);

// A token is its prefix followed by 1 to kMaxTokenTail letters and digits.
inline constexpr std::size_t kMaxTokenTail = 64;

// Adds to `found` each token in `bytes` that starts with `prefix` and begins before
// `starts_before` (the rest is read again with the next piece), until `found` holds
// `max_tokens`.
void collect_tokens(std::string_view bytes, std::string_view prefix, std::size_t starts_before,
                    std::set<std::string>& found, std::size_t max_tokens);

// Bounds on one scan, so that a /leak request costs its worker a bounded time and answer.
struct MemoryScanLimits {
  std::size_t max_tokens = 4096;
  std::uint64_t max_bytes = std::uint64_t{8} << 30;
  std::chrono::milliseconds max_time{20'000};
  // A larger mapping is a reservation, not a server's data (a sanitizer's shadow memory is
  // terabytes of zero pages): it is skipped and counted.
  std::uint64_t max_mapping_bytes = std::uint64_t{1} << 30;
};

// The body of the /leak answer: "pid N", "mappings R read, U unreadable, S too large", "bytes B",
// "tokens T", then "token <text>" per token found, and "stopped <why>" if a limit cut it short.
std::string scan_own_memory(std::string_view prefix, const MemoryScanLimits& limits);
std::string scan_own_memory(std::string_view prefix);

}  // namespace echolab
