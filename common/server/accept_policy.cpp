#include "common/server/accept_policy.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/server/log.hpp"

namespace echolab {

AcceptFailure classify_accept_error(int error) {
  switch (error) {
    case EINTR:
    case ECONNABORTED:  // the client reset the connection while it was queued
    case EPROTO:
      return AcceptFailure::retry;
    case EAGAIN:  // a non-blocking listener with nothing queued (prefork's shutdown sets it)
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return AcceptFailure::pause;
    default:
      return AcceptFailure::fatal;
  }
}

AcceptFailure AcceptPolicy::failed(int error) {
  const AcceptFailure failure = classify_accept_error(error);
  if (failure == AcceptFailure::pause && error != EAGAIN &&
      !std::exchange(logged_shortage_, true)) {
    log_error("limit_reached",
              {{"limit", error == EMFILE || error == ENFILE ? "open files" : "kernel memory"},
               {"error", std::strerror(error)}});
  }
  return failure;
}

bool AcceptPolicy::admit(std::size_t open) {
  accepted();
  if (max_connections_ != 0 && open >= max_connections_) {
    if (!std::exchange(logged_full_, true)) {
      log_event("limit_reached", {{"limit", "max-connections"}, {"value", max_connections_}});
    }
    return false;
  }
  logged_full_ = false;
  return true;
}

}  // namespace echolab
