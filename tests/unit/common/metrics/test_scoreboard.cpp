#include "common/metrics/scoreboard.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include <numeric>

#include "common/metrics/slot_observer.hpp"

namespace echolab {
namespace {

std::uint64_t bucket_total(const MetricsTotals& totals) {
  std::uint64_t sum = 0;
  for (const auto count : totals.request_duration_buckets) {
    sum += count;
  }
  return sum;
}

TEST(Scoreboard, StartsEmpty) {
  const Scoreboard board(16);
  const MetricsTotals totals = board.sum();
  EXPECT_EQ(totals.connections_accepted, 0u);
  EXPECT_EQ(totals.http_requests, 0u);
  EXPECT_EQ(totals.workers_idle, 0);
  EXPECT_EQ(board.slots_in_use(), 0u);
  EXPECT_TRUE(board.live_workers().empty());
}

TEST(Scoreboard, ASlotMappedAloneIsTheSameMemory) {
  // Every slot, including those that straddle two pages: a child's counters must land where
  // the master and the metrics process read them.
  Scoreboard board(40);
  for (std::size_t index = 0; index < board.slot_count(); ++index) {
    board.prepare_slot(index, monotonic_ns());
    ScoreboardSlot& alone = Scoreboard::map_one_slot(board.fd(), index);
    alone.state.store(WorkerState::busy, std::memory_order_release);
    SlotObserver(alone).connection_accepted();
    EXPECT_EQ(board.slot(index).state.load(std::memory_order_acquire), WorkerState::busy);
  }
  EXPECT_EQ(board.sum().connections_accepted, board.slot_count());
}

TEST(Scoreboard, SlotStaysSmallForTenThousandChildren) {
  EXPECT_LE(sizeof(ScoreboardSlot) * 10'000, 4u * 1024 * 1024);
}

TEST(Scoreboard, SumsEverySlotObserverReport) {
  Scoreboard board(4);
  board.prepare_slot(0, monotonic_ns());
  board.prepare_slot(1, monotonic_ns());
  SlotObserver first(board.slot(0));
  SlotObserver second(board.slot(1));
  first.connection_accepted();
  first.bytes_received(100);
  first.bytes_sent(40);
  first.requests_served(Protocol::http, 3, 0.003);  // a batch: each waited 3 ms
  first.request_error(400);
  first.request_error(599);  // not a tracked status: ignored, not misfiled
  second.connection_accepted();
  second.requests_served(Protocol::raw, 1, 2.0);
  second.request_error(431);

  const MetricsTotals totals = board.sum();
  EXPECT_EQ(totals.connections_accepted, 2u);
  EXPECT_EQ(totals.http_requests, 3u);
  EXPECT_EQ(totals.raw_requests, 1u);
  EXPECT_EQ(totals.bytes_received, 100u);
  EXPECT_EQ(totals.bytes_sent, 40u);
  EXPECT_EQ(bucket_total(totals), 4u);
  EXPECT_EQ(totals.request_duration_buckets[duration_bucket(0.003)], 3u);
  EXPECT_EQ(totals.request_duration_buckets[duration_bucket(2.0)], 1u);
  EXPECT_NEAR(totals.request_duration_sum, 2.009, 1e-6);
  const auto errors = [&totals](int status) {
    return totals
        .errors_by_status[static_cast<std::size_t>(error_field(status)) - field::first_error];
  };
  EXPECT_EQ(errors(400), 1u);
  EXPECT_EQ(errors(431), 1u);
  EXPECT_EQ(std::accumulate(totals.errors_by_status.begin(), totals.errors_by_status.end(),
                            std::uint64_t{0}),
            2u);
}

TEST(Scoreboard, SumsTimeoutsByKind) {
  Scoreboard board(2);
  board.prepare_slot(0, monotonic_ns());
  SlotObserver observer(board.slot(0));
  observer.connection_timed_out(TimeoutKind::header);
  observer.connection_timed_out(TimeoutKind::header);
  observer.connection_timed_out(TimeoutKind::send);
  const MetricsTotals totals = board.sum();
  EXPECT_EQ(totals.timeouts_by_kind[static_cast<std::size_t>(TimeoutKind::header)], 2u);
  EXPECT_EQ(totals.timeouts_by_kind[static_cast<std::size_t>(TimeoutKind::send)], 1u);
  EXPECT_EQ(totals.timeouts_by_kind[static_cast<std::size_t>(TimeoutKind::idle)], 0u);
}

TEST(Scoreboard, DurationBucketsMatchTheContract) {
  EXPECT_EQ(duration_bucket(0.0), 0u);
  EXPECT_EQ(duration_bucket(metrics::kRequestDurationBuckets[0]), 0u);  // le is inclusive
  EXPECT_EQ(duration_bucket(metrics::kRequestDurationBuckets[3] * 1.01), 4u);
  EXPECT_EQ(duration_bucket(1000.0), metrics::kRequestDurationBuckets.size());  // +Inf
  EXPECT_EQ(error_field(404), static_cast<int>(field::first_error + 1));
  EXPECT_EQ(error_field(200), -1);
}

TEST(Scoreboard, CountsWorkersByStateAndBusyAsActiveConnections) {
  Scoreboard board(8);
  for (std::size_t i = 0; i < 5; ++i) {
    board.prepare_slot(i, monotonic_ns());
    board.set_pid(i, static_cast<pid_t>(1000 + i));
  }
  board.slot(0).state = WorkerState::idle;
  board.slot(1).state = WorkerState::idle;
  board.slot(2).state = WorkerState::busy;
  board.slot(3).state = WorkerState::exiting;  // slot 4 is still starting
  const MetricsTotals totals = board.sum();
  EXPECT_EQ(totals.workers_idle, 2);
  EXPECT_EQ(totals.workers_busy, 1);
  EXPECT_EQ(totals.connections_active, 1);
  std::vector<pid_t> pids;
  for (const SelfReportingProcess& worker : board.live_workers()) {
    pids.push_back(worker.pid);
    EXPECT_EQ(worker.generation, board.slot(worker.pid - 1000).fork_ns.load());
  }
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(pids, (std::vector<pid_t>{1000, 1001, 1002, 1003, 1004}));
}

TEST(Scoreboard, FoldingADeadChildKeepsEveryCounterAndFreesTheSlot) {
  Scoreboard board(2);
  board.prepare_slot(0, monotonic_ns());
  board.set_pid(0, 4242);
  SlotObserver observer(board.slot(0));
  observer.connection_accepted();
  observer.requests_served(Protocol::http, 7, 0.007);
  observer.bytes_sent(700);
  board.slot(0).state = WorkerState::busy;
  const MetricsTotals before = board.sum();

  board.fold_dead_child(0, /*crashed=*/true, /*connections_lost=*/1);
  const MetricsTotals after = board.sum();
  EXPECT_EQ(after.http_requests, before.http_requests);
  EXPECT_EQ(after.bytes_sent, before.bytes_sent);
  EXPECT_EQ(bucket_total(after), 7u);
  EXPECT_EQ(after.worker_crashes, 1u);
  EXPECT_EQ(after.connections_lost, 1u);
  EXPECT_EQ(after.workers_busy, 0);
  EXPECT_EQ(board.slot(0).state.load(), WorkerState::dead);
  EXPECT_EQ(board.slot(0).counters.get(field::http_requests), 0u);
  EXPECT_TRUE(board.live_workers().empty());

  // The slot's next child starts from zero and adds on top of the retired totals.
  board.prepare_slot(0, monotonic_ns());
  SlotObserver next(board.slot(0));
  next.requests_served(Protocol::http, 1, 0.001);
  EXPECT_EQ(board.sum().http_requests, 8u);
  board.fold_dead_child(0, false, 0);
  EXPECT_EQ(board.sum().worker_crashes, 1u);
}

TEST(Scoreboard, SlotGaugesCountTheConnectionsOfWorkersThatServeManyAndDieWithThem) {
  Scoreboard board(2, ActiveConnections::slot_gauges);
  for (std::size_t slot = 0; slot < 2; ++slot) {
    board.prepare_slot(slot, monotonic_ns());
    board.slot(slot).state = WorkerState::idle;
  }
  board.slot(0).connections = 5;
  board.slot(1).connections = 3;
  EXPECT_EQ(board.open_connections(), 8);
  EXPECT_EQ(board.sum().connections_active, 8);
  EXPECT_EQ(board.sum().workers_busy, 0);  // idle between completions, connections open

  board.fold_dead_child(0, /*crashed=*/true, /*connections_lost=*/5);
  const MetricsTotals after = board.sum();
  EXPECT_EQ(after.connections_lost, 5u);
  EXPECT_EQ(after.connections_active, 3);
  EXPECT_EQ(board.open_connections(), 3);
  // The slot's next worker starts with none open.
  board.prepare_slot(0, monotonic_ns());
  EXPECT_EQ(board.slot(0).connections.load(), 0);
}

TEST(Scoreboard, BusyWorkersAreTheActiveConnectionsOfOneConnectionChildren) {
  Scoreboard board(2);
  board.prepare_slot(0, monotonic_ns());
  board.slot(0).state = WorkerState::busy;
  board.slot(0).connections = 7;  // not read in this mode
  EXPECT_EQ(board.sum().connections_active, 1);
}

TEST(Scoreboard, SpawnHistogramCountsEachRecordedSpawn) {
  Scoreboard board(1);
  board.record_spawn(0.0002);
  board.record_spawn(0.5);
  const MetricsTotals totals = board.sum();
  std::uint64_t count = 0;
  for (const auto bucket : totals.spawn_buckets) {
    count += bucket;
  }
  EXPECT_EQ(count, 2u);
  EXPECT_NEAR(totals.spawn_sum, 0.5002, 1e-6);
}

// The seqlock: while the master folds children into the retired totals, a reader's sum must
// never count a child twice or miss it. Every slot keeps growing, so a torn read would be off
// by a whole slot's count, far outside the window allowed here.
TEST(Scoreboard, ReaderNeverSeesAHalfFoldedChild) {
  constexpr std::size_t kSlots = 64;
  Scoreboard board(kSlots);
  for (std::size_t i = 0; i < kSlots; ++i) {
    board.prepare_slot(i, monotonic_ns());
  }
  std::atomic<std::uint64_t> published{0};
  std::atomic<bool> done{false};
  std::thread master([&] {
    std::uint64_t steps = 0;
    for (int round = 0; round < 20000; ++round) {
      for (std::size_t i = 0; i < kSlots; ++i) {
        board.fold_dead_child(i, false, false);
        board.prepare_slot(i, monotonic_ns());
        board.slot(i).counters.add(field::http_requests, 1);
        published.store(++steps, std::memory_order_release);
      }
    }
    done = true;
  });
  std::uint64_t previous = 0;
  std::size_t reads = 0;
  while (!done) {
    const std::uint64_t low = published.load(std::memory_order_acquire);
    const std::uint64_t seen = board.sum().http_requests;
    const std::uint64_t high = published.load(std::memory_order_acquire);
    ASSERT_GE(seen, low);
    ASSERT_LE(seen, high + 1);
    ASSERT_GE(seen, previous);  // counters never go backwards
    previous = seen;
    ++reads;
  }
  master.join();
  EXPECT_EQ(board.sum().http_requests, 20000u * kSlots);
  EXPECT_GT(reads, 0u);
}

TEST(Scoreboard, ChildrenWriteThroughSharedMemory) {
  Scoreboard board(4);
  board.prepare_slot(2, monotonic_ns());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    SlotObserver observer(board.slot(2));
    observer.requests_served(Protocol::http, 5, 0.001);
    board.slot(2).ready_ns = monotonic_ns();
    board.slot(2).state = WorkerState::idle;
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(board.sum().http_requests, 5u);
  EXPECT_EQ(board.slot(2).state.load(), WorkerState::idle);
  EXPECT_GE(board.slot(2).ready_ns.load(), board.slot(2).fork_ns.load());
}

// The context switches come from the child itself (getrusage), not from /proc: the count
// must reach the slot, and survive the child's exit in the retired totals.
TEST(Scoreboard, AChildCountsItsOwnContextSwitches) {
  constexpr int kSleeps = 20;
  Scoreboard board(2);
  board.prepare_slot(0, monotonic_ns());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    SlotObserver observer(board.slot(0));
    observer.connection_accepted();
    for (int i = 0; i < kSleeps; ++i) {
      usleep(1000);  // each sleep blocks: one voluntary switch
    }
    observer.connection_closed();
    _exit(0);
  }
  board.set_pid(0, child);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  const ContextSwitches counted = board.sum().worker_switches;
  EXPECT_GE(counted.voluntary, static_cast<std::uint64_t>(kSleeps));
  board.fold_dead_child(0, false, false);
  EXPECT_EQ(board.sum().worker_switches.voluntary, counted.voluntary);
  EXPECT_EQ(board.sum().worker_switches.involuntary, counted.involuntary);
}

}  // namespace
}  // namespace echolab
