#include "common/drivers/perform_fault.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>

namespace echolab {
namespace {

TEST(FaultPerform, SleepBlocksForTheDuration) {
  const auto started = std::chrono::steady_clock::now();
  perform({FaultAction::Kind::sleep, std::chrono::milliseconds(20)});
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(20));
}

TEST(FaultPerformDeathTest, CrashIsARealSegfault) {
  EXPECT_EXIT(perform({FaultAction::Kind::crash, {}}), testing::KilledBySignal(SIGSEGV), "");
}

}  // namespace
}  // namespace echolab
