#include "probes/thread_exhaustion_probe.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "probes/child_process.hpp"
#include "probes/idle_threads.hpp"
#include "probes/pipe.hpp"
#include "probes/probe_error.hpp"
#include "probes/proc_files.hpp"
#include "probes/task_limits.hpp"

namespace echolab::probe {
namespace {

using Clock = std::chrono::steady_clock;

// What the creating child tells the probe, in memory both see: the count as it grows (so a
// child that dies still leaves it), the rest once creation has ended.
struct SharedReport {
  long long threads = 0;
  int done = 0;
  int error = 0;
  long long rss_kib = 0;
  long long virtual_kib = 0;
  long long page_tables_kib = 0;
  long long map_count = 0;
  long long kernel_stack_kib_added = 0;
  double creation_seconds = 0;
  double creation_cpu_share = 0;
  double hold_seconds = 0;
  double hold_cpu_share = 0;
  char ended_by[256] = {};
};

// One SharedReport in a MAP_SHARED mapping, so a forked child writes where the probe reads.
class SharedReportMapping {
 public:
  SharedReportMapping() {
    void* mapping = ::mmap(nullptr, sizeof(SharedReport), PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) throw_system_error("mmap of the shared report");
    report_ = new (mapping) SharedReport();
  }
  ~SharedReportMapping() { ::munmap(report_, sizeof(SharedReport)); }
  SharedReportMapping(const SharedReportMapping&) = delete;
  SharedReportMapping& operator=(const SharedReportMapping&) = delete;
  SharedReportMapping(SharedReportMapping&&) = delete;
  SharedReportMapping& operator=(SharedReportMapping&&) = delete;

  SharedReport& report() const { return *report_; }

