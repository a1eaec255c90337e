#include "common/metrics/proc_stats.hpp"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <latch>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace echolab {
namespace {

// Children that block on a pipe until this object goes away, then exit; always reaped.
// Only one set may be alive at a time (a later set would inherit the earlier pipe). The
// constructor returns once every child has reported in, so their memory has settled: a child
// still running the code after fork() faults in pages from one reading to the next.
class SleepingChildren {
 public:
  explicit SleepingChildren(std::size_t count) {
    int ends[2];
    int ready[2];
    if (pipe(ends) != 0 || pipe(ready) != 0) {
      throw std::system_error(errno, std::generic_category(), "pipe");
    }
    write_end_ = ends[1];
    for (std::size_t index = 0; index < count; ++index) {
      const pid_t pid = fork();
      if (pid == 0) {
        close(ends[1]);
        close(ready[0]);
        char byte = 0;
        static_cast<void>(write(ready[1], "r", 1));
        while (read(ends[0], &byte, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
      }
      if (pid < 0) {
        break;  // the test sees fewer children than it asked for
      }
      pids_.push_back(pid);
    }
    close(ends[0]);
    close(ready[1]);
    char byte = 0;
    for (std::size_t reported = 0; reported < pids_.size() && read(ready[0], &byte, 1) == 1;) {
      ++reported;
    }
    close(ready[0]);
  }
  ~SleepingChildren() {
    close(write_end_);
    for (const pid_t pid : pids_) {
      waitpid(pid, nullptr, 0);
    }
  }
  SleepingChildren(const SleepingChildren&) = delete;
  SleepingChildren& operator=(const SleepingChildren&) = delete;
  SleepingChildren(SleepingChildren&&) = delete;
  SleepingChildren& operator=(SleepingChildren&&) = delete;

  [[nodiscard]] const std::vector<pid_t>& pids() const { return pids_; }

 private:
  int write_end_ = -1;
  std::vector<pid_t> pids_;
};

double thread_cpu_microseconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e6 + static_cast<double>(now.tv_nsec) / 1e3;
}

#if defined(__SANITIZE_THREAD__)
#define ECHOLAB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ECHOLAB_TSAN 1
#endif
#endif

// The threads of `children` sleeping forked children: one each; under TSan one or two, as
// its runtime may start its helper thread again in a child.
void expect_threads_of_children(std::uint64_t threads, std::uint64_t children) {
#ifdef ECHOLAB_TSAN
  EXPECT_GE(threads, children);
  EXPECT_LE(threads, 2 * children);
#else
  EXPECT_EQ(threads, children);
#endif
}

// A sanitizer runtime (TSan) starts a helper thread of its own with the first thread the
// process creates: create one first, so that thread counts then change by the test's only.
void let_runtime_start_its_threads() {
  std::thread([] {}).join();
}

ProcessSample self_sample() {
  const auto sample = read_process_sample(getpid());
  if (!sample) {
    throw std::runtime_error("cannot read this process's own /proc files");
  }
  return *sample;
}

TEST(ReadProcessSample, ReadsThisProcess) {
  const ProcessSample self = self_sample();
  EXPECT_EQ(self.pid, getpid());
  EXPECT_GT(self.start_ticks, 0U);
  EXPECT_GT(self.rss_bytes, 1U << 20);
  EXPECT_GT(self.pss_bytes, 0U);
  EXPECT_LE(self.pss_bytes, self.rss_bytes);
  EXPECT_GE(self.threads, 1U);
}

TEST(ReadProcessSample, CountsTheThreadsThatRun) {
  let_runtime_start_its_threads();
  const std::uint64_t before = self_sample().threads;
  std::latch release(1);
  std::vector<std::thread> threads;
  threads.reserve(3);
  for (int index = 0; index < 3; ++index) {
    threads.emplace_back([&release] { release.wait(); });
  }
  EXPECT_EQ(self_sample().threads, before + 3);
  release.count_down();
  for (auto& thread : threads) {
    thread.join();
  }
  // A joined thread leaves the thread group a moment after join() returns.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (self_sample().threads != before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(self_sample().threads, before);
}

TEST(ReadProcessSample, KeepsTheSwitchesOfThreadsThatExited) {
  const std::uint64_t before = self_sample().switches.voluntary;
  std::thread sleeper([] {
    for (int sleep = 0; sleep < 20; ++sleep) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // each one blocks: voluntary
    }
  });
  sleeper.join();
  EXPECT_GE(self_sample().switches.voluntary, before + 20);
}

TEST(ReadProcessSample, ReadsAForkedChildThatSharesItsPages) {
  let_runtime_start_its_threads();
  const SleepingChildren children(1);
  ASSERT_EQ(children.pids().size(), 1U);
  const auto child = read_process_sample(children.pids().front());
  ASSERT_TRUE(child);
  expect_threads_of_children(child->threads, 1);
  EXPECT_GT(child->rss_bytes, 0U);
  // After fork() parent and child share every page: PSS gives the child only its part.
  EXPECT_LT(child->pss_bytes, child->rss_bytes);

  const ProcessSample self = self_sample();
  const std::vector<pid_t> pids = {getpid(), children.pids().front()};
  const ProcStats stats = sum_samples(read_process_samples(pids));
  EXPECT_EQ(stats.processes, 2U);
  expect_threads_of_children(stats.threads - self.threads, 1);
  EXPECT_LE(stats.pss_bytes, stats.rss_bytes);
}

// A child that has exited but is not reaped yet: a zombie, still listed in /proc.
pid_t make_zombie() {
  const pid_t child = fork();
  if (child == 0) {
    _exit(0);
  }
  siginfo_t info{};
  if (child > 0 && waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) != 0) {
    return -1;
  }
  return child;
}

