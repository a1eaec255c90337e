#include "common/server/stop_signal.hpp"

#include <gtest/gtest.h>
#include <poll.h>

namespace echolab {
namespace {

bool readable(int fd) {
  pollfd entry{fd, POLLIN, 0};
  return poll(&entry, 1, 0) > 0;
}

TEST(StopSignal, BroadcastIsSeenByEveryPollerForGood) {
  StopSignal stop;
  EXPECT_FALSE(readable(stop.fd()));
  stop.broadcast();
  EXPECT_TRUE(readable(stop.fd()));
  EXPECT_TRUE(readable(stop.fd()));  // level, not edge: every poller sees it
  stop.broadcast();                  // idempotent
  EXPECT_TRUE(readable(stop.fd()));
}

}  // namespace
}  // namespace echolab
