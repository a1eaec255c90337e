#include "common/server/listener.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <system_error>

namespace echolab {
namespace {

[[noreturn]] void fail(int error, const Endpoint& endpoint, const char* what) {
  throw std::system_error(error, std::generic_category(),
                          std::string(what) + " " + endpoint.to_string());
}

UniqueFd bind_and_listen(const addrinfo& address, const Endpoint& endpoint, int backlog,
                         ListenerSharing sharing) {
  UniqueFd fd(socket(address.ai_family, address.ai_socktype | SOCK_CLOEXEC, address.ai_protocol));
  if (!fd) {
    fail(errno, endpoint, "socket for");
  }
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (sharing == ListenerSharing::reuse_port &&
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    fail(errno, endpoint, "SO_REUSEPORT for");
  }
  if (bind(fd.get(), address.ai_addr, address.ai_addrlen) != 0) {
    fail(errno, endpoint, "cannot bind");
  }
  if (listen(fd.get(), backlog) != 0) {
    fail(errno, endpoint, "cannot listen on");
  }
  return fd;
}

}  // namespace

UniqueFd open_listener(const Endpoint& endpoint, int backlog, ListenerSharing sharing) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(endpoint.port);
  if (const int status = getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
      status != 0) {
    throw std::system_error(EINVAL, std::generic_category(),
                            "cannot resolve " + endpoint.to_string() + ": " + gai_strerror(status));
  }
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  return bind_and_listen(*addresses, endpoint, backlog, sharing);
}

std::uint16_t local_port(int socket_fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(socket_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::system_error(errno, std::generic_category(), "getsockname");
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
}

}  // namespace echolab
