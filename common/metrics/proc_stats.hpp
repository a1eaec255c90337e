// Process statistics read from /proc: memory (RSS and PSS), context switches, thread counts.
// Sized for prefork's worst case, 10,000 processes in one scrape: raw open/read of small
// files, no iostreams, no walk of /proc/PID/task for single-threaded processes, context
// switches the workers count themselves, and a time budget for the costly memory reads
// (ProcStatsReader).
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

// A process that counts its own context switches (prefork's children do, into their
// scoreboard slots) and runs a single thread: of /proc only its memory is read.
struct SelfReportingProcess {
  pid_t pid = 0;
  std::uint64_t generation = 0;  // differs between two processes that held the same pid
};

// The processes of one server as the /proc side of its metrics sees them at one scrape.
struct ServerProcesses {
  // Read whole from /proc at every scrape: the few processes that are not workers (the
  // threads or pool server itself; prefork's master and metrics process).
  std::vector<pid_t> inspected;
  // Many alike processes (prefork's children): memory sampled within a time budget,
  // context switches as they count them themselves.
  std::vector<SelfReportingProcess> workers;
  ContextSwitches worker_switches;  // exited workers included; never decreasing
};

// The calling process with all its threads: what the threads and pool servers are.
ServerProcesses this_process();

// Reads a server's processes scrape after scrape. The inspected processes are read whole
// every time. Of the workers only memory is read, from smaps_rollup, whose cost grows with
// a process's mapped pages (about 60 us for a prefork child, three quarters of a whole
// read): workers never read come first, then the oldest readings, a tenth of the workers at
// least and more while `memory_budget` (counted from the start of the scrape) lasts. A
// worker not read yet counts as the mean of those read: they are forks of one master doing
// one job. On free cores every worker up to a few thousand is read at every scrape; with
// prefork's 10,000, a reading is at most ten scrapes old once no new workers come.
class ProcStatsReader {
 public:
  static constexpr std::chrono::milliseconds kDefaultMemoryBudget{250};
  static constexpr std::size_t kMostScrapesBetweenReadings = 10;

  explicit ProcStatsReader(
      std::chrono::steady_clock::duration memory_budget = kDefaultMemoryBudget);

  // Totals over the readable inspected processes and every worker; the context switches
  // never go down.
  ProcStats read(const ServerProcesses& processes);

 private:
  struct WorkerMemory {
    std::uint64_t generation = 0;
    bool read = false;
    std::uint64_t rss_bytes = 0;
    std::uint64_t pss_bytes = 0;
    std::chrono::steady_clock::time_point read_at;
  };
  struct MemoryTotals {
    std::uint64_t rss_bytes = 0;
    std::uint64_t pss_bytes = 0;
  };
  MemoryTotals sample_worker_memory(std::span<const SelfReportingProcess> workers,
                                    std::chrono::steady_clock::time_point deadline);
  void read_oldest_worker_memory(std::span<const SelfReportingProcess> workers,
                                 std::chrono::steady_clock::time_point deadline);

  std::chrono::steady_clock::duration memory_budget_;
  std::unordered_map<pid_t, WorkerMemory> workers_;
  ContextSwitchTotals inspected_switches_;
  ContextSwitches reported_switches_;
};

}  // namespace echolab
