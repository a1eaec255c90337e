// Reads the kernel's own accounting from /proc and /sys: memory of a process, CPU features,
// kernel limits. Figures come from here rather than from the probe's own bookkeeping, so
// they count what the kernel counts.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace echolab::probe {

struct MemoryUsage {
  // Resident pages mapped by the process, shared or not.
  long long rss_kib = 0;
  // Proportional set size: each resident page divided by the number of processes mapping
  // it, so summing PSS over processes counts a shared page once.
  long long pss_kib = 0;
  // Of the RSS, anonymous memory mapped by transparent huge pages.
  long long anon_huge_pages_kib = 0;
};

// From /proc/<pid>/smaps_rollup; pid 0 means this process.
MemoryUsage read_memory_usage(pid_t pid);

// A "Field:  123 kB" line of /proc/<pid>/status (VmSize, VmPTE, ...); pid 0 means this process.
long long read_status_kib(pid_t pid, std::string_view field);

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
