// The floor responder's two event loops, one per backend. Each serves one worker process's
// listening socket until the process is killed: the floor has no graceful shutdown to measure.
#pragma once

namespace echolab::floor {

// epoll, level-triggered; `listener` must be non-blocking.
[[noreturn]] void run_epoll_loop(int listener);

// io_uring (liburing): one operation in flight per connection, a receive or a send.
[[noreturn]] void run_io_uring_loop(int listener);

}  // namespace echolab::floor
