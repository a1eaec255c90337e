// What every server does around accept(), whatever its model: which failures are worth a
// retry, which mean the process is out of a resource (pause, so as not to spin on a full
// descriptor table), and the connection cap (--max-connections). A limit is logged once per
// episode, not once per connection: the first connection it stops, and again only after a
// connection got through in between, so a flood cannot flood the log too.
#pragma once

#include <chrono>
#include <cstddef>

namespace echolab {

enum class AcceptFailure {
  retry,  // the connection went away before it was taken (or a signal came): accept again
  pause,  // out of descriptors or memory, or a listener made non-blocking: wait kAcceptPause
  fatal,  // the listener itself is unusable
};

// Long enough that connections can finish and free what the next accept() needs; short enough
// that a queued client hardly notices.
inline constexpr std::chrono::milliseconds kAcceptPause{10};

// `error` is accept()'s errno.
[[nodiscard]] AcceptFailure classify_accept_error(int error);

class AcceptPolicy {
 public:
  // 0 = no cap (a prefork child serves one connection at a time: the workers are the cap).
  explicit AcceptPolicy(std::size_t max_connections = 0) : max_connections_(max_connections) {}

  // accept() failed with `error`: what to do; a shortage of a resource is logged
  // (event=limit_reached) once per episode.
  AcceptFailure failed(int error);

  // accept() gave a connection: a shortage, if there was one, is over.
  void accepted() { logged_shortage_ = false; }

  // A connection was accepted while `open` others are: true if it may be served (accepted()
  // is implied). A refusal is logged once per episode; the caller closes the connection and
  // counts it as rejected.
  bool admit(std::size_t open);

 private:
  std::size_t max_connections_;
  bool logged_shortage_ = false;
  bool logged_full_ = false;
};

}  // namespace echolab
