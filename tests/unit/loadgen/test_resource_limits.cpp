#include "loadgen/resource_limits.hpp"

#include <gtest/gtest.h>

#include <string>

namespace echolab::load {
namespace {

SystemLimits roomy() {
  SystemLimits limits;
  limits.open_files_soft = 100'000;
  limits.open_files_hard = 100'000;
  limits.ephemeral_port_low = 1024;
  limits.ephemeral_port_high = 65535;
  return limits;
}

TEST(ResourceLimits, EnoughRoomIsNoProblem) {
  EXPECT_FALSE(limits_problem(roomy(), 10'000, 2).has_value());
}

TEST(ResourceLimits, DescriptorsCoverSocketsPlusTheProcessOwn) {
  EXPECT_GT(descriptors_needed(10'000, 2), 10'000u);
  EXPECT_GT(descriptors_needed(10'000, 8), descriptors_needed(10'000, 2));
}

TEST(ResourceLimits, LowOpenFileLimitSaysHowToRaiseIt) {
  SystemLimits limits = roomy();
  limits.open_files_soft = 1024;
  const auto problem = limits_problem(limits, 10'000, 2);
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("ulimit -n " + std::to_string(descriptors_needed(10'000, 2))),
            std::string::npos)
      << *problem;
  EXPECT_EQ(problem->find("hard limit"), std::string::npos) << *problem;
}

TEST(ResourceLimits, LowHardLimitNeedsRoot) {
  SystemLimits limits = roomy();
  limits.open_files_soft = 20'000;
  limits.open_files_hard = 20'000;
  const auto problem = limits_problem(limits, 30'000, 2);
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("hard limit (20000)"), std::string::npos) << *problem;
}

TEST(ResourceLimits, NarrowPortRangeSaysHowToWidenIt) {
  SystemLimits limits = roomy();
  limits.ephemeral_port_low = 32768;
  limits.ephemeral_port_high = 60999;
  EXPECT_EQ(limits.ephemeral_ports(), 28'232u);
  EXPECT_FALSE(limits_problem(limits, 28'000, 2).has_value());
  const auto problem = limits_problem(limits, 40'000, 2);
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("sysctl -w net.ipv4.ip_local_port_range"), std::string::npos) << *problem;
}

}  // namespace
}  // namespace echolab::load
