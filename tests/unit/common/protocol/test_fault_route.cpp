#include "common/protocol/fault_route.hpp"

#include <gtest/gtest.h>

#include <string>

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

TEST(MemoryRoute, RecognisesLeakWithItsPrefixAndCorrupt) {
  const ParsedMemoryRoute leak = parse_memory_route("/leak?x=1&prefix=canary0042");
  EXPECT_EQ(leak.route, MemoryRoute::leak);
  EXPECT_EQ(leak.token_prefix, "canary0042");
  EXPECT_EQ(parse_memory_route("/corrupt").route, MemoryRoute::corrupt);
  EXPECT_EQ(parse_fault_route("/leak?prefix=canary0042").route, FaultRoute::not_a_fault);
}

TEST(MemoryRoute, OtherPathsAreNotMemoryRoutes) {
  for (const char* path : {"/", "/leaks?prefix=canary0042", "/corrupted", "/crash"}) {
    EXPECT_EQ(parse_memory_route(path).route, MemoryRoute::not_a_memory_route) << path;
  }
}

TEST(MemoryRoute, APrefixMustBe8To64LettersAndDigits) {
  for (const char* path : {"/leak", "/leak?prefix=", "/leak?prefix=short12",
                           "/leak?prefix=canary-0042", "/leak?prefix=canary%2042"}) {
    EXPECT_EQ(parse_memory_route(path).route, MemoryRoute::invalid) << path;
  }
  EXPECT_EQ(parse_memory_route("/leak?prefix=" + std::string(64, 'a')).route, MemoryRoute::leak);
  EXPECT_EQ(parse_memory_route("/leak?prefix=" + std::string(65, 'a')).route, MemoryRoute::invalid);
}

}  // namespace
}  // namespace echolab
