#include "common/metrics/proc_stats.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "common/posix/unique_fd.hpp"

namespace echolab {
namespace {

// /proc/PID/status is about 1.5 KiB and smaps_rollup about 1 KiB on current kernels.
using FileBuffer = std::array<char, 8192>;
using ProcPath = std::array<char, 64>;

// "/proc/PID/NAME", NUL-terminated; NAME may go deeper ("task/TID/status").
ProcPath proc_path(pid_t pid, std::string_view name) {
  ProcPath path{};
  constexpr std::string_view kProc = "/proc/";
  char* out = std::copy(kProc.begin(), kProc.end(), path.data());
  const auto [end_of_pid, error] = std::to_chars(out, path.data() + path.size() - 1, pid);
  if (error != std::errc{}) {
    return ProcPath{};  // cannot happen for a pid; an empty path fails to open
  }
  out = end_of_pid;
  *out++ = '/';
  const auto room = static_cast<std::size_t>(path.data() + path.size() - out - 1);
  const std::string_view fitting = name.substr(0, room);  // names used here always fit
  std::copy(fitting.begin(), fitting.end(), out);
  return path;
}

// /proc reports memory in kB, which the kernel means as KiB.
constexpr std::uint64_t kBytesPerKiB = 1024;

// The whole of a small /proc file, or nothing when it cannot be opened or read: the
// process is gone (ENOENT, ESRCH), or the file refuses, as smaps_rollup does for a zombie.
std::optional<std::string_view> read_proc_file(const char* path, FileBuffer& buffer) {
  const UniqueFd file(::open(path, O_RDONLY | O_CLOEXEC));
  if (!file) {
    return std::nullopt;
  }
  std::size_t length = 0;
  while (length < buffer.size()) {
    const ssize_t count = ::read(file.get(), buffer.data() + length, buffer.size() - length);
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      return std::nullopt;
    }
    if (count == 0) {
      break;
    }
    length += static_cast<std::size_t>(count);
  }
  return std::string_view(buffer.data(), length);
}

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end == text.data()) {
    return std::nullopt;
  }
  return value;
}

// The number after "Key:" at the start of a line ("Threads:\t3", "Rss:   1234 kB").
std::optional<std::uint64_t> field_value(std::string_view text, std::string_view key) {
  std::size_t at = text.find(key);
  while (at != std::string_view::npos && at != 0 && text[at - 1] != '\n') {
    at = text.find(key, at + 1);
  }
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(at + key.size());
  rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
  return parse_number(rest);
}

// Field 22 of /proc/PID/stat, the start time in clock ticks since boot; nothing for a zombie
// (its memory is gone, and it is a process the server has already lost).
std::optional<std::uint64_t> start_ticks_of_live_process(std::string_view stat) {
  // The command name (field 2) may hold spaces and parentheses: count from its last ')'.
  const std::size_t name_end = stat.rfind(')');
  if (name_end == std::string_view::npos || name_end + 2 >= stat.size()) {
    return std::nullopt;
  }
  std::string_view rest = stat.substr(name_end + 2);  // starts at field 3, the state
  if (rest.front() == 'Z' || rest.front() == 'X') {
    return std::nullopt;
  }
  constexpr int kFieldsFromStateToStartTime = 22 - 3;
  for (int field = 0; field < kFieldsFromStateToStartTime; ++field) {
    const std::size_t space = rest.find(' ');
    if (space == std::string_view::npos) {
      return std::nullopt;
    }
    rest.remove_prefix(space + 1);
  }
  return parse_number(rest);
}

ContextSwitches switches_in_status(std::string_view status) {
  return {field_value(status, "voluntary_ctxt_switches:").value_or(0),
          field_value(status, "nonvoluntary_ctxt_switches:").value_or(0)};
}

ContextSwitches& operator+=(ContextSwitches& total, const ContextSwitches& more) {
  total.voluntary += more.voluntary;
  total.involuntary += more.involuntary;
  return total;
}

ContextSwitches highest_of(const ContextSwitches& a, const ContextSwitches& b) {
  return {std::max(a.voluntary, b.voluntary), std::max(a.involuntary, b.involuntary)};
}

// /proc/PID/status counts the main thread only; the other threads have their own files.
std::optional<ContextSwitches> sum_over_threads(pid_t pid, FileBuffer& buffer) {
  const std::unique_ptr<DIR, int (*)(DIR*)> tasks(::opendir(proc_path(pid, "task").data()),
                                                  &::closedir);
  if (!tasks) {
    return std::nullopt;
  }
  ContextSwitches total;
  while (const dirent* entry = ::readdir(tasks.get())) {
    const auto tid = parse_number(entry->d_name);
    if (!tid) {
      continue;  // "." and ".."
    }
    const std::string name = "task/" + std::to_string(*tid) + "/status";
    if (const auto status = read_proc_file(proc_path(pid, name).data(), buffer)) {
      total += switches_in_status(*status);
    }  // else the thread exited while we listed the others
  }
  return total;
}

