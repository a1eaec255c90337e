#include "common/metrics/scoreboard.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <new>
#include <system_error>
#include <thread>

namespace echolab {

struct Scoreboard::Header {
  // Seqlock: odd while the master folds a dead child into the retired totals.
  std::atomic<std::uint64_t> sequence{0};
  WorkerCounters retired;
  std::array<Counter, metrics::kSpawnBuckets.size() + 1> spawn_buckets{};
  Counter spawn_ns{0};
  Counter worker_crashes{0};
  Counter connections_lost{0};
  // One past the highest slot ever used: readers scan no further.
  std::atomic<std::size_t> slots_in_use{0};
};

namespace {

// Not cached in a static: a child is forked from the spawner, a fresh exec whose statics are
// unset, so the first call in each child would write the static and its guard and dirty a page
// of .bss of its own: 4 KiB more per connection, measured. sysconf() reads the auxiliary vector
// in user space, without a system call.
std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

std::size_t page_round_up(std::size_t bytes) {
  const std::size_t page = page_size();
  return (bytes + page - 1) / page * page;
}

}  // namespace

std::int64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * kNanosPerSecond + now.tv_nsec;
}

double seconds_between(std::int64_t from_ns, std::int64_t to_ns) {
  return static_cast<double>(std::max<std::int64_t>(to_ns - from_ns, 0)) / 1e9;
}

Scoreboard::Scoreboard(std::size_t slot_count, ActiveConnections active)
    : slot_count_(slot_count),
      active_(active),
      mapped_bytes_(page_round_up(sizeof(Header)) +
                    page_round_up(slot_count * sizeof(ScoreboardSlot))),
      fd_(memfd_create("echolab-scoreboard", MFD_CLOEXEC)) {
  // Shared memory in a memfd rather than an anonymous shared mapping: the spawner, a fresh
  // exec of this binary, must map it too, and an anonymous mapping does not survive exec.
  // fork() does not copy page tables for shared mappings, so its size costs no fork anything.
  if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(mapped_bytes_)) != 0) {
    throw std::system_error(errno, std::generic_category(), "memfd of the scoreboard");
  }
  mapping_ = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (mapping_ == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(),
                            "mmap of the scoreboard (" + std::to_string(mapped_bytes_) + " bytes)");
  }
  auto* bytes = static_cast<unsigned char*>(mapping_);
  header_ = new (bytes) Header{};
  slots_ = new (bytes + page_round_up(sizeof(Header))) ScoreboardSlot[slot_count];
}

Scoreboard::~Scoreboard() {
  munmap(mapping_, mapped_bytes_);
  close(fd_);
}

ScoreboardSlot& Scoreboard::map_one_slot(int scoreboard_fd, std::size_t index) {
  // The kernel finds who maps a shared page by walking every mapping of the file that covers
  // it: 10,000 children each mapping the whole scoreboard made each of its pages cost 10,000
  // steps, for memory reclaim and for DAMON's access sampling alike. Mapped one slot each, a
  // page is covered by the dozen children whose slots lie on it.
  const std::size_t page = page_size();
  const std::size_t offset = page_round_up(sizeof(Header)) + index * sizeof(ScoreboardSlot);
  const std::size_t first_page = offset / page * page;
  const std::size_t length = page_round_up(offset + sizeof(ScoreboardSlot)) - first_page;
  void* pages = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, scoreboard_fd,
                     static_cast<off_t>(first_page));
  if (pages == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(), "mmap of a scoreboard slot");
  }
  // The slot was constructed by the master in the same shared pages.
  return *std::launder(reinterpret_cast<ScoreboardSlot*>(static_cast<unsigned char*>(pages) +
                                                         (offset - first_page)));
}

std::size_t Scoreboard::slots_in_use() const {
  return header_->slots_in_use.load(std::memory_order_acquire);
}

void Scoreboard::prepare_slot(std::size_t index, std::int64_t fork_ns) {
  ScoreboardSlot& entry = slots_[index];
  entry.pid.store(0, std::memory_order_relaxed);
  entry.ready_ns.store(0, std::memory_order_relaxed);
  entry.fork_ns.store(fork_ns, std::memory_order_relaxed);
  entry.state.store(WorkerState::starting, std::memory_order_release);
  if (index >= header_->slots_in_use.load(std::memory_order_relaxed)) {
    header_->slots_in_use.store(index + 1, std::memory_order_release);
  }
}

