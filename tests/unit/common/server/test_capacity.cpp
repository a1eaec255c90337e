#include "common/server/capacity.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>

namespace echolab {
namespace {

SystemLimits roomy() {
  SystemLimits limits;
  limits.open_files_soft = 100'000;
  limits.open_files_hard = 100'000;
  limits.pid_max = 4'194'304;
  limits.threads_max = 1'000'000;
  return limits;
}

bool mentions(const std::vector<std::string>& problems, const std::string& text) {
  for (const std::string& problem : problems) {
    if (problem.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(SystemLimits, ReadsThisMachine) {
  const SystemLimits limits = read_system_limits();
  EXPECT_GT(limits.open_files_soft, 0u);
  EXPECT_GE(limits.open_files_hard, limits.open_files_soft);
  EXPECT_GT(limits.pid_max, 0u);
  EXPECT_GT(limits.threads_max, 0u);
  EXPECT_GT(limits.tasks_in_use, 0u);
  EXPECT_GT(limits.somaxconn, 0u);
  EXPECT_GT(limits.ephemeral_ports(), 0u);
}

TEST(SystemLimits, EphemeralPortsCountsTheRangeBothEndsIncluded) {
  SystemLimits limits;
  limits.ephemeral_port_low = 32768;
  limits.ephemeral_port_high = 60999;
  EXPECT_EQ(limits.ephemeral_ports(), 28'232u);
  limits.ephemeral_port_low = 61000;
  EXPECT_EQ(limits.ephemeral_ports(), 0u);
}

// Lowers this test process's soft open-file limit, and puts it back when the test ends.
class LoweredOpenFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0);
    if (saved_.rlim_max == RLIM_INFINITY || saved_.rlim_max < 2048) {
      GTEST_SKIP() << "needs a finite hard open-file limit of at least 2048";
    }
    rlimit lowered = saved_;
    lowered.rlim_cur = 1024;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  }
  void TearDown() override { setrlimit(RLIMIT_NOFILE, &saved_); }

  rlimit saved_{};
};

TEST_F(LoweredOpenFiles, RaisesTheSoftLimitOnlyWhenBelowWhatIsWanted) {
  raise_open_files_limit(512);
  EXPECT_EQ(read_system_limits().open_files_soft, 1024u);
  raise_open_files_limit(2048);
  EXPECT_EQ(read_system_limits().open_files_soft, saved_.rlim_max);
}

TEST_F(LoweredOpenFiles, RaisesTheSoftLimitToTheHardOneByDefault) {
  raise_open_files_limit();
  const SystemLimits limits = read_system_limits();
  EXPECT_EQ(limits.open_files_soft, saved_.rlim_max);
  EXPECT_EQ(limits.open_files_hard, saved_.rlim_max);
}

TEST(CapacityProblems, NoneWhenEverythingFits) {
  EXPECT_TRUE(capacity_problems(roomy(), 10'000, 10'000).empty());
}

TEST(CapacityProblems, LowOpenFileLimitCountsTheSpareDescriptors) {
  SystemLimits limits = roomy();
  limits.open_files_soft = 10'000;
  const auto problems = capacity_problems(limits, 10'000, 0);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(mentions(problems, "ulimit -n is 10000, 10000 connections need 10064"))
      << problems[0];
  limits.open_files_soft = SystemLimits::kUnlimited;
  EXPECT_TRUE(capacity_problems(limits, 10'000, 0).empty());
}

TEST(CapacityProblems, EveryTaskLimitBelowTheTasksIsNamed) {
  SystemLimits limits = roomy();
  limits.nproc = 4096;
  limits.pid_max = 5000;
  limits.threads_max = 6000;
  const auto problems = capacity_problems(limits, 100, 10'000);
  EXPECT_EQ(problems.size(), 3u);
  EXPECT_TRUE(mentions(problems, "ulimit -u is 4096, below 10000"));
  EXPECT_TRUE(mentions(problems, "sysctl -w kernel.pid_max=20000"));
  EXPECT_TRUE(mentions(problems, "sysctl -w kernel.threads-max=20000"));
}

TEST(CapacityProblems, UnreadableKernelLimitsAreNotChecked) {
  SystemLimits limits = roomy();
  limits.pid_max = 0;
  limits.threads_max = 0;
  EXPECT_TRUE(capacity_problems(limits, 100, 10'000'000).empty());
}

}  // namespace
}  // namespace echolab
