#include "probes/thread_memory_probe.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "probes/child_process.hpp"
#include "probes/idle_threads.hpp"
#include "probes/pipe.hpp"
#include "probes/probe_error.hpp"
#include "probes/proc_files.hpp"
#include "probes/sampling.hpp"
#include "probes/task_limits.hpp"

namespace echolab::probe {
namespace {

struct ProcessSnapshot {
  MemoryUsage memory;
  long long kernel_stack_kib = 0;
};

ProcessSnapshot snapshot_of_this_process() {
  return {read_memory_usage(0), read_meminfo_kib("KernelStack")};
}

// What one batch cost, per thread. A plain struct: it crosses a pipe from the child that
// measured it.
struct BatchCost {
  double rss_kib = 0;
  double pss_kib = 0;
  double virtual_kib = 0;
  double page_tables_kib = 0;
  double kernel_stack_kib = 0;
  char error[256] = {};
};

BatchCost measure_batch(int count, std::size_t stack_bytes, std::size_t touch_bytes) {
  const ProcessSnapshot before = snapshot_of_this_process();
  const IdleThreads idle(count, stack_bytes, touch_bytes);
  const ProcessSnapshot after = snapshot_of_this_process();
  const auto per_thread = [count](long long before_kib, long long after_kib) {
    return static_cast<double>(after_kib - before_kib) / count;
  };
  BatchCost cost;
  cost.rss_kib = per_thread(before.memory.rss_kib, after.memory.rss_kib);
  cost.pss_kib = per_thread(before.memory.pss_kib, after.memory.pss_kib);
  cost.virtual_kib = per_thread(before.memory.virtual_kib, after.memory.virtual_kib);
  cost.page_tables_kib = per_thread(before.memory.page_tables_kib, after.memory.page_tables_kib);
  cost.kernel_stack_kib = per_thread(before.kernel_stack_kib, after.kernel_stack_kib);
  return cost;
}

// Each batch runs in a fresh child process: glibc keeps the stacks of exited threads for
// reuse (up to 40 MiB), and a second batch in the same process would reuse them and show
// less memory than a first one does.
BatchCost measure_batch_in_fresh_process(int count, std::size_t stack_bytes,
                                         std::size_t touch_bytes) {
  Pipe result;
  ChildProcess child = fork_child([&] {
    BatchCost cost;
    try {
      cost = measure_batch(count, stack_bytes, touch_bytes);
    } catch (const std::exception& error) {
      std::strncpy(cost.error, error.what(), sizeof cost.error - 1);
    }
    const bool sent = ::write(result.write_fd(), &cost, sizeof cost) == sizeof cost;
    return sent ? 0 : 1;
  });
  result.close_write();
  BatchCost cost;
  const ssize_t got = ::read(result.read_fd(), &cost, sizeof cost);
  child.wait_for_exit();
  if (got != static_cast<ssize_t>(sizeof cost)) {
    throw ProbeError("the measuring child died before it reported");
  }
  if (cost.error[0] != '\0') throw ProbeError(cost.error);
  return cost;
}

ThreadMemoryFigures measure_stack(const ThreadMemoryOptions& options, std::size_t stack_bytes) {
  const auto touch_bytes = static_cast<std::size_t>(options.touch_stack_kib) << 10;
  const std::vector<BatchCost> costs = collect_within_budget(
      options.samples, options.max_seconds_per_figure,
      [&] { return measure_batch_in_fresh_process(options.threads, stack_bytes, touch_bytes); });
  ThreadMemoryFigures figures;
  figures.stack_kib =
      static_cast<long long>((stack_bytes == 0 ? default_stack_bytes() : stack_bytes) >> 10);
  figures.rss_kib_per_thread = summarize_field(costs, &BatchCost::rss_kib);
  figures.pss_kib_per_thread = summarize_field(costs, &BatchCost::pss_kib);
  figures.virtual_kib_per_thread = summarize_field(costs, &BatchCost::virtual_kib);
  figures.page_tables_kib_per_thread = summarize_field(costs, &BatchCost::page_tables_kib);
  figures.kernel_stack_kib_per_thread = summarize_field(costs, &BatchCost::kernel_stack_kib);
  return figures;
}

Json to_json(const ThreadMemoryFigures& figures) {
  return {
      {"stack_kib", figures.stack_kib},
      {"rss_kib_per_thread", to_json(figures.rss_kib_per_thread)},
      {"pss_kib_per_thread", to_json(figures.pss_kib_per_thread)},
      {"virtual_kib_per_thread", to_json(figures.virtual_kib_per_thread)},
      {"page_tables_kib_per_thread", to_json(figures.page_tables_kib_per_thread)},
      {"kernel_stack_kib_per_thread", to_json(figures.kernel_stack_kib_per_thread)},
  };
}

std::string describe(const ThreadMemoryFigures& figures) {
  return std::to_string(figures.stack_kib) + " KiB stacks: RSS " +
         fixed_decimals(figures.rss_kib_per_thread.median, 1) + " KiB, PSS " +
         fixed_decimals(figures.pss_kib_per_thread.median, 1) + " KiB, virtual " +
         fixed_decimals(figures.virtual_kib_per_thread.median, 0) + " KiB, kernel stack " +
         fixed_decimals(figures.kernel_stack_kib_per_thread.median, 1) + " KiB";
}

}  // namespace

ThreadMemoryResult run_thread_memory_probe(const ThreadMemoryOptions& options) {
  if (options.touch_stack_kib * 2 > options.small_stack_kib) {
    throw ProbeError("--touch-stack-kib must be at most half of --small-stack-kib");
  }
  require_task_headroom(options.threads + 1, std::to_string(options.threads) + " threads",
                        "--threads");
  ThreadMemoryResult result;
  result.options = options;
  result.default_stack = measure_stack(options, 0);
  result.small_stack =
      measure_stack(options, static_cast<std::size_t>(options.small_stack_kib) << 10);
  return result;
}

Json to_json(const ThreadMemoryResult& result) {
  return {
      {"probe", "thread-memory"},
      {"kernel", kernel_release()},
      {"threads", result.options.threads},
      {"samples_requested", result.options.samples},
      {"touch_stack_kib", result.options.touch_stack_kib},
      {"default_stack", to_json(result.default_stack)},
      {"small_stack", to_json(result.small_stack)},
  };
}

std::string summary_line(const ThreadMemoryResult& result) {
  return "thread-memory (medians per idle thread, " + std::to_string(result.options.threads) +
         " threads): " + describe(result.default_stack) + "; " + describe(result.small_stack);
}

}  // namespace echolab::probe
