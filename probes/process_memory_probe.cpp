#include "probes/process_memory_probe.hpp"

#include <vector>

#include "probes/anonymous_pages.hpp"
#include "probes/idle_children.hpp"
#include "probes/proc_files.hpp"
#include "probes/sampling.hpp"
#include "probes/task_limits.hpp"

namespace echolab::probe {
namespace {

struct SampleCost {
  double rss_kib = 0;
  double pss_kib = 0;
  double pss_added_kib = 0;
  double page_tables_kib = 0;
  double kernel_stack_kib = 0;
};

SampleCost measure_sample(const ProcessMemoryOptions& options) {
  const MemoryUsage parent_before = read_memory_usage(0);
  const long long kernel_stack_before = read_meminfo_kib("KernelStack");
  IdleChildren idle(options.processes, static_cast<std::size_t>(options.touch_kib) << 10);
  long long rss = 0;
  long long pss = 0;
  long long page_tables = 0;
  for (const ChildProcess& child : idle.children()) {
    const MemoryUsage usage = read_memory_usage(child.pid());
    rss += usage.rss_kib;
    pss += usage.pss_kib;
    page_tables += usage.page_tables_kib;
  }
  const MemoryUsage parent_after = read_memory_usage(0);
  const long long kernel_stack_after = read_meminfo_kib("KernelStack");
  idle.release_and_reap();

  const double count = options.processes;
  SampleCost cost;
  cost.rss_kib = static_cast<double>(rss) / count;
  cost.pss_kib = static_cast<double>(pss) / count;
  cost.pss_added_kib =
      static_cast<double>(pss + parent_after.pss_kib - parent_before.pss_kib) / count;
  cost.page_tables_kib = static_cast<double>(page_tables) / count;
  cost.kernel_stack_kib = static_cast<double>(kernel_stack_after - kernel_stack_before) / count;
  return cost;
}

ProcessMemoryFigures measure_from_this_parent(const ProcessMemoryOptions& options) {
  ProcessMemoryFigures figures;
  const MemoryUsage parent = read_memory_usage(0);
  figures.parent_rss_kib = parent.rss_kib;
  figures.parent_pss_kib = parent.pss_kib;
  const std::vector<SampleCost> costs = collect_within_budget(
      options.samples, options.max_seconds_per_figure, [&] { return measure_sample(options); });
  figures.rss_kib_per_process = summarize_field(costs, &SampleCost::rss_kib);
  figures.pss_kib_per_process = summarize_field(costs, &SampleCost::pss_kib);
  figures.pss_added_kib_per_process = summarize_field(costs, &SampleCost::pss_added_kib);
  figures.page_tables_kib_per_process = summarize_field(costs, &SampleCost::page_tables_kib);
  figures.kernel_stack_kib_per_process = summarize_field(costs, &SampleCost::kernel_stack_kib);
  return figures;
}

Json to_json(const ProcessMemoryFigures& figures) {
  return {
      {"parent_rss_kib", figures.parent_rss_kib},
      {"parent_pss_kib", figures.parent_pss_kib},
      {"rss_kib_per_process", to_json(figures.rss_kib_per_process)},
      {"pss_kib_per_process", to_json(figures.pss_kib_per_process)},
      {"pss_added_kib_per_process", to_json(figures.pss_added_kib_per_process)},
      {"page_tables_kib_per_process", to_json(figures.page_tables_kib_per_process)},
      {"kernel_stack_kib_per_process", to_json(figures.kernel_stack_kib_per_process)},
  };
}

std::string describe(const ProcessMemoryFigures& figures) {
  return "RSS " + fixed_decimals(figures.rss_kib_per_process.median, 0) + " KiB, PSS " +
         fixed_decimals(figures.pss_kib_per_process.median, 0) + " KiB (total PSS +" +
         fixed_decimals(figures.pss_added_kib_per_process.median, 0) + " KiB), page tables " +
         fixed_decimals(figures.page_tables_kib_per_process.median, 0) + " KiB";
}

}  // namespace

ProcessMemoryResult run_process_memory_probe(const ProcessMemoryOptions& options) {
  require_task_headroom(options.processes, std::to_string(options.processes) + " processes",
                        "--processes");
  ProcessMemoryResult result;
  result.options = options;
  result.small_parent = measure_from_this_parent(options);
  if (options.parent_rss_mib > 0) {
    const auto bytes = static_cast<std::size_t>(options.parent_rss_mib) << 20;
    AnonymousPages heap(bytes / AnonymousPages::page_size());
    heap.write_every_page();
    result.large_parent = measure_from_this_parent(options);
  }
  return result;
}

Json to_json(const ProcessMemoryResult& result) {
  return {
      {"probe", "process-memory"},
      {"kernel", kernel_release()},
      {"processes", result.options.processes},
      {"samples_requested", result.options.samples},
      {"touch_kib", result.options.touch_kib},
      {"parent_rss_mib", result.options.parent_rss_mib},
      {"small_parent", to_json(result.small_parent)},
      {"large_parent", result.large_parent ? to_json(*result.large_parent) : Json(nullptr)},
  };
}

std::string summary_line(const ProcessMemoryResult& result) {
  std::string line = "process-memory (medians per idle child, " +
                     std::to_string(result.options.processes) +
                     " children): " + describe(result.small_parent);
  if (result.large_parent) {
    line += "; from a parent with " + std::to_string(result.options.parent_rss_mib) +
            " MiB resident: " + describe(*result.large_parent);
  }
  return line;
}

}  // namespace echolab::probe
