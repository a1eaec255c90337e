// Out of memory where a test chooses: this replaces the global operator new and aligned_alloc()
// of the test executable that includes it (in one file only), so that allocations of at least a
// given size fail while a LargeAllocationsFail is alive.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

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

// clang-tidy's analyzer follows the malloc() below into Asio's inlined `delete` and reports a
// mismatch it cannot see is paired with the operator delete below: it analyzes the tests
// with the standard operators.
#if !defined(ECHOLAB_THREAD_SANITIZER) && !defined(__clang_analyzer__)
void* operator new(std::size_t size) {
  const std::size_t limit = echolab::fail_allocations_from.load(std::memory_order_relaxed);
  if (limit != 0 && size >= limit) {
    throw std::bad_alloc();
  }
  if (void* memory = std::malloc(size == 0 ? 1 : size)) {  // NOLINT(*-no-malloc)
    return memory;
  }
  throw std::bad_alloc();
}
// Asio takes its handlers' memory from aligned_alloc(), not operator new: it fails the same way
// (this definition, in the executable, comes before the C library's).
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  const std::size_t limit = echolab::fail_allocations_from.load(std::memory_order_relaxed);
  void* memory = nullptr;
  if ((limit != 0 && size >= limit) || posix_memalign(&memory, alignment, size) != 0) {
    return nullptr;
  }
  return memory;
}
// GCC sees free() of memory from operator new where it inlines these: here they are a pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* memory) noexcept { std::free(memory); }  // NOLINT(*-no-malloc)
void operator delete(void* memory, std::size_t /*size*/) noexcept {
  std::free(memory);  // NOLINT(*-no-malloc)
}
#pragma GCC diagnostic pop
#endif

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
