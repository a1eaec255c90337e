// Threads of this process that each write a little of their stack and then wait on a
// condition variable, costing no CPU: the shape of a thread-per-connection server's idle
// workers. They share the process's one address space.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

namespace echolab::probe {

// The stack size a thread gets when none is asked for (glibc takes it from RLIMIT_STACK).
std::size_t default_stack_bytes();

class IdleThreads {
 public:
  // `stack_bytes` 0 means the default stack size. Returns once every thread has written its
  // stack; throws ProbeError if one cannot be created or they are not all ready within 30 s.
  // The destructor releases and joins them, on every path.
  IdleThreads(int count, std::size_t stack_bytes, std::size_t touch_bytes);
  ~IdleThreads();
  IdleThreads(const IdleThreads&) = delete;
  IdleThreads& operator=(const IdleThreads&) = delete;
  IdleThreads(IdleThreads&&) = delete;
  IdleThreads& operator=(IdleThreads&&) = delete;

 private:
  static void* run(void* self);
  void start(int count, std::size_t stack_bytes);
  void wait_until_all_ready(int count);
  void release_and_join() noexcept;

  std::size_t touch_pages_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int ready_ = 0;
  bool released_ = false;
  std::vector<pthread_t> threads_;
};

}  // namespace echolab::probe
