#include "common/protocol/fault_route.hpp"

#include <gtest/gtest.h>

namespace echolab {
namespace {

TEST(FaultRoute, RecognisesTheThreeRoutes) {
  EXPECT_EQ(parse_fault_route("/crash").action.kind, FaultAction::Kind::crash);
  const ParsedFault sleep = parse_fault_route("/sleep?ms=250");
  EXPECT_EQ(sleep.route, FaultRoute::valid);
  EXPECT_EQ(sleep.action.duration, std::chrono::milliseconds(250));
  EXPECT_EQ(parse_fault_route("/burn?x=1&us=40").action.duration, std::chrono::microseconds(40));
}

TEST(FaultRoute, OtherPathsAreNotFaults) {
  for (const char* path : {"/", "/crashes", "/sleepy", "/index.html?ms=3"}) {
    EXPECT_EQ(parse_fault_route(path).route, FaultRoute::not_a_fault) << path;
  }
}

TEST(FaultRoute, MissingOrOutOfRangeValuesAreInvalid) {
  for (const char* path : {"/sleep", "/sleep?ms=", "/sleep?ms=-1", "/sleep?ms=60001", "/burn?us=1x",
                           "/burn?us=10000001"}) {
    EXPECT_EQ(parse_fault_route(path).route, FaultRoute::invalid) << path;
  }
  EXPECT_EQ(parse_fault_route("/sleep?ms=60000").route, FaultRoute::valid);
}

}  // namespace
}  // namespace echolab