// getrusage(RUSAGE_SELF) adds the switches of this process's exited threads, which /proc no
// longer shows: for the thread-per-connection server that is most of them.
ContextSwitches own_switches() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return {static_cast<std::uint64_t>(usage.ru_nvcsw), static_cast<std::uint64_t>(usage.ru_nivcsw)};
}

std::optional<std::uint64_t> read_start_ticks(pid_t pid, FileBuffer& buffer) {
  const auto stat = read_proc_file(proc_path(pid, "stat").data(), buffer);
  return stat ? start_ticks_of_live_process(*stat) : std::nullopt;
}

bool still_running(pid_t pid, std::uint64_t start_ticks) {
  FileBuffer buffer;
  return read_start_ticks(pid, buffer) == start_ticks;
}

bool read_activity(pid_t pid, ProcessSample& sample) {
  FileBuffer buffer;
  sample.pid = pid;
  const auto start_ticks = read_start_ticks(pid, buffer);
  if (!start_ticks) {
    return false;
  }
  sample.start_ticks = *start_ticks;

  const auto status = read_proc_file(proc_path(pid, "status").data(), buffer);
  if (!status) {
    return false;
  }
  sample.threads = field_value(*status, "Threads:").value_or(1);
  sample.switches = switches_in_status(*status);
  if (pid == ::getpid()) {
    sample.switches = own_switches();
  } else if (sample.threads > 1) {
    const auto all_threads = sum_over_threads(pid, buffer);
    if (!all_threads) {
      return false;
    }
    sample.switches = *all_threads;
  }
  return true;
}

bool read_memory(pid_t pid, ProcessSample& sample) {
  FileBuffer buffer;
  const auto rollup = read_proc_file(proc_path(pid, "smaps_rollup").data(), buffer);
  if (!rollup) {
    return false;
  }
  sample.rss_bytes = field_value(*rollup, "Rss:").value_or(0) * kBytesPerKiB;
  sample.pss_bytes = field_value(*rollup, "Pss:").value_or(0) * kBytesPerKiB;
  return true;
}

}  // namespace

std::optional<ProcessSample> read_process_sample(pid_t pid) {
  ProcessSample sample;
  if (!read_activity(pid, sample) || !read_memory(pid, sample)) {
    return std::nullopt;
  }
  return sample;
}

std::vector<ProcessSample> read_process_samples(std::span<const pid_t> pids) {
  std::vector<ProcessSample> samples;
  samples.reserve(pids.size());
  for (const pid_t pid : pids) {
    if (auto sample = read_process_sample(pid)) {
      samples.push_back(*sample);
    }
  }
  return samples;
}

std::optional<ProcessMemory> read_process_memory(pid_t pid) {
  FileBuffer buffer;
  const auto rollup = read_proc_file(proc_path(pid, "smaps_rollup").data(), buffer);
  if (!rollup) {
    return std::nullopt;
  }
  const auto rss_kib = field_value(*rollup, "Rss:");
  const auto pss_kib = field_value(*rollup, "Pss:");
  // Absent when the kernel has no transparent huge pages: then there are none.
  const auto anon_huge_pages_kib = field_value(*rollup, "AnonHugePages:").value_or(0);

  const auto status = read_proc_file(proc_path(pid, "status").data(), buffer);
  if (!status) {
    return std::nullopt;
  }
  const auto page_tables_kib = field_value(*status, "VmPTE:");
  const auto virtual_kib = field_value(*status, "VmSize:");
  if (!rss_kib || !pss_kib || !page_tables_kib || !virtual_kib) {
    return std::nullopt;
  }
  return ProcessMemory{*rss_kib * kBytesPerKiB, *pss_kib * kBytesPerKiB,
                       anon_huge_pages_kib * kBytesPerKiB, *page_tables_kib * kBytesPerKiB,
                       *virtual_kib * kBytesPerKiB};
}

ProcStats sum_samples(std::span<const ProcessSample> samples) {
  ProcStats stats;
  for (const ProcessSample& sample : samples) {
    stats.rss_bytes += sample.rss_bytes;
    stats.pss_bytes += sample.pss_bytes;
    stats.switches += sample.switches;
    stats.threads += sample.threads;
    ++stats.processes;
  }
  return stats;
}

