#include "probes/proc_files.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "common/metrics/proc_stats.hpp"
#include "probes/probe_error.hpp"

namespace echolab::probe {
namespace {

long long required_field(std::string_view text, std::string_view field, const std::string& path) {
  const auto value = find_number_field(text, field);
  if (!value) throw ProbeError(path + " has no " + std::string(field) + " line");
  return *value;
}

// The text after "<key>:" on the first line of /proc/cpuinfo that starts with `key`.
std::string cpuinfo_value(std::string_view cpuinfo, std::string_view key) {
  std::istringstream lines{std::string(cpuinfo)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with(key)) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? std::string() : line.substr(start);
  }
  return {};
}

}  // namespace

MemoryUsage read_memory_usage(pid_t pid) {
  const pid_t process = pid == 0 ? ::getpid() : pid;
  const auto memory = read_process_memory(process);
  if (!memory) {
    throw ProbeError("cannot read the memory of process " + std::to_string(process) +
                     " from /proc/" + std::to_string(process) + "/{smaps_rollup,status}");
  }
  const auto kib = [](std::uint64_t bytes) { return static_cast<long long>(bytes >> 10); };
  return {kib(memory->rss_bytes), kib(memory->pss_bytes), kib(memory->anon_huge_pages_bytes),
          kib(memory->page_tables_bytes), kib(memory->virtual_bytes)};
}

long long read_meminfo_kib(std::string_view field) {
  const std::string path = "/proc/meminfo";
  return required_field(read_file(path), field, path);
}

std::string read_file(const std::string& path) {
  auto text = read_file_if_present(path);
  if (!text) throw ProbeError("cannot read " + path);
  return *text;
}

std::optional<std::string> read_file_if_present(const std::string& path) {
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::optional<long long> find_number_field(std::string_view text, std::string_view field) {
  std::size_t line_start = 0;
  while (line_start < text.size()) {
    const std::size_t line_end = std::min(text.find('\n', line_start), text.size());
    const std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (!line.starts_with(field) || line.size() <= field.size() || line[field.size()] != ':') {
      continue;
    }
    const auto digits = line.find_first_of("0123456789", field.size() + 1);
    if (digits == std::string_view::npos) return std::nullopt;
    long long value = 0;
    const auto result = std::from_chars(line.data() + digits, line.data() + line.size(), value);
    if (result.ec != std::errc()) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

bool CpuDescription::has_flag(std::string_view flag) const {
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

CpuDescription describe_cpu() {
  const std::string cpuinfo = read_file("/proc/cpuinfo");
  CpuDescription cpu;
  cpu.model = cpuinfo_value(cpuinfo, "model name");
  const std::string mhz = cpuinfo_value(cpuinfo, "cpu MHz");
  if (!mhz.empty()) {
    std::from_chars(mhz.data(), mhz.data() + mhz.size(), cpu.nominal_mhz);
  }
  std::istringstream flags(cpuinfo_value(cpuinfo, "flags"));
  for (std::string flag; flags >> flag;) cpu.flags.push_back(flag);
  return cpu;
}

std::string kernel_release() {
  utsname name{};
  if (::uname(&name) != 0) throw_system_error("uname");
  return name.release;
}

std::string meltdown_status() {
  auto status = read_file_if_present("/sys/devices/system/cpu/vulnerabilities/meltdown");
  if (!status) return "unknown";
  while (!status->empty() && status->back() == '\n') status->pop_back();
  return *status;
}

}  // namespace echolab::probe
