// Whether closing a connection now, after an answer that asked to close it, could destroy that
// answer: closing with client bytes unread sends a reset, and so does a client byte that arrives
// after the close, and a reset discards what is still in flight (RFC 9112 §9.6). Both drivers
// then close lingering instead (shut the sending side, drop what comes until the client closes
// or --linger-timeout passes). A receive queue with bytes (or the client's FIN) or a send
// queue with bytes not yet acknowledged is that case; an answer delivered to a client that sent
// nothing more is not, and closes at once.
#pragma once

#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>

namespace echolab {

inline bool close_could_reset_answer(int socket_fd) {
  pollfd fd{socket_fd, POLLIN, 0};
  int unacknowledged = 0;
  return poll(&fd, 1, 0) > 0 ||
         (ioctl(socket_fd, SIOCOUTQ, &unacknowledged) == 0 && unacknowledged > 0);
}

}  // namespace echolab