ContextSwitches ContextSwitchTotals::update(std::span<const ProcessSample> samples) {
  std::unordered_map<pid_t, Seen> now_seen;
  now_seen.reserve(samples.size());
  for (const ProcessSample& sample : samples) {
    Seen seen{sample.start_ticks, sample.switches};
    const auto before = seen_.find(sample.pid);
    if (before != seen_.end() && before->second.start_ticks == sample.start_ticks) {
      seen.highest = highest_of(before->second.highest, sample.switches);
      seen_.erase(before);
    }
    now_seen.insert_or_assign(sample.pid, seen);
  }
  // What is left was not listed this time. A process that still runs keeps its place (a
  // list being rebuilt may miss it for one scrape); one that exited, or whose pid now
  // belongs to a newer process, leaves its counts to the retired total.
  for (const auto& [pid, missing] : seen_) {
    if (!now_seen.contains(pid) && still_running(pid, missing.start_ticks)) {
      now_seen.emplace(pid, missing);
    } else {
      retired_ += missing.highest;
    }
  }
  seen_ = std::move(now_seen);

  ContextSwitches total = retired_;
  for (const auto& [pid, seen] : seen_) {
    total += seen.highest;
  }
  reported_ = highest_of(reported_, total);
  return reported_;
}

ServerProcesses this_process() {
  ServerProcesses processes;
  processes.inspected.push_back(::getpid());
  return processes;
}

ProcStatsReader::ProcStatsReader(std::chrono::steady_clock::duration memory_budget)
    : memory_budget_(memory_budget) {}

ProcStats ProcStatsReader::read(const ServerProcesses& processes) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<pid_t> inspected = processes.inspected;
  std::sort(inspected.begin(), inspected.end());
  inspected.erase(std::unique(inspected.begin(), inspected.end()), inspected.end());
  const std::vector<ProcessSample> samples = read_process_samples(inspected);
  ProcStats stats = sum_samples(samples);

  ContextSwitches switches = inspected_switches_.update(samples);
  switches += processes.worker_switches;
  reported_switches_ = highest_of(reported_switches_, switches);
  stats.switches = reported_switches_;

  const MemoryTotals workers = sample_worker_memory(processes.workers, started + memory_budget_);
  stats.rss_bytes += workers.rss_bytes;
  stats.pss_bytes += workers.pss_bytes;
  stats.processes += workers_.size();
  stats.threads += workers_.size();  // single-threaded: prefork's processes start no threads
  return stats;
}

ProcStatsReader::MemoryTotals ProcStatsReader::sample_worker_memory(
    std::span<const SelfReportingProcess> workers, std::chrono::steady_clock::time_point deadline) {
  std::unordered_map<pid_t, WorkerMemory> current;
  current.reserve(workers.size());
  for (const SelfReportingProcess& worker : workers) {
    const auto before = workers_.find(worker.pid);
    if (before != workers_.end() && before->second.generation == worker.generation) {
      current.emplace(worker.pid, before->second);
    } else {
      WorkerMemory never_read;
      never_read.generation = worker.generation;
      current.emplace(worker.pid, never_read);
    }
  }
  workers_ = std::move(current);
  read_oldest_worker_memory(workers, deadline);

  MemoryTotals read_totals;
  std::uint64_t read_count = 0;
  for (const auto& [pid, memory] : workers_) {
    if (memory.read) {
      read_totals.rss_bytes += memory.rss_bytes;
      read_totals.pss_bytes += memory.pss_bytes;
      ++read_count;
    }
  }
  if (read_count == 0) {
    return read_totals;
  }
  const std::uint64_t unread = workers_.size() - read_count;
  return {read_totals.rss_bytes + unread * read_totals.rss_bytes / read_count,
          read_totals.pss_bytes + unread * read_totals.pss_bytes / read_count};
}

void ProcStatsReader::read_oldest_worker_memory(std::span<const SelfReportingProcess> workers,
                                                std::chrono::steady_clock::time_point deadline) {
  // Never read first (their read_at is the clock's epoch), in the order listed; then the
  // oldest readings.
  std::vector<std::pair<std::chrono::steady_clock::time_point, pid_t>> oldest_first;
  oldest_first.reserve(workers_.size());
  for (const SelfReportingProcess& worker : workers) {
    oldest_first.emplace_back(workers_.at(worker.pid).read_at, worker.pid);
  }
  std::stable_sort(oldest_first.begin(), oldest_first.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // However long the rest of the scrape took, a share of the workers is read, so that no
  // reading gets older than kMostScrapesBetweenReadings scrapes.
  const std::size_t at_least =
      (workers_.size() + kMostScrapesBetweenReadings - 1) / kMostScrapesBetweenReadings;
  std::size_t attempted = 0;
  for (const auto& [read_at, pid] : oldest_first) {
    if (attempted >= at_least && std::chrono::steady_clock::now() >= deadline) {
      break;
    }
    ++attempted;
    ProcessSample sample;
    WorkerMemory& memory = workers_.at(pid);
    if (read_memory(pid, sample)) {
      memory.read = true;
      memory.rss_bytes = sample.rss_bytes;
      memory.pss_bytes = sample.pss_bytes;
      memory.read_at = std::chrono::steady_clock::now();
    }  // else it exited a moment ago: its last reading, or the mean, stands
  }
}

}  // namespace echolab
