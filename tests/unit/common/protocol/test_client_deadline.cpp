#include "common/protocol/client_deadline.hpp"

#include <gtest/gtest.h>

namespace echolab {
namespace {

using std::chrono::milliseconds;
using Clock = ClientDeadline::Clock;

ClientTimeouts timeouts() {
  ClientTimeouts t;
  t.idle = milliseconds(30'000);
  t.header = milliseconds(10'000);
  t.body = milliseconds(5'000);
  t.send = milliseconds(4'000);
  t.min_rate = 1000;  // bytes/s: each byte earns a millisecond
  return t;
}

const Clock::time_point kAccepted{};

TEST(ClientDeadline, ANewConnectionOwesItsFirstHeaderSectionFromItsAccept) {
  ClientDeadline deadline(timeouts(), kAccepted);
  EXPECT_EQ(deadline.next().kind, TimeoutKind::header);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(10'000));
  deadline.received(5, RequestPhase::header, false, kAccepted + milliseconds(9'000));
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(10'000));
}

TEST(ClientDeadline, AfterAnAnswerTheIdleTimeoutRuns) {
  ClientDeadline deadline(timeouts(), kAccepted);
  deadline.received(20, RequestPhase::idle, true, kAccepted + milliseconds(1'000));
  EXPECT_EQ(deadline.next().kind, TimeoutKind::idle);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(31'000));
}

// Slowloris: more header bytes later do not move the deadline of the header section.
TEST(ClientDeadline, TheHeaderSectionHasOneDeadlineHoweverOftenBytesCome) {
  ClientDeadline deadline(timeouts(), kAccepted);
  deadline.received(20, RequestPhase::idle, true, kAccepted);
  deadline.received(20, RequestPhase::header, false, kAccepted + milliseconds(100));
  deadline.received(8, RequestPhase::header, false, kAccepted + milliseconds(5'000));
  deadline.received(8, RequestPhase::header, false, kAccepted + milliseconds(9'000));
  EXPECT_EQ(deadline.next().kind, TimeoutKind::header);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(10'100));
}

TEST(ClientDeadline, ABodyEarnsTimeAtTheMinimumRate) {
  ClientDeadline deadline(timeouts(), kAccepted);
  deadline.received(100, RequestPhase::body, false, kAccepted);
  deadline.received(2'000, RequestPhase::body, false, kAccepted + milliseconds(1'000));
  EXPECT_EQ(deadline.next().kind, TimeoutKind::body);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(5'000 + 2'100));
}

TEST(ClientDeadline, ANewRequestInTheSameReadStartsItsOwnHeaderDeadline) {
  ClientDeadline deadline(timeouts(), kAccepted);
  deadline.received(20, RequestPhase::idle, true, kAccepted);
  deadline.received(20, RequestPhase::header, false, kAccepted);
  deadline.received(40, RequestPhase::header, true, kAccepted + milliseconds(8'000));
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(18'000));
}

TEST(ClientDeadline, IdleRunsFromTheEndOfTheAnswer) {
  ClientDeadline deadline(timeouts(), kAccepted);
  deadline.received(20, RequestPhase::idle, true, kAccepted + milliseconds(1'000));
  deadline.sending(kAccepted + milliseconds(1'000));
  deadline.sent(10);
  EXPECT_EQ(deadline.next().kind, TimeoutKind::send);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(1'000 + 4'000 + 10));
  deadline.send_done(kAccepted + milliseconds(3'000));
  EXPECT_EQ(deadline.next().kind, TimeoutKind::idle);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(33'000));
}

TEST(ClientDeadline, NoMinimumRateMakesTheGraceAHardLimit) {
  ClientTimeouts hard = timeouts();
  hard.min_rate = 0;
  ClientDeadline deadline(hard, kAccepted);
  deadline.received(1'000'000, RequestPhase::body, false, kAccepted);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(5'000));
}

TEST(ClientDeadline, KindsHaveTheirMetricLabels) {
  EXPECT_EQ(to_string(TimeoutKind::idle), "idle");
  EXPECT_EQ(to_string(TimeoutKind::header), "header");
  EXPECT_EQ(to_string(TimeoutKind::body), "body");
  EXPECT_EQ(to_string(TimeoutKind::send), "send");
  EXPECT_EQ(to_string(TimeoutKind::lifetime), "lifetime");
}

// A pipelined request begun in the same read as the one being answered: the time its client
// spends reading a slow answer is not taken from the next request's header time.
TEST(ClientDeadline, APipelinedHeaderSectionStartsItsClockWhenASlowAnswerIsDone) {
  ClientDeadline deadline(timeouts(), kAccepted);
  deadline.received(40, RequestPhase::header, true, kAccepted);  // one answered, the next begun
  deadline.sending(kAccepted + milliseconds(1));
  deadline.sent(8'000);
  deadline.send_done(kAccepted + milliseconds(8'000));
  EXPECT_EQ(deadline.next().kind, TimeoutKind::header);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(8'000 + 10'000));
}

TEST(ClientDeadline, AnAnswerSentAtOnceLeavesThePipelinedHeaderClockAlone) {
  ClientDeadline deadline(timeouts(), kAccepted);
  deadline.received(40, RequestPhase::header, true, kAccepted);
  deadline.send_done(kAccepted + milliseconds(2));
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(10'000));
}

// A raw echo trickling a byte before every idle timeout is idle after each read: the idle
// deadline moves, the lifetime's end does not, and ends the connection.
TEST(ClientDeadline, ATricklingConnectionIsCutAtTheEndOfItsLifetime) {
  ClientTimeouts t = timeouts();
  t.max_lifetime = milliseconds(60'000);
  ClientDeadline deadline(t, kAccepted);
  for (int second = 29; second < 60; second += 29) {
    deadline.received(1, RequestPhase::idle, true, kAccepted + milliseconds(second * 1'000));
  }
  EXPECT_EQ(deadline.next().kind, TimeoutKind::lifetime);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(60'000));
  EXPECT_FALSE(deadline.lifetime_over(kAccepted + milliseconds(59'999)));
  EXPECT_TRUE(deadline.lifetime_over(kAccepted + milliseconds(60'000)));
}

// The lifetime ends a connection only between requests: one in flight keeps its own deadline.
TEST(ClientDeadline, ARequestInFlightOutlivesTheLifetimeUnderItsOwnDeadline) {
  ClientTimeouts t = timeouts();
  t.max_lifetime = milliseconds(1'000);
  ClientDeadline deadline(t, kAccepted);
  deadline.received(5, RequestPhase::header, false, kAccepted + milliseconds(500));
  EXPECT_EQ(deadline.next().kind, TimeoutKind::header);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(10'000));  // from the accept
  deadline.received(20, RequestPhase::idle, true, kAccepted + milliseconds(2'000));
  EXPECT_EQ(deadline.next().kind, TimeoutKind::lifetime);
  EXPECT_EQ(deadline.next().at, kAccepted + milliseconds(1'000));
}

TEST(ClientDeadline, AnIdleTimeoutBeforeTheLifetimeEndsComesFirst) {
  ClientDeadline deadline(timeouts(), kAccepted);  // the default lifetime: an hour
  deadline.received(20, RequestPhase::idle, true, kAccepted + milliseconds(1'000));
  EXPECT_EQ(deadline.next().kind, TimeoutKind::idle);
}

}  // namespace
}  // namespace echolab
