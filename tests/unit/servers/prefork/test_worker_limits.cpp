#include "servers/prefork/worker_limits.hpp"

#include <gtest/gtest.h>

namespace echolab::prefork {
namespace {

SystemLimits roomy() {
  SystemLimits limits;
  limits.pid_max = 4'194'304;
  limits.threads_max = 1'000'000;
  limits.tasks_in_use = 200;
  limits.open_files_soft = 20'000;
  limits.somaxconn = 4096;
  return limits;
}

TEST(WorkerLimits, KeepsTheRequestWhenItFits) {
  const WorkerCap cap = cap_workers(10'000, roomy());
  EXPECT_EQ(cap.workers, 10'000u);
  EXPECT_TRUE(cap.limited_by.empty());
}

TEST(WorkerLimits, CapsAtPidMaxMinusTasksInUse) {
  SystemLimits limits = roomy();
  limits.pid_max = 8192;
  limits.tasks_in_use = 1000;
  const WorkerCap cap = cap_workers(10'000, limits);
  EXPECT_EQ(cap.workers, 8192u - 1000u - kReservedTasks);
  EXPECT_NE(cap.limited_by.find("kernel.pid_max 8192"), std::string::npos) << cap.limited_by;
}

TEST(WorkerLimits, TheTightestLimitWins) {
  SystemLimits limits = roomy();
  limits.nproc = 3000;
  limits.threads_max = 5000;
  const WorkerCap cap = cap_workers(10'000, limits);
  EXPECT_EQ(cap.workers, 3000u - 200u - kReservedTasks);
  EXPECT_NE(cap.limited_by.find("ulimit -u"), std::string::npos) << cap.limited_by;
}

TEST(WorkerLimits, UnreadableLimitsAreNotChecked) {
  SystemLimits limits = roomy();
  limits.pid_max = 0;
  limits.threads_max = 0;
  EXPECT_EQ(cap_workers(10'000, limits).workers, 10'000u);
}

TEST(WorkerLimits, ProcessesTheKernelExemptsAreNotCappedByUlimitU) {
  SystemLimits limits = roomy();
  limits.nproc = 3000;
  limits.nproc_exempt = true;
  EXPECT_EQ(cap_workers(10'000, limits).workers, 10'000u);
}

}  // namespace
}  // namespace echolab::prefork
