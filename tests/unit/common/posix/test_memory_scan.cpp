#include "common/posix/memory_scan.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace echolab {
namespace {

using std::string_view_literals::operator""sv;

TEST(ReadableMappings, KeepsOnlyMappingsWithReadPermission) {
  const std::string maps =
      "55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/x\n"
      "7f0000000000-7f0000021000 ---p 00000000 00:00 0 \n"
      "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n"
      "not a mapping line\n";
  const std::vector<Mapping> expected = {{0x55d0c0000000, 0x55d0c0001000},
                                         {0x7ffd00000000, 0x7ffd00021000}};
  EXPECT_EQ(readable_mappings(maps), expected);
}

TEST(CollectTokens, TakesThePrefixAndTheLettersAndDigitsAfterIt) {
  std::set<std::string> found;
  collect_tokens("..canaryABC123 x canaryZ;canary \0canary"sv, "canary", 100, found, 10);
  EXPECT_EQ(found, (std::set<std::string>{"canaryABC123", "canaryZ"}));
}

TEST(CollectTokens, LeavesTokensStartingPastTheBoundAndStopsAtTheLimit) {
  std::set<std::string> found;
  collect_tokens("canaryA canaryB canaryC", "canary", 10, found, 10);
  EXPECT_EQ(found, (std::set<std::string>{"canaryA", "canaryB"}));
  found.clear();
  collect_tokens("canaryA canaryB canaryC", "canary", 100, found, 1);
  EXPECT_EQ(found.size(), 1U);
}

TEST(ScanOwnMemory, FindsATokenInItsHeapAndSaysWhichProcess) {
  // Built at run time so that the whole token is nowhere in the binary.
  const auto held = std::make_unique<std::string>("scantest" + std::to_string(::getpid()) + "Qz");
  const std::string body = scan_own_memory("scantest");
  EXPECT_NE(body.find("token " + *held + "\n"), std::string::npos) << body;
  EXPECT_TRUE(body.starts_with("pid " + std::to_string(::getpid()) + "\n")) << body;
  EXPECT_EQ(body.find("stopped"), std::string::npos) << body;
}

TEST(ScanOwnMemory, SkipsMappingsLargerThanItsBoundAndCountsThem) {
  const auto held = std::make_unique<std::string>(std::string("scantest") + "large" + "Abc");
  MemoryScanLimits limits;
  limits.max_mapping_bytes = 0;
  const std::string body = scan_own_memory("scantest", limits);
  EXPECT_NE(body.find("\nmappings 0 read, 0 unreadable, "), std::string::npos) << body;
  EXPECT_NE(body.find("\ntokens 0\n"), std::string::npos) << body;
}

TEST(ScanOwnMemory, StopsAtItsLimitsAndSaysSo) {
  const auto held = std::make_unique<std::string>(std::string("scantest") + "limit" + "Abc");
  MemoryScanLimits limits;
  limits.max_bytes = 1;
  EXPECT_NE(scan_own_memory("scantest", limits).find("stopped byte limit\n"), std::string::npos);
}

}  // namespace
}  // namespace echolab
