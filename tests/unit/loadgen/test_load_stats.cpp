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

}  // namespace
}  // namespace echolab::load
