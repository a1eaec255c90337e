// Out of memory where a test chooses: allocation_failure.cpp, linked into the test executables
// of the folders whose tests include this header, replaces their global operator new and
// aligned_alloc(), so that allocations of at least a given size fail while a
// LargeAllocationsFail is alive.
#pragma once

#include <atomic>
#include <cstddef>

// ThreadSanitizer's runtime defines the global operator new itself, and a second definition
// fails the link: under it the out-of-memory cases are skipped; every other build runs them.
#if defined(__SANITIZE_THREAD__)
#define ECHOLAB_THREAD_SANITIZER
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ECHOLAB_THREAD_SANITIZER
#endif
#endif

namespace echolab {

// Allocations of at least this many bytes fail while it is not 0: an out-of-memory condition
// that strikes where a test chooses (a long URL, a large body), and nowhere else.
inline std::atomic<std::size_t> fail_allocations_from{0};

#ifdef ECHOLAB_THREAD_SANITIZER
inline constexpr bool kAllocationsCanFail = false;
#else
inline constexpr bool kAllocationsCanFail = true;
#endif

}  // namespace echolab

namespace echolab {

class LargeAllocationsFail {
 public:
  explicit LargeAllocationsFail(std::size_t from) { fail_allocations_from = from; }
  ~LargeAllocationsFail() { fail_allocations_from = 0; }
  LargeAllocationsFail(const LargeAllocationsFail&) = delete;
  LargeAllocationsFail& operator=(const LargeAllocationsFail&) = delete;
  LargeAllocationsFail(LargeAllocationsFail&&) = delete;
  LargeAllocationsFail& operator=(LargeAllocationsFail&&) = delete;
};

}  // namespace echolab
