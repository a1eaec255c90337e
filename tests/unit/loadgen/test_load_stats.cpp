#include "loadgen/load_stats.hpp"

#include <gtest/gtest.h>

namespace echolab::load {
namespace {

TEST(LoadStats, MergeAddsCountsAndKeepsTheFirstMessages) {
  LoadStats first;
  first.requests = 10;
  first.bytes_received = 100;
  first.count_error(ErrorKind::reset, "reset in the first thread");
  first.latency_ns.record(1'000);

  LoadStats second;
  second.requests = 5;
  second.bytes_sent = 7;
  second.count_error(ErrorKind::reset, "reset in the second thread");
  second.count_error(ErrorKind::timeout, "timeout in the second thread");
  second.latency_ns.record(2'000);

  first.merge(second);
  EXPECT_EQ(first.requests, 15u);
  EXPECT_EQ(first.bytes_received, 100u);
  EXPECT_EQ(first.bytes_sent, 7u);
  EXPECT_EQ(first.error_count(ErrorKind::reset), 2u);
  EXPECT_EQ(first.error_count(ErrorKind::timeout), 1u);
  EXPECT_EQ(first.total_errors(), 3u);
  EXPECT_EQ(first.first_error[static_cast<std::size_t>(ErrorKind::reset)],
            "reset in the first thread");
  EXPECT_EQ(first.first_error[static_cast<std::size_t>(ErrorKind::timeout)],
            "timeout in the second thread");
  EXPECT_EQ(first.latency_ns.count(), 2u);
  EXPECT_EQ(first.latency_ns.max(), 2'000u);
}

TEST(LoadStats, AConnectInFlightAtTheEndCountsOnlyWhenSlowerThanEveryCompletedOne) {
  LoadStats stats;
  stats.connect_ns.record(2'000'000);  // the slowest connect that completed: 2 ms
  stats.connect_ns.record(50'000);
  // Caught in flight by the end of the run, well within what connects take: not an error.
  stats.unfinished_connect_ns = {30'000, 2'000'000};
  LoadStats caught_in_flight = stats;
  caught_in_flight.count_unfinished_connects("127.0.0.1:1");
  EXPECT_EQ(caught_in_flight.total_errors(), 0u);

  stats.unfinished_connect_ns = {30'000, 900'000'000, 1'500'000'000};
  stats.count_unfinished_connects("127.0.0.1:1");
  EXPECT_EQ(stats.error_count(ErrorKind::connect_unfinished), 2u);
  EXPECT_EQ(stats.first_error[static_cast<std::size_t>(ErrorKind::connect_unfinished)],
            "connect to 127.0.0.1:1 unanswered after 1500 ms when the run ended");
}

TEST(LoadStats, WhenNoConnectCompletedEveryUnfinishedOneCounts) {
  LoadStats stats;
  stats.unfinished_connect_ns = {1'000, 5'000'000};
  stats.count_unfinished_connects("h:1");
  EXPECT_EQ(stats.error_count(ErrorKind::connect_unfinished), 2u);
}

TEST(LoadStats, MergeGathersUnfinishedConnectsAndAttackFigures) {
  LoadStats first;
  first.unfinished_connect_ns = {1};
  first.requests_unfinished = 3;
  first.connects_pending = 2;
  first.connections_not_started = 1;
  first.attack.held_ns.record(2'000'000'000);
  first.attack.closed_by_server = 1;
  first.attack.statuses[408] = 1;

  LoadStats second;
  second.unfinished_connect_ns = {2, 3};
  second.requests_unfinished = 1;
  second.connects_pending = 3;
  second.attack.held_ns.record(1'000'000'000);
  second.attack.closed_by_server = 1;
  second.attack.still_open_at_end = 4;
  second.attack.statuses[408] = 2;
  second.attack.statuses[400] = 1;

  first.merge(second);
  EXPECT_EQ(first.unfinished_connect_ns.size(), 3u);
  EXPECT_EQ(first.requests_unfinished, 4u);
  EXPECT_EQ(first.connects_pending, 5u);
  EXPECT_EQ(first.connections_not_started, 1u);
  EXPECT_EQ(first.attack.held_ns.count(), 2u);
  EXPECT_EQ(first.attack.held_ns.max(), 2'000'000'000u);
  EXPECT_EQ(first.attack.closed_by_server, 2u);
  EXPECT_EQ(first.attack.still_open_at_end, 4u);
  EXPECT_EQ(first.attack.statuses.at(408), 3u);
  EXPECT_EQ(first.attack.statuses.at(400), 1u);
}

}  // namespace
}  // namespace echolab::load