 private:
  SharedReport* report_ = nullptr;
};

double cpu_seconds_of_process() {
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) throw_system_error("getrusage");
  const auto seconds = [](const timeval& time) {
    return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// What every created thread shares: where it blocks, and a count of those that got there.
struct ReleaseGate {
  int fd = -1;
  std::atomic<long long> blocking{0};
};

// Each thread blocks in read() until the release pipe's write end closes: no CPU while it
// waits, and end of file wakes every thread at once.
void* block_until_released(void* gate_pointer) {
  auto& gate = *static_cast<ReleaseGate*>(gate_pointer);
  gate.blocking.fetch_add(1, std::memory_order_relaxed);
  char byte = 0;
  (void)read_byte(gate.fd, byte);
  return nullptr;
}

// The idle figure starts once every thread has reached its read(), so it does not count
// threads that were still starting; bounded, so a starved machine cannot hang the child.
void wait_until_all_block(const ReleaseGate& gate, long long threads) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (gate.blocking.load(std::memory_order_relaxed) < threads && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

long long count_lines(const std::string& text) {
  return static_cast<long long>(std::count(text.begin(), text.end(), '\n'));
}

long long max_map_count() { return std::stoll(read_file("/proc/sys/vm/max_map_count")); }

std::optional<long long> address_space_limit_bytes() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return static_cast<long long>(limit.rlim_cur);
}

// glibc's pthread_create reports a failed stack mmap as EAGAIN, like a refused clone, so the
// limit is told by which one the process stands at, not by the error.
std::string limit_that_refused(const SharedReport& report, std::size_t stack_bytes) {
  constexpr long long kGuardAndSlackBytes = 1 << 20;
  const auto address_space = address_space_limit_bytes();
  if (address_space &&
      report.virtual_kib * 1024 + static_cast<long long>(stack_bytes) + kGuardAndSlackBytes >
          *address_space) {
    return "RLIMIT_AS (address space)";
  }
  if (report.map_count + 2 >= max_map_count()) return "vm.max_map_count";
  const TaskHeadroom headroom = task_headroom();
  if (headroom.tasks == 0) return headroom.limit;
  return "memory (no task or address-space limit was near)";
}

void copy_text(char (&destination)[256], const std::string& text) {
  const std::size_t length = std::min(text.size(), sizeof destination - 1);
  std::memcpy(destination, text.data(), length);
  destination[length] = '\0';
}

struct CreationSpec {
  long long cap = 0;
  std::size_t stack_bytes = 0;  // 0: the default stack
  std::optional<long long> address_space_mib;
  double hold_seconds = 0;
};

void record_memory(SharedReport& report, long long kernel_stack_before) {
  const MemoryUsage memory = read_memory_usage(0);
  report.rss_kib = memory.rss_kib;
  report.virtual_kib = memory.virtual_kib;
  report.page_tables_kib = memory.page_tables_kib;
  report.map_count = count_lines(read_file("/proc/self/maps"));
  report.kernel_stack_kib_added = read_meminfo_kib("KernelStack") - kernel_stack_before;
}

void hold_idle(SharedReport& report, double seconds) {
  const double cpu_before = cpu_seconds_of_process();
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const std::chrono::duration<double> held = Clock::now() - start;
  report.hold_seconds = held.count();
  report.hold_cpu_share = (cpu_seconds_of_process() - cpu_before) / held.count();
}

// The creating child: threads until pthread_create fails or the cap, the report, then every
// thread released and joined.
int create_until_refused(SharedReport& report, const CreationSpec& spec, int ready_fd) {
  if (spec.address_space_mib) {
    const auto bytes = static_cast<rlim_t>(*spec.address_space_mib) << 20;
    const rlimit limit{bytes, bytes};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) return 2;
  }
  Pipe release;
  pthread_attr_t attributes;
  ::pthread_attr_init(&attributes);
  if (spec.stack_bytes != 0 && ::pthread_attr_setstacksize(&attributes, spec.stack_bytes) != 0) {
    return 3;
  }
  std::vector<pthread_t> threads;
  threads.reserve(static_cast<std::size_t>(spec.cap));
  const long long kernel_stack_before = read_meminfo_kib("KernelStack");
  const double cpu_before = cpu_seconds_of_process();
  const auto start = Clock::now();
  // Outlives every thread: they are joined before this function returns.
  ReleaseGate gate;
  gate.fd = release.read_fd();
  while (static_cast<long long>(threads.size()) < spec.cap) {
    pthread_t thread{};
    report.error = ::pthread_create(&thread, &attributes, &block_until_released, &gate);
    if (report.error != 0) break;
    threads.push_back(thread);
    std::atomic_ref(report.threads)
        .store(static_cast<long long>(threads.size()), std::memory_order_relaxed);
  }
  ::pthread_attr_destroy(&attributes);
  const std::chrono::duration<double> creation = Clock::now() - start;
  report.creation_seconds = creation.count();
  report.creation_cpu_share = (cpu_seconds_of_process() - cpu_before) / creation.count();
  record_memory(report, kernel_stack_before);
  copy_text(report.ended_by,
            report.error == 0
                ? "the cap"
                : limit_that_refused(
                      report, spec.stack_bytes == 0 ? default_stack_bytes() : spec.stack_bytes));
  wait_until_all_block(gate, static_cast<long long>(threads.size()));
  hold_idle(report, spec.hold_seconds);
  std::atomic_ref(report.done).store(1, std::memory_order_release);
  (void)write_byte(ready_fd, 'r');
  release.close_write();
  for (const pthread_t thread : threads) ::pthread_join(thread, nullptr);
  return 0;
}

enum class Wait { reported, died, timed_out };

Wait wait_for_report(int fd, double seconds) {
  pollfd readable{fd, POLLIN, 0};
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wait::timed_out;
    const int ready = ::poll(&readable, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return Wait::timed_out;
    char byte = 0;
    return read_byte(fd, byte) ? Wait::reported : Wait::died;
  }
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) {
    return "the creating process was killed by signal " + std::to_string(WTERMSIG(status)) +
           (WTERMSIG(status) == SIGKILL ? " (the OOM killer?)" : "");
  }
  return "the creating process exited with status " + std::to_string(WEXITSTATUS(status));
}

ExhaustionRun copy_report(const SharedReport& report) {
  ExhaustionRun run;
  run.threads = std::atomic_ref(const_cast<long long&>(report.threads)).load();
  run.ended_by = report.ended_by;
  run.error = report.error == 0 ? "" : std::strerror(report.error);
  run.rss_kib = report.rss_kib;
  run.virtual_kib = report.virtual_kib;
  run.page_tables_kib = report.page_tables_kib;
  run.map_count = report.map_count;
  run.kernel_stack_kib_added = report.kernel_stack_kib_added;
  run.creation_seconds = report.creation_seconds;
  run.creation_cpu_share = report.creation_cpu_share;
  run.hold_seconds = report.hold_seconds;
  run.hold_cpu_share = report.hold_cpu_share;
  return run;
}

ExhaustionRun exhaust(const std::string& stack, const CreationSpec& spec, double max_seconds) {
  const SharedReportMapping mapping;
  Pipe ready;
  ChildProcess child = fork_child([&] {
    ready.close_read();
    return create_until_refused(mapping.report(), spec, ready.write_fd());
  });
  ready.close_write();
  const Wait outcome = wait_for_report(ready.read_fd(), max_seconds);
  ExhaustionRun run = copy_report(mapping.report());
  run.stack = stack;
  run.stack_kib =
      static_cast<long long>(spec.stack_bytes == 0 ? default_stack_bytes() : spec.stack_bytes) /
      1024;
  run.reported = outcome == Wait::reported;
  if (outcome == Wait::timed_out) {
    run.ended_by = "the time limit (--max-seconds)";
  } else {
    // The report is in; the child releases and joins its threads, which ends it.
    const int status = child.wait_for_exit();
    if (outcome == Wait::died) run.ended_by = how_it_ended(status);
  }
  return run;
}

Json to_json(const ExhaustionRun& run) {
  const double threads = static_cast<double>(std::max(1LL, run.threads));
  return {
      {"stack", run.stack},
      {"stack_kib", run.stack_kib},
      {"threads", run.threads},
      {"ended_by", run.ended_by},
      {"error", run.error.empty() ? Json(nullptr) : Json(run.error)},
      {"reported", run.reported},
      {"rss_kib", run.rss_kib},
      {"rss_kib_per_thread", figure(static_cast<double>(run.rss_kib) / threads)},
      {"virtual_kib", run.virtual_kib},
      {"virtual_kib_per_thread", figure(static_cast<double>(run.virtual_kib) / threads)},
      {"page_tables_kib", run.page_tables_kib},
      {"map_count", run.map_count},
      {"kernel_stack_kib_added", run.kernel_stack_kib_added},
      {"creation_seconds", figure(run.creation_seconds)},
      {"creation_cpu_share", figure(run.creation_cpu_share)},
      {"hold_seconds", figure(run.hold_seconds)},
      {"hold_cpu_share", figure(run.hold_cpu_share)},
  };
}

}  // namespace

