#include "common/server/listener.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <system_error>

namespace echolab {
namespace {

TEST(Listener, BindsAnEphemeralLoopbackPort) {
  const UniqueFd fd = open_listener({"127.0.0.1", 0}, 16);
  EXPECT_GT(local_port(fd.get()), 0);
}

TEST(Listener, BusyPortIsAnErrorNamingTheEndpoint) {
  const UniqueFd fd = open_listener({"127.0.0.1", 0}, 16);
  const Endpoint taken{"127.0.0.1", local_port(fd.get())};
  try {
    static_cast<void>(open_listener(taken, 16));
    ADD_FAILURE() << "a second bind succeeded";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find(taken.to_string()), std::string::npos);
  }
}

TEST(Listener, ReusePortSocketsShareOnePortAndAnExclusiveOneCannotJoin) {
  const UniqueFd first = open_listener({"127.0.0.1", 0}, 16, ListenerSharing::reuse_port);
  const Endpoint shared{"127.0.0.1", local_port(first.get())};
  const UniqueFd second = open_listener(shared, 16, ListenerSharing::reuse_port);
  EXPECT_EQ(local_port(second.get()), shared.port);
  EXPECT_THROW(static_cast<void>(open_listener(shared, 16)), std::system_error);
}

TEST(Listener, UnresolvableHostIsAnError) {
  EXPECT_THROW(static_cast<void>(open_listener({"no.such.host.invalid", 0}, 16)),
               std::system_error);
}

}  // namespace
}  // namespace echolab