void Scoreboard::set_pid(std::size_t index, pid_t pid) {
  slots_[index].pid.store(pid, std::memory_order_release);
}

void Scoreboard::record_spawn(double seconds) {
  add_single_writer(header_->spawn_buckets[metrics::bucket_index(metrics::kSpawnBuckets, seconds)],
                    1);
  add_single_writer(header_->spawn_ns, static_cast<std::uint64_t>(seconds * kNanosPerSecond));
}

void Scoreboard::fold_dead_child(std::size_t index, bool crashed, std::uint64_t connections_lost) {
  ScoreboardSlot& entry = slots_[index];
  const std::uint64_t sequence = header_->sequence.load(std::memory_order_relaxed);
  header_->sequence.store(sequence + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (std::size_t i = 0; i < field::count; ++i) {
    header_->retired.add(i, entry.counters.get(i));
    entry.counters.values[i].store(0, std::memory_order_relaxed);
  }
  add_single_writer(header_->worker_crashes, crashed ? 1 : 0);
  add_single_writer(header_->connections_lost, connections_lost);
  entry.connections.store(0, std::memory_order_relaxed);
  entry.pid.store(0, std::memory_order_relaxed);
  entry.state.store(WorkerState::dead, std::memory_order_relaxed);
  header_->sequence.store(sequence + 2, std::memory_order_release);
}

void Scoreboard::add_retired_totals(MetricsTotals& totals) const {
  header_->retired.add_to(totals);
  for (std::size_t i = 0; i < totals.spawn_buckets.size(); ++i) {
    totals.spawn_buckets[i] += header_->spawn_buckets[i].load(std::memory_order_relaxed);
  }
  totals.spawn_sum +=
      static_cast<double>(header_->spawn_ns.load(std::memory_order_relaxed)) / kNanosPerSecond;
  totals.worker_crashes += header_->worker_crashes.load(std::memory_order_relaxed);
  totals.connections_lost += header_->connections_lost.load(std::memory_order_relaxed);
}

void Scoreboard::add_live_slots(MetricsTotals& totals) const {
  const std::size_t used = header_->slots_in_use.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < used; ++i) {
    const ScoreboardSlot& entry = slots_[i];
    const WorkerState state = entry.state.load(std::memory_order_relaxed);
    if (state == WorkerState::dead) {
      continue;
    }
    totals.workers_idle += state == WorkerState::idle ? 1 : 0;
    totals.workers_busy += state == WorkerState::busy ? 1 : 0;
    entry.counters.add_to(totals);
    if (active_ == ActiveConnections::slot_gauges) {
      totals.connections_active += entry.connections.load(std::memory_order_relaxed);
    }
  }
  if (active_ == ActiveConnections::busy_workers) {
    totals.connections_active = totals.workers_busy;
  }
}

std::int64_t Scoreboard::open_connections() const {
  std::int64_t open = 0;
  const std::size_t used = header_->slots_in_use.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < used; ++i) {
    if (slots_[i].state.load(std::memory_order_relaxed) != WorkerState::dead) {
      open += slots_[i].connections.load(std::memory_order_relaxed);
    }
  }
  return open;
}

MetricsTotals Scoreboard::sum() const {
  for (;;) {
    const std::uint64_t before = header_->sequence.load(std::memory_order_acquire);
    if (before % 2 == 1) {
      std::this_thread::yield();  // the master is mid-fold; it takes microseconds
      continue;
    }
    MetricsTotals totals;
    add_retired_totals(totals);
    add_live_slots(totals);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (header_->sequence.load(std::memory_order_relaxed) == before) {
      return totals;
    }
  }
}

std::vector<SelfReportingProcess> Scoreboard::live_workers() const {
  std::vector<SelfReportingProcess> workers;
  const std::size_t used = header_->slots_in_use.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < used; ++i) {
    const pid_t pid = slots_[i].pid.load(std::memory_order_acquire);
    if (pid > 0 && slots_[i].state.load(std::memory_order_relaxed) != WorkerState::dead) {
      workers.push_back(
          {pid, static_cast<std::uint64_t>(slots_[i].fork_ns.load(std::memory_order_relaxed))});
    }
  }
  return workers;
}

void Scoreboard::make_read_only() {
  if (mprotect(mapping_, mapped_bytes_, PROT_READ) != 0) {
    throw std::system_error(errno, std::generic_category(), "mprotect of the scoreboard");
  }
}

}  // namespace echolab
