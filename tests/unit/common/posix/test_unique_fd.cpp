#include "common/posix/unique_fd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <utility>

namespace echolab {
namespace {

bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

int open_pipe_end() {
  int ends[2];
  EXPECT_EQ(pipe2(ends, O_CLOEXEC), 0);
  close(ends[1]);
  return ends[0];
}

TEST(UniqueFd, ClosesItsDescriptorWhenDestroyed) {
  const int fd = open_pipe_end();
  { const UniqueFd owner(fd); }
  EXPECT_FALSE(is_open(fd));
}

TEST(UniqueFd, AMoveTransfersOwnershipSoTheDescriptorIsClosedOnce) {
  const int fd = open_pipe_end();
  UniqueFd first(fd);
  UniqueFd second(std::move(first));
  EXPECT_FALSE(
      first.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the contract
  EXPECT_EQ(second.get(), fd);
  UniqueFd third;
  third = std::move(second);
  EXPECT_EQ(third.get(), fd);
  EXPECT_TRUE(is_open(fd));
}

TEST(UniqueFd, ReleaseGivesTheDescriptorUpWithoutClosingIt) {
  const int fd = open_pipe_end();
  {
    UniqueFd owner(fd);
    EXPECT_EQ(owner.release(), fd);
    EXPECT_FALSE(owner);
  }
  EXPECT_TRUE(is_open(fd));
  close(fd);
}

TEST(UniqueFd, ResetClosesTheOldDescriptorAndHoldsTheNewOne) {
  const int old_fd = open_pipe_end();
  const int new_fd = open_pipe_end();
  UniqueFd owner(old_fd);
  owner.reset(new_fd);
  EXPECT_FALSE(is_open(old_fd));
  EXPECT_TRUE(is_open(new_fd));
  owner.reset();
  EXPECT_FALSE(is_open(new_fd));
  EXPECT_EQ(owner.get(), -1);
}

}  // namespace
}  // namespace echolab