ThreadExhaustionResult run_thread_exhaustion_probe(const ThreadExhaustionOptions& options) {
  ThreadExhaustionResult result;
  result.options = options;
  const TaskHeadroom headroom = task_headroom();
  result.task_headroom = headroom.tasks;
  result.task_headroom_limit = headroom.limit;
  result.cap = std::min(options.cap, headroom.tasks);
  result.cap_set_by = result.cap < options.cap ? headroom.limit : "--cap";
  if (result.cap < 1) throw ProbeError(headroom.limit + " leaves no room for another thread");
  result.mem_available_kib = read_meminfo_kib("MemAvailable");
  result.max_map_count = max_map_count();
  CreationSpec spec{result.cap, 0, options.address_space_mib, options.hold_seconds};
  result.runs.push_back(exhaust("default", spec, options.max_seconds));
  spec.stack_bytes = static_cast<std::size_t>(options.small_stack_kib) * 1024;
  result.runs.push_back(exhaust("small", spec, options.max_seconds));
  return result;
}

Json to_json(const ThreadExhaustionResult& result) {
  Json runs = Json::array();
  for (const ExhaustionRun& run : result.runs) runs.push_back(to_json(run));
  return {
      {"probe", "thread-exhaustion"},
      {"kernel", kernel_release()},
      {"cap_requested", result.options.cap},
      {"cap", result.cap},
      {"cap_set_by", result.cap_set_by},
      {"task_headroom", result.task_headroom},
      {"task_headroom_limit", result.task_headroom_limit},
      {"address_space_mib",
       result.options.address_space_mib ? Json(*result.options.address_space_mib) : Json(nullptr)},
      {"mem_available_kib", result.mem_available_kib},
      {"max_map_count", result.max_map_count},
      {"runs", runs},
  };
}

std::string summary_line(const ThreadExhaustionResult& result) {
  std::string line = "thread-exhaustion (cap " + std::to_string(result.cap) + ")";
  for (const ExhaustionRun& run : result.runs) {
    line += "; " + run.stack + " stack (" + std::to_string(run.stack_kib) +
            " KiB): " + std::to_string(run.threads) + " threads, ended by " + run.ended_by + ", " +
            std::to_string(run.rss_kib / 1024) + " MiB resident, " +
            std::to_string(run.virtual_kib / 1024) + " MiB reserved, CPU " +
            fixed_decimals(100 * run.hold_cpu_share, 1) + "% while they idled";
  }
  return line;
}

}  // namespace echolab::probe
