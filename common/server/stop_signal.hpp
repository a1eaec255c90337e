// A broadcast "stop" that blocking workers can poll() on beside their socket.
// Closing the write end of a pipe makes the read end readable (EOF) for every poller at
// once and for good, in every thread and every forked child that holds it.
#pragma once

namespace echolab {

class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  [[nodiscard]] int fd() const { return read_fd_; }
  void broadcast();                    // idempotent; async-signal-safe
  [[nodiscard]] bool stopped() const;  // non-blocking check
  void close_write_end_in_child();     // a forked child must not keep the pipe open

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace echolab
