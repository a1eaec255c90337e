// Process statistics read from /proc: memory (RSS and PSS), context switches, thread counts.
// Sized for prefork's worst case, 10,000 processes read in one scrape: raw open/read of three
// small files per process, no iostreams, no walk of /proc/PID/task for single-threaded
// processes, and a time budget for the costly memory reads (ProcStatsReader).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace echolab {

struct ContextSwitches {
  std::uint64_t voluntary = 0;    // the task blocked (waited for I/O, a lock, a sleep)
  std::uint64_t involuntary = 0;  // the scheduler preempted it
};

// One process at one moment.
struct ProcessSample {
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;  // start time since boot: tells a reused pid from the old one
  std::uint64_t rss_bytes = 0;
  std::uint64_t pss_bytes = 0;
  ContextSwitches switches;  // every thread of the process
  std::uint64_t threads = 0;
};

// Reads /proc/PID/{stat,status,smaps_rollup}. Returns nothing when the process is gone,
// became a zombie, or vanished between two of the reads. For the calling process itself the
// context switches come from getrusage(RUSAGE_SELF), which keeps the counts of threads that
// have exited; for any other process they are summed over its live threads.
std::optional<ProcessSample> read_process_sample(pid_t pid);

// The samples of every pid still readable, in the order given.
std::vector<ProcessSample> read_process_samples(std::span<const pid_t> pids);

// The memory the kernel accounts to one process, in more detail than a ProcessSample and
// read once, as the probes that measure what a process or a thread costs need it.
struct ProcessMemory {
  std::uint64_t rss_bytes = 0;  // resident pages mapped, shared or not
  // Each resident page divided by the number of processes mapping it, so summing PSS over
  // processes counts a shared page once.
  std::uint64_t pss_bytes = 0;
  std::uint64_t anon_huge_pages_bytes = 0;  // of the RSS, anonymous transparent huge pages
  std::uint64_t page_tables_bytes = 0;      // VmPTE
  std::uint64_t virtual_bytes = 0;          // VmSize: the address space reserved, resident or not
};

// Reads /proc/PID/smaps_rollup and /proc/PID/status. Returns nothing when the process is gone
// or is a zombie, or when the kernel does not report RSS, PSS, VmPTE or VmSize for it.
std::optional<ProcessMemory> read_process_memory(pid_t pid);

// Totals over a set of processes.
struct ProcStats {
  std::uint64_t rss_bytes = 0;
  std::uint64_t pss_bytes = 0;
  ContextSwitches switches;
  std::uint64_t processes = 0;
  std::uint64_t threads = 0;
};

ProcStats sum_samples(std::span<const ProcessSample> samples);

// Context switches of a changing set of processes as a counter that never goes backwards.
// A process that disappears (or whose pid now belongs to a newer process) leaves its last
// seen counts in a retired total, so recycling a worker does not lower the sum. Switches a
// process made after the last update and before it exited are not seen; nor are those of a
// thread that exited inside another process (each process is held at its own highest sum).
class ContextSwitchTotals {
 public:
  ContextSwitches update(std::span<const ProcessSample> samples);

 private:
  struct Seen {
    std::uint64_t start_ticks = 0;
    ContextSwitches highest;
  };
  std::unordered_map<pid_t, Seen> seen_;
  ContextSwitches retired_;
  ContextSwitches reported_;
};

// Reads the same changing set of processes scrape after scrape (the /proc side of the
// metrics). RSS and PSS come from smaps_rollup, whose cost grows with each process's mapped
// pages and is two thirds of a scrape's: a process met for the first time is always read;
// the others are read again oldest reading first, a tenth of them at least and more while
// `memory_budget` (counted from the start of the scrape) lasts. On free cores that is every
// process up to a few thousand; with prefork's 10,000 a reading is at most ten scrapes old.
// Threads and context switches are read for every process at every scrape.
class ProcStatsReader {
 public:
  static constexpr std::chrono::milliseconds kDefaultMemoryBudget{250};
  static constexpr std::size_t kMostScrapesBetweenReadings = 10;

  explicit ProcStatsReader(
      std::chrono::steady_clock::duration memory_budget = kDefaultMemoryBudget);

  // Totals over the readable processes among `pids`; the context switches never go down.
  ProcStats read(std::span<const pid_t> pids);

 private:
  struct Memory {
    std::uint64_t start_ticks = 0;
    std::uint64_t rss_bytes = 0;
    std::uint64_t pss_bytes = 0;
    std::chrono::steady_clock::time_point read_at;
  };
  void refresh_oldest_memory(std::chrono::steady_clock::time_point started,
                             std::chrono::steady_clock::time_point deadline);

  std::chrono::steady_clock::duration memory_budget_;
  std::unordered_map<pid_t, Memory> memory_;
  ContextSwitchTotals switch_totals_;
};

}  // namespace echolab
