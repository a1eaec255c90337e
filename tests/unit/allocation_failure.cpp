// The replaced allocation functions of tests/unit/allocation_failure.hpp: one definition per
// test executable, so in a file of their own.
#include "tests/unit/allocation_failure.hpp"

#include <cstdlib>
#include <new>

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
