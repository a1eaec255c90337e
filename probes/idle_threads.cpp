#include "probes/idle_threads.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "probes/probe_error.hpp"

namespace echolab::probe {
namespace {

constexpr std::chrono::seconds kReadyTimeout{30};

// Each level owns one 4 KiB frame, so `pages` nested calls make about that many stack pages
// resident. The frame is written at both ends so the compiler cannot shrink it.
[[gnu::noinline]] int write_stack_pages(std::size_t pages) {
  volatile char frame[4096];
  frame[0] = 1;
  frame[sizeof frame - 1] = 1;
  if (pages <= 1) return frame[0];
  return write_stack_pages(pages - 1) + frame[sizeof frame - 1];
}

}  // namespace

std::size_t default_stack_bytes() {
  pthread_attr_t attributes;
  if (::pthread_getattr_default_np(&attributes) != 0) {
    throw ProbeError("pthread_getattr_default_np failed");
  }
  std::size_t bytes = 0;
  ::pthread_attr_getstacksize(&attributes, &bytes);
  ::pthread_attr_destroy(&attributes);
  return bytes;
}

IdleThreads::IdleThreads(int count, std::size_t stack_bytes, std::size_t touch_bytes)
    : touch_pages_(std::max<std::size_t>(1, touch_bytes / 4096)) {
  try {
    start(count, stack_bytes);
    wait_until_all_ready(count);
  } catch (...) {
    release_and_join();
    throw;
  }
}

IdleThreads::~IdleThreads() { release_and_join(); }

void* IdleThreads::run(void* self) {
  auto& threads = *static_cast<IdleThreads*>(self);
  write_stack_pages(threads.touch_pages_);
  std::unique_lock lock(threads.mutex_);
  ++threads.ready_;
  threads.changed_.notify_all();
  threads.changed_.wait(lock, [&] { return threads.released_; });
  return nullptr;
}

void IdleThreads::start(int count, std::size_t stack_bytes) {
  pthread_attr_t attributes;
  ::pthread_attr_init(&attributes);
  const int stack_error =
      stack_bytes == 0 ? 0 : ::pthread_attr_setstacksize(&attributes, stack_bytes);
  threads_.reserve(static_cast<std::size_t>(count));
  for (int index = 0; index < count && stack_error == 0; ++index) {
    pthread_t thread{};
    const int error = ::pthread_create(&thread, &attributes, &IdleThreads::run, this);
    if (error != 0) {
      ::pthread_attr_destroy(&attributes);
      throw ProbeError("pthread_create failed after " + std::to_string(index) +
                       " threads: " + std::strerror(error));
    }
    threads_.push_back(thread);
  }
  ::pthread_attr_destroy(&attributes);
  if (stack_error != 0) {
    throw ProbeError("a stack of " + std::to_string(stack_bytes) +
                     " bytes is refused: " + std::strerror(stack_error));
  }
}

void IdleThreads::wait_until_all_ready(int count) {
  std::unique_lock lock(mutex_);
  if (!changed_.wait_for(lock, kReadyTimeout, [&] { return ready_ == count; })) {
    throw ProbeError("only " + std::to_string(ready_) + " of " + std::to_string(count) +
                     " threads started within " + std::to_string(kReadyTimeout.count()) + " s");
  }
}

void IdleThreads::release_and_join() noexcept {
  {
    const std::lock_guard lock(mutex_);
    released_ = true;
  }
  changed_.notify_all();
  for (const pthread_t thread : threads_) ::pthread_join(thread, nullptr);
  threads_.clear();
}

}  // namespace echolab::probe
