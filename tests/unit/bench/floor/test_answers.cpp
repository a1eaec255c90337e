#include "bench/floor/answers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace echolab::floor {
namespace {

std::size_t ends_in(RequestEndCounter& counter, std::string_view bytes) {
  return counter.feed({bytes.data(), bytes.size()});
}

TEST(RequestEndCounter, CountsEachRequestOfAPipelinedRead) {
  RequestEndCounter counter;
  EXPECT_EQ(ends_in(counter, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 2U);
}

TEST(RequestEndCounter, CountsARequestEndSplitAcrossReadsOnce) {
  RequestEndCounter counter;
  EXPECT_EQ(ends_in(counter, "GET / HTTP/1.1\r\nHost: a\r"), 0U);
  EXPECT_EQ(ends_in(counter, "\n\r"), 0U);
  EXPECT_EQ(ends_in(counter, "\n"), 1U);
}

TEST(RequestEndCounter, CountsAnEndFedByteByByte) {
  RequestEndCounter counter;
  std::size_t ends = 0;
  for (const char byte : std::string_view("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")) {
    ends += counter.feed({&byte, 1});
  }
  EXPECT_EQ(ends, 2U);
}

TEST(RequestEndCounter, FindsTheEndAfterAStrayCarriageReturn) {
  RequestEndCounter counter;
  EXPECT_EQ(ends_in(counter, "GET / HTTP/1.1\r\r\n\r\n"), 1U);
}

TEST(RequestEndCounter, DoesNotCountASingleLineEnd) {
  RequestEndCounter counter;
  EXPECT_EQ(ends_in(counter, "GET / HTTP/1.1\r\nHost: a\r\n\n\r"), 0U);
}

std::string drain(AnswerQueue& queue, std::size_t most_per_send) {
  std::string sent;
  while (!queue.empty()) {
    auto bytes = queue.next(repeated_answers());
    bytes = bytes.first(std::min(bytes.size(), most_per_send));
    sent.append(bytes.data(), bytes.size());
    queue.sent(bytes.size());
  }
  return sent;
}

std::string answers(std::size_t count) {
  std::string expected;
  for (std::size_t i = 0; i < count; ++i) {
    expected += kAnswer;
  }
  return expected;
}

TEST(AnswerQueue, StartsEmpty) { EXPECT_TRUE(AnswerQueue{}.empty()); }

TEST(AnswerQueue, SendsEachOwedAnswerWhole) {
  AnswerQueue queue;
  queue.add(3);
  EXPECT_EQ(drain(queue, 1 << 20), answers(3));
}

TEST(AnswerQueue, ResumesAPartialSendMidAnswer) {
  AnswerQueue queue;
  queue.add(2);
  EXPECT_EQ(drain(queue, 7), answers(2));
}

TEST(AnswerQueue, OwesMoreAnswersThanOneSendCarries) {
  AnswerQueue queue;
  queue.add(1000);
  EXPECT_LT(queue.next(repeated_answers()).size(), 1000 * kAnswer.size());
  EXPECT_EQ(drain(queue, 1 << 20), answers(1000));
}

TEST(AnswerQueue, AnswersAddedWhileSendingFollowTheOthers) {
  AnswerQueue queue;
  queue.add(1);
  queue.sent(5);
  queue.add(1);
  EXPECT_EQ(drain(queue, 1 << 20), answers(2).substr(5));
}

}  // namespace
}  // namespace echolab::floor