TEST(ReadProcessSample, SkipsZombiesAndReapedProcesses) {
  const pid_t child = make_zombie();
  ASSERT_GT(child, 0);
  EXPECT_EQ(access(("/proc/" + std::to_string(child) + "/stat").c_str(), R_OK), 0);
  EXPECT_FALSE(read_process_sample(child));
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_FALSE(read_process_sample(child));
  const std::vector<pid_t> pids = {child, getpid()};
  EXPECT_EQ(read_process_samples(pids).size(), 1U);
}

TEST(ReadProcessMemory, ReadsThisProcessAndSeesPagesItWrites) {
  const auto before = read_process_memory(getpid());
  ASSERT_TRUE(before);
  EXPECT_GT(before->rss_bytes, 1U << 20);
  EXPECT_GT(before->pss_bytes, 0U);
  EXPECT_LE(before->pss_bytes, before->rss_bytes);
  EXPECT_GT(before->page_tables_bytes, 0U);
  EXPECT_GE(before->virtual_bytes, before->rss_bytes);

  constexpr std::size_t kWritten = 64U << 20;
  void* pages = mmap(nullptr, kWritten, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(pages, MAP_FAILED);
  std::memset(pages, 1, kWritten);
  const auto after = read_process_memory(getpid());
  munmap(pages, kWritten);
  ASSERT_TRUE(after);
  EXPECT_GE(after->virtual_bytes, before->virtual_bytes + kWritten);
  EXPECT_GE(after->rss_bytes, before->rss_bytes + kWritten * 9 / 10);
  // PSS also moves with the pages this process shares: ctest runs other instances of this
  // binary beside it, and one starting or exiting between the two readings shifts this
  // process's share of the binary's pages by megabytes (a 1 MiB shortfall was seen under ASan).
  EXPECT_GE(after->pss_bytes, before->pss_bytes + kWritten * 3 / 4);
}

TEST(ReadProcessMemory, AForkedChildSharesItsPagesWithTheParent) {
  const SleepingChildren children(1);
  ASSERT_EQ(children.pids().size(), 1U);
  const auto child = read_process_memory(children.pids().front());
  ASSERT_TRUE(child);
  EXPECT_GT(child->rss_bytes, 0U);
  EXPECT_LT(child->pss_bytes, child->rss_bytes);
  EXPECT_GT(child->page_tables_bytes, 0U);
}

TEST(ReadProcessMemory, NothingForAZombieOrAReapedProcess) {
  const pid_t child = make_zombie();
  ASSERT_GT(child, 0);
  EXPECT_FALSE(read_process_memory(child));
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_FALSE(read_process_memory(child));
}

TEST(ReadProcessSamples, ReadsAThousandProcesses) {
  constexpr std::size_t kChildren = 1000;
  const SleepingChildren children(kChildren);
  ASSERT_EQ(children.pids().size(), kChildren);
  std::vector<pid_t> pids = children.pids();
  pids.push_back(getpid());

  const auto started = std::chrono::steady_clock::now();
  const double cpu_started = thread_cpu_microseconds();
  const std::vector<ProcessSample> samples = read_process_samples(pids);
  const double cpu = thread_cpu_microseconds() - cpu_started;
  const std::chrono::duration<double, std::micro> wall = std::chrono::steady_clock::now() - started;

  ASSERT_EQ(samples.size(), kChildren + 1);
  const ProcStats stats = sum_samples(samples);
  EXPECT_EQ(stats.processes, kChildren + 1);
  EXPECT_GE(stats.threads, kChildren + 1);
  // Reported, not asserted: speed targets belong to benchmarks, not to unit tests.
  const double cpu_per_process = cpu / static_cast<double>(pids.size());
  RecordProperty("cpu_microseconds_per_process", std::to_string(cpu_per_process));
  std::cout << "read " << pids.size() << " processes: " << cpu_per_process << " us of CPU each, "
            << wall.count() / 1000 << " ms wall in all\n";
}

// Pids above the kernel's PID_MAX_LIMIT (4,194,304): never a real process.
constexpr pid_t kFakePid = 4'194'305;

ProcessSample fake(pid_t pid, std::uint64_t start_ticks, std::uint64_t voluntary,
                   std::uint64_t involuntary) {
  ProcessSample sample;
  sample.pid = pid;
  sample.start_ticks = start_ticks;
  sample.switches = {voluntary, involuntary};
  return sample;
}

void expect_switches(const ContextSwitches& switches, std::uint64_t voluntary,
                     std::uint64_t involuntary) {
  EXPECT_EQ(switches.voluntary, voluntary);
  EXPECT_EQ(switches.involuntary, involuntary);
}

TEST(ContextSwitchTotals, AnExitedProcessKeepsItsCountsInTheTotal) {
  ContextSwitchTotals totals;
  const pid_t a = kFakePid;
  const pid_t b = kFakePid + 1;
  expect_switches(totals.update(std::vector{fake(a, 1, 5, 1), fake(b, 1, 3, 0)}), 8, 1);
  expect_switches(totals.update(std::vector{fake(a, 1, 6, 1)}), 9, 1);  // b exited
  // b's pid reused by a newer process: counted from its own zero.
  expect_switches(totals.update(std::vector{fake(a, 1, 6, 1), fake(b, 7, 1, 0)}), 10, 1);
}

TEST(ContextSwitchTotals, APidReusedWithinOneScrapeRetiresTheOldProcess) {
  ContextSwitchTotals totals;
  expect_switches(totals.update(std::vector{fake(kFakePid, 1, 50, 5)}), 50, 5);
  expect_switches(totals.update(std::vector{fake(kFakePid, 2, 1, 0)}), 51, 5);
}

TEST(ContextSwitchTotals, AProcessWhoseSumDropsIsHeldAtItsHighest) {
  ContextSwitchTotals totals;  // a thread exited inside the process
  expect_switches(totals.update(std::vector{fake(kFakePid, 1, 6, 2)}), 6, 2);
  expect_switches(totals.update(std::vector{fake(kFakePid, 1, 4, 1)}), 6, 2);
  expect_switches(totals.update(std::vector{fake(kFakePid, 1, 7, 2)}), 7, 2);
}

TEST(ContextSwitchTotals, ARunningProcessMissingFromOneListIsNotCountedTwice) {
  const SleepingChildren children(1);
  ASSERT_EQ(children.pids().size(), 1U);
  const auto child = read_process_sample(children.pids().front());
  ASSERT_TRUE(child);
  ContextSwitchTotals totals;
  const auto with = [&](std::uint64_t voluntary) {
    return std::vector{fake(child->pid, child->start_ticks, voluntary, 0)};
  };
  expect_switches(totals.update(with(10)), 10, 0);
  expect_switches(totals.update(std::vector<ProcessSample>{}), 10, 0);
  expect_switches(totals.update(with(12)), 12, 0);
}

TEST(ContextSwitchTotals, FollowsRealProcessesAsTheyExit) {
  ContextSwitchTotals totals;
  ContextSwitches with_children;
  {
    const SleepingChildren children(20);
    std::vector<pid_t> pids = children.pids();
    pids.push_back(getpid());
    with_children = totals.update(read_process_samples(pids));
  }
  const std::vector<pid_t> self = {getpid()};
  const ContextSwitches after = totals.update(read_process_samples(self));
  EXPECT_GE(after.voluntary, with_children.voluntary);
  EXPECT_GE(after.involuntary, with_children.involuntary);
}

// A child that, asked to, touches a block of fresh memory, then sleeps until released.
class GrowingChild {
 public:
  static constexpr std::size_t kGrowth = 32U << 20;

  GrowingChild() {
    if (pipe(command_) != 0 || pipe(done_) != 0) {
      throw std::system_error(errno, std::generic_category(), "pipe");
    }
    pid_ = fork();
    if (pid_ == 0) {
      close(command_[1]);
      close(done_[0]);
      char byte = 0;
      if (read(command_[0], &byte, 1) == 1) {
        auto* block = static_cast<volatile char*>(malloc(kGrowth));
        for (std::size_t offset = 0; offset < kGrowth; offset += 4096) {
          block[offset] = 1;
        }
        [[maybe_unused]] const auto written = write(done_[1], "1", 1);
        [[maybe_unused]] const auto ignored = read(command_[0], &byte, 1);  // until released
      }
      _exit(0);
    }
    close(command_[0]);
    close(done_[1]);
  }
  ~GrowingChild() {
    close(command_[1]);
    close(done_[0]);
    if (pid_ > 0) {
      waitpid(pid_, nullptr, 0);
    }
  }
  GrowingChild(const GrowingChild&) = delete;
  GrowingChild& operator=(const GrowingChild&) = delete;
  GrowingChild(GrowingChild&&) = delete;
  GrowingChild& operator=(GrowingChild&&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  bool grow() {
    char byte = 0;
    return write(command_[1], "g", 1) == 1 && read(done_[0], &byte, 1) == 1;
  }

 private:
  int command_[2] = {-1, -1};
  int done_[2] = {-1, -1};
  pid_t pid_ = -1;
};

ServerProcesses inspecting(const std::vector<pid_t>& pids) {
  ServerProcesses processes;
  processes.inspected = pids;
  return processes;
}

ServerProcesses of_workers(const std::vector<SelfReportingProcess>& workers) {
  ServerProcesses processes;
  processes.workers = workers;
  return processes;
}

// Workers as the prefork scoreboard lists them; the generation only has to be stable.
ServerProcesses as_workers(const std::vector<pid_t>& pids) {
  std::vector<SelfReportingProcess> workers;
  workers.reserve(pids.size());
  for (const pid_t pid : pids) {
    workers.push_back({pid, static_cast<std::uint64_t>(pid) * 7});
  }
  return of_workers(workers);
}

TEST(ProcStatsReader, ReadsEveryInspectedProcessOnce) {
  let_runtime_start_its_threads();
  const SleepingChildren children(3);
  ServerProcesses processes = inspecting(children.pids());
  processes.inspected.push_back(getpid());
  processes.inspected.push_back(getpid());  // listed twice: counted once
  ProcStatsReader reader;
  const ProcStats stats = reader.read(processes);
  EXPECT_EQ(stats.processes, 4U);
  expect_threads_of_children(stats.threads - self_sample().threads, 3);
  EXPECT_GT(stats.rss_bytes, 0U);
  EXPECT_LE(stats.pss_bytes, stats.rss_bytes);
}

TEST(ProcStatsReader, WorkersNotReadYetCountAsTheMeanOfTheReadOnes) {
  const SleepingChildren children(20);
  ASSERT_EQ(children.pids().size(), 20U);
  std::uint64_t rss_one_by_one = 0;
  for (const pid_t pid : children.pids()) {
    rss_one_by_one += read_process_memory(pid).value().rss_bytes;
  }
  // Without budget only a tenth (two) are read; the other eighteen count as their mean.
  ProcStatsReader no_budget(std::chrono::seconds(0));
  const ProcStats stats = no_budget.read(as_workers(children.pids()));
  EXPECT_EQ(stats.processes, 20U);
  EXPECT_EQ(stats.threads, 20U);  // workers are single-threaded by contract
  // The children are alike forks: the estimate is within a few pages of the real sum.
  EXPECT_NEAR(static_cast<double>(stats.rss_bytes), static_cast<double>(rss_one_by_one),
              0.1 * static_cast<double>(rss_one_by_one))
      << "sum of the " << children.pids().size() << " read one by one just before";
  EXPECT_LE(stats.pss_bytes, stats.rss_bytes);
}

TEST(ProcStatsReader, ReadsWorkerMemoryAgainWhileTheBudgetLasts) {
  const SleepingChildren sleepers(19);
  GrowingChild child;  // after the sleepers: it must not hold their pipe open
  std::vector<pid_t> pids = sleepers.pids();
  pids.push_back(child.pid());  // listed last, so it is read last
  const ServerProcesses processes = as_workers(pids);
  ProcStatsReader no_budget(std::chrono::seconds(0));
  const ProcStats first = no_budget.read(processes);
  ASSERT_EQ(first.processes, 20U);

  // The other processes' memory drifts by a few pages; the child grows by 32 MiB.
  constexpr std::uint64_t kClearlyGrown = GrowingChild::kGrowth / 2;
  ASSERT_TRUE(child.grow());
  EXPECT_GE(ProcStatsReader().read(processes).rss_bytes, first.rss_bytes + kClearlyGrown);
  // Without budget a tenth is read per scrape (two of twenty), never-read ones first, so the
  // grown child is not seen at once...
  const ProcStats stale = no_budget.read(processes);
  EXPECT_EQ(stale.processes, 20U);
  EXPECT_LT(stale.rss_bytes, first.rss_bytes + kClearlyGrown);
  // ...but within ten scrapes.
  for (std::size_t scrape = 1; scrape < ProcStatsReader::kMostScrapesBetweenReadings; ++scrape) {
    no_budget.read(processes);
  }
  EXPECT_GE(no_budget.read(processes).rss_bytes, first.rss_bytes + kClearlyGrown);
}

TEST(ProcStatsReader, AWorkerWithANewGenerationIsReadAgain) {
  GrowingChild child;
  ProcStatsReader no_budget(std::chrono::seconds(0));
  const SelfReportingProcess before{child.pid(), 1};
  const ProcStats first = no_budget.read(of_workers({before}));
  ASSERT_TRUE(child.grow());
  // The same pid under a new generation is another process: its memory is read again at once.
  const SelfReportingProcess after{child.pid(), 2};
  EXPECT_GE(no_budget.read(of_workers({after})).rss_bytes,
            first.rss_bytes + GrowingChild::kGrowth / 2);
}

TEST(ProcStatsReader, AddsTheWorkersOwnSwitchesAndNeverGoesDown) {
  ProcStatsReader reader;
  const ProcStats alone = reader.read(this_process());
  ServerProcesses with_workers = this_process();
  with_workers.worker_switches = {1'000'000, 2'000'000};
  const ProcStats added = reader.read(with_workers);
  EXPECT_GE(added.switches.voluntary, alone.switches.voluntary + 1'000'000);
  EXPECT_GE(added.switches.involuntary, alone.switches.involuntary + 2'000'000);
  // A lower report (a sum read in mid-change) is not passed on.
  const ProcStats after = reader.read(this_process());
  EXPECT_GE(after.switches.voluntary, added.switches.voluntary);
  EXPECT_GE(after.switches.involuntary, added.switches.involuntary);
}

TEST(ProcStatsReader, SwitchesStayWhenProcessesExit) {
  ProcStatsReader reader;
  ProcStats with_children;
  {
    const SleepingChildren children(10);
    ServerProcesses processes = inspecting(children.pids());
    processes.inspected.push_back(getpid());
    with_children = reader.read(processes);
    EXPECT_EQ(with_children.processes, 11U);
  }
  const ProcStats after = reader.read(this_process());
  EXPECT_EQ(after.processes, 1U);
  EXPECT_GE(after.switches.voluntary, with_children.switches.voluntary);
  EXPECT_GE(after.switches.involuntary, with_children.switches.involuntary);
}

}  // namespace
}  // namespace echolab
