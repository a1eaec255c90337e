#include "common/posix/die_with_parent.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

namespace echolab {
namespace {

// A child asks to die with its parent (this test) and reports whether it is still the parent
// it was forked from; and with a parent it never had, that the request comes too late.
int child_exit_code(pid_t expected_parent) {
  const pid_t pid = fork();
  if (pid == 0) {
    _exit(die_with_parent(SIGKILL, expected_parent) ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(DieWithParent, HoldsWhileTheParentIsTheOneExpected) {
  EXPECT_EQ(child_exit_code(getpid()), 0);
}

TEST(DieWithParent, ReportsAParentThatIsAlreadyGone) {
  EXPECT_EQ(child_exit_code(getpid() + 1), 1);  // not the parent: as if it had died
}

TEST(DieWithParent, TheKernelKillsTheChildWhenItsParentDies) {
  // A middle process forks a grandchild that asks to die with it, then exits: the grandchild
  // must be gone soon after (it would otherwise sleep for a minute).
  int ends[2];
  ASSERT_EQ(pipe(ends), 0);
  const pid_t middle = fork();
  if (middle == 0) {
    const pid_t self = getpid();
    const pid_t grandchild = fork();
    if (grandchild == 0) {
      close(ends[0]);
      if (!die_with_parent(SIGKILL, self)) {
        _exit(1);
      }
      sleep(60);
      _exit(0);
    }
    close(ends[1]);
    usleep(100'000);  // let the grandchild ask first
    _exit(0);
  }
  close(ends[1]);
  waitpid(middle, nullptr, 0);
  // The pipe's last write end is the grandchild's: EOF means it died.
  char byte = 0;
  alarm(10);
  EXPECT_EQ(read(ends[0], &byte, 1), 0);
  alarm(0);
  close(ends[0]);
}

}  // namespace
}  // namespace echolab
