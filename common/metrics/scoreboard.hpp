// The scoreboard of the multi-process servers (prefork, hybrid): one slot per possible worker
// process in shared memory, as in Apache's include/scoreboard.h. Each worker writes only its
// own slot (state, counters, latency buckets) with relaxed atomics; the master writes the
// header (retired totals, spawn histogram, crashes) and reads every slot; the metrics process
// only reads.
//
// prometheus-cpp cannot add up counters that live in other processes, so the metrics process
// calls sum() at scrape time. A child that exits takes its counters with it unless the master
// folds them into the header's retired totals first; the fold is guarded by a seqlock so that
// a reader never sees a dead child's counts twice or not at all, and counters never go back.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/metrics/metrics.hpp"
#include "common/metrics/worker_counters.hpp"

namespace echolab {

// As Apache's SERVER_DEAD, SERVER_STARTING, SERVER_READY, SERVER_BUSY_*, SERVER_GRACEFUL.
// A child holding a keep-alive connection is busy even between requests: one connection
// occupies one process for its whole life.
enum class WorkerState : std::uint8_t { dead, starting, idle, busy, exiting };

static_assert(std::atomic<WorkerState>::is_always_lock_free);
static_assert(std::atomic<pid_t>::is_always_lock_free);

struct alignas(64) ScoreboardSlot {
  std::atomic<pid_t> pid{0};
  std::atomic<WorkerState> state{WorkerState::dead};
  std::atomic<std::int64_t> fork_ns{0};   // CLOCK_MONOTONIC, written by the master before fork
  std::atomic<std::int64_t> ready_ns{0};  // written by the child when it can accept
  // Open connections of a worker that serves many at once (hybrid); prefork's children leave
  // it at 0, their busy state being their one connection.
  std::atomic<std::int64_t> connections{0};
  // On cache lines of their own: the child writes them per request, the master reads the
  // lines above every maintenance round, and neither should slow the other.
  alignas(64) WorkerCounters counters;
};
static_assert(sizeof(ScoreboardSlot) <= 512, "keep a slot small: there are --max-workers of them");

// CLOCK_MONOTONIC in nanoseconds: the clock of fork_ns and ready_ns, the same in every process.
std::int64_t monotonic_ns();
// Seconds from one monotonic_ns() reading to a later one; 0 if `to_ns` is earlier.
double seconds_between(std::int64_t from_ns, std::int64_t to_ns);

// Where echolab_connections_active comes from: the busy workers (a prefork child serves one
// connection at a time) or the slots' own connection gauges (a hybrid worker serves many).
enum class ActiveConnections { busy_workers, slot_gauges };

class Scoreboard {
 public:
  // Maps the shared memory; call before any fork so every process sees the same pages.
  explicit Scoreboard(std::size_t slot_count,
                      ActiveConnections active = ActiveConnections::busy_workers);
  ~Scoreboard();
  Scoreboard(const Scoreboard&) = delete;
  Scoreboard& operator=(const Scoreboard&) = delete;

  [[nodiscard]] std::size_t slot_count() const { return slot_count_; }
  // The shared memory's descriptor (close-on-exec), for the spawner to map slots from.
  [[nodiscard]] int fd() const { return fd_; }
  // One past the highest slot ever handed to a child: scans stop there.
  [[nodiscard]] std::size_t slots_in_use() const;
  [[nodiscard]] ScoreboardSlot& slot(std::size_t index) { return slots_[index]; }
  [[nodiscard]] const ScoreboardSlot& slot(std::size_t index) const { return slots_[index]; }

  // Master: a child is about to be forked into `index`.
  void prepare_slot(std::size_t index, std::int64_t fork_ns);
  // Master, after fork(): the child's pid, for the metrics process's /proc reader.
  void set_pid(std::size_t index, pid_t pid);
  // Master: observes one child's fork-to-ready time in the spawn histogram.
  void record_spawn(double seconds);
  // Master, after reaping the child of `index`: adds its counters (and the crash, and the
  // connections lost with it) to the retired totals and frees the slot, all in one seqlock
  // write section.
  void fold_dead_child(std::size_t index, bool crashed, std::uint64_t connections_lost);

  // Any process: the connections open in every live slot's gauge (ActiveConnections::slot_gauges).
  [[nodiscard]] std::int64_t open_connections() const;

  // Any process: every counter and gauge of the server at this instant.
  [[nodiscard]] MetricsTotals sum() const;
  // Any process: the children that are alive (any state but dead), each with its fork time
  // as the generation that tells it from an earlier child with the same pid.
  [[nodiscard]] std::vector<SelfReportingProcess> live_workers() const;

  // A child: maps only the page(s) of its own slot from the scoreboard's descriptor.
  static ScoreboardSlot& map_one_slot(int scoreboard_fd, std::size_t index);

  // Metrics process: it never writes, so its mapping becomes read-only.
  void make_read_only();

 private:
  struct Header;
  void add_retired_totals(MetricsTotals& totals) const;
  void add_live_slots(MetricsTotals& totals) const;

  std::size_t slot_count_;
  ActiveConnections active_;
  std::size_t mapped_bytes_;
  int fd_;
  void* mapping_;
  Header* header_;
  ScoreboardSlot* slots_;
};

}  // namespace echolab
