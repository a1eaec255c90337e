// Reads the kernel's own accounting from /proc and /sys: memory of a process (through
// common/metrics/proc_stats, as the servers' metrics read it), the machine's kernel stacks, CPU
// features. Figures come from here rather than from the probe's own bookkeeping, so they
// count what the kernel counts.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace echolab::probe {

// A process's memory as echolab's metrics read it (common/metrics/proc_stats), in the KiB the
// probes report; the fields mean what they mean in echolab::ProcessMemory.
struct MemoryUsage {
  long long rss_kib = 0;
  long long pss_kib = 0;
  long long anon_huge_pages_kib = 0;
  long long page_tables_kib = 0;
  long long virtual_kib = 0;
};

// pid 0 means this process. Throws ProbeError when the process's memory cannot be read: the
// process being measured is one the probe holds, so that is not a figure but a failure.
MemoryUsage read_memory_usage(pid_t pid);

// A "Field:  123 kB" line of /proc/meminfo (KernelStack, ...).
long long read_meminfo_kib(std::string_view field);

// The whole file; throws ProbeError when it cannot be read.
std::string read_file(const std::string& path);
std::optional<std::string> read_file_if_present(const std::string& path);

// The number on the line of `text` that starts with "<field>:"; nullopt when absent.
std::optional<long long> find_number_field(std::string_view text, std::string_view field);

struct CpuDescription {
  std::string model;
  double nominal_mhz = 0;  // 0 when /proc/cpuinfo does not say
  std::vector<std::string> flags;
  bool has_flag(std::string_view flag) const;
};

CpuDescription describe_cpu();

// uname -r
std::string kernel_release();

// The kernel's verdict on Meltdown (for example "Mitigation: PTI" or "Not affected"): with
// page-table isolation every system call switches page tables, which PCID makes cheap.
std::string meltdown_status();

}  // namespace echolab::probe
