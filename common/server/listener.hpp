// Opens the listening TCP socket every server accepts on.
#pragma once

#include "common/posix/unique_fd.hpp"
#include "common/server/server_options.hpp"

namespace echolab {

// Whether other sockets may bind the same port: SO_REUSEPORT lets several listening sockets
// (of one user) share it, the kernel spreading new connections over them.
enum class ListenerSharing { exclusive, reuse_port };

// A bound, listening socket (SO_REUSEADDR, close-on-exec). Throws std::system_error with
// the endpoint in the message when the address cannot be resolved, bound or listened on.
[[nodiscard]] UniqueFd open_listener(const Endpoint& endpoint, int backlog,
                                     ListenerSharing sharing = ListenerSharing::exclusive);

// The port a listening socket is bound to (useful after binding port 0).
std::uint16_t local_port(int socket_fd);

}  // namespace echolab
