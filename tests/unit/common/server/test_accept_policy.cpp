#include "common/server/accept_policy.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace echolab {
namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t found = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++found;
  }
  return found;
}

TEST(AcceptPolicy, TellsRetryablePauseAndFatalFailuresApart) {
  EXPECT_EQ(classify_accept_error(ECONNABORTED), AcceptFailure::retry);
  EXPECT_EQ(classify_accept_error(EINTR), AcceptFailure::retry);
  EXPECT_EQ(classify_accept_error(EMFILE), AcceptFailure::pause);
  EXPECT_EQ(classify_accept_error(ENFILE), AcceptFailure::pause);
  EXPECT_EQ(classify_accept_error(ENOMEM), AcceptFailure::pause);
  EXPECT_EQ(classify_accept_error(EAGAIN), AcceptFailure::pause);
  EXPECT_EQ(classify_accept_error(EBADF), AcceptFailure::fatal);
  EXPECT_EQ(classify_accept_error(EINVAL), AcceptFailure::fatal);
}

TEST(AcceptPolicy, TheCapAdmitsBelowItAndRefusesAtIt) {
  AcceptPolicy policy(2);
  testing::internal::CaptureStderr();
  EXPECT_TRUE(policy.admit(0));
  EXPECT_TRUE(policy.admit(1));
  EXPECT_FALSE(policy.admit(2));
  EXPECT_FALSE(policy.admit(3));
  static_cast<void>(testing::internal::GetCapturedStderr());
}

TEST(AcceptPolicy, NoCapAdmitsEverything) {
  AcceptPolicy policy;
  EXPECT_TRUE(policy.admit(1'000'000));
}

TEST(AcceptPolicy, AFullServerIsLoggedOncePerEpisode) {
  AcceptPolicy policy(1);
  testing::internal::CaptureStderr();
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(policy.admit(1));
  }
  EXPECT_TRUE(policy.admit(0));   // the episode ends
  EXPECT_FALSE(policy.admit(1));  // a new one begins
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(log, "limit=max-connections"), 2U) << log;
}

TEST(AcceptPolicy, ADescriptorShortageIsLoggedOncePerEpisodeAndEmptyQueuesNever) {
  AcceptPolicy policy;
  testing::internal::CaptureStderr();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(policy.failed(EMFILE), AcceptFailure::pause);
  }
  EXPECT_EQ(policy.failed(EAGAIN), AcceptFailure::pause);
  EXPECT_TRUE(policy.admit(0));  // accept() worked again
  EXPECT_EQ(policy.failed(ENFILE), AcceptFailure::pause);
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(log, "event=limit_reached"), 2U) << log;
  EXPECT_EQ(count(log, "limit=\"open files\""), 2U) << log;
}

}  // namespace
}  // namespace echolab
