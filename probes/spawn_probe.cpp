#include "probes/spawn_probe.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "probes/anonymous_pages.hpp"
#include "probes/child_process.hpp"
#include "probes/pipe.hpp"
#include "probes/probe_error.hpp"
#include "probes/proc_files.hpp"
#include "probes/sampling.hpp"

namespace echolab::probe {
namespace {

using Clock = std::chrono::steady_clock;

// The first few spawns pay for page faults and caches (the binary, glibc's stack cache)
// that later ones do not; they are run but not kept.
constexpr int kWarmUpRounds = 3;
constexpr std::chrono::milliseconds kHandshakeTimeout{10'000};

double microseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

template <typename MeasureOnce>
std::vector<double> collect_samples(const SpawnOptions& options, MeasureOnce measure_once) {
  // The warm-up counts against the budget too, so the whole figure stays bounded.
  const auto deadline = deadline_after(options.max_seconds_per_figure);
  for (int round = 0; round < kWarmUpRounds; ++round) measure_once();
  return collect_until(options.samples, deadline, measure_once);
}

void require_clean_exit(int status, const std::string& path) {
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw ProbeError(path + " did not exit with status 0 (wait status " + std::to_string(status) +
                     "); choose another --exec");
  }
}

double fork_exec_until_exit_us(const std::string& path) {
  char* const argv[] = {const_cast<char*>(path.c_str()), nullptr};
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw_system_error("fork");
  if (pid == 0) {
    ::execv(path.c_str(), argv);
    ::_exit(127);
  }
  ChildProcess child(pid);
  const int status = child.wait_for_exit();
  const double elapsed = microseconds_since(start);
  require_clean_exit(status, path);
  return elapsed;
}

// glibc's posix_spawn clones with CLONE_VM | CLONE_VFORK: the child borrows the parent's
// page tables until it execs, so, unlike fork, it copies none.
double posix_spawn_until_exit_us(const std::string& path) {
  char* const argv[] = {const_cast<char*>(path.c_str()), nullptr};
  const auto start = Clock::now();
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv, environ);
  if (error != 0) {
    errno = error;
    throw_system_error("posix_spawn " + path);
  }
  ChildProcess child(pid);
  const int status = child.wait_for_exit();
  const double elapsed = microseconds_since(start);
  require_clean_exit(status, path);
  return elapsed;
}

double thread_until_runs_us() {
  Pipe ready;
  const auto start = Clock::now();
  std::jthread thread([fd = ready.write_fd()] { (void)write_byte(fd, 'r'); });
  char byte = 0;
  if (!read_byte_within(ready.read_fd(), byte, kHandshakeTimeout)) {
    throw ProbeError("a new thread did not signal that it runs");
  }
  return microseconds_since(start);
}

SpawnFigures measure_from_this_parent(const SpawnOptions& options) {
  SpawnFigures figures;
  const MemoryUsage parent = read_memory_usage(0);
  figures.parent_rss_kib = parent.rss_kib;
  figures.parent_anon_huge_pages_kib = parent.anon_huge_pages_kib;
  figures.parent_page_tables_kib = parent.page_tables_kib;
  figures.fork_us = summarize(collect_samples(options, fork_until_child_runs_us));
  figures.fork_exec_us = summarize(
      collect_samples(options, [&] { return fork_exec_until_exit_us(options.exec_path); }));
  figures.posix_spawn_us = summarize(
      collect_samples(options, [&] { return posix_spawn_until_exit_us(options.exec_path); }));
  figures.thread_us = summarize(collect_samples(options, thread_until_runs_us));
  return figures;
}

Json to_json(const SpawnFigures& figures) {
  return {
      {"parent_rss_kib", figures.parent_rss_kib},
      {"parent_page_tables_kib", figures.parent_page_tables_kib},
      {"parent_anon_huge_pages_kib", figures.parent_anon_huge_pages_kib},
      {"fork_until_child_runs_us", to_json(figures.fork_us)},
      {"fork_exec_until_exit_us", to_json(figures.fork_exec_us)},
      {"posix_spawn_until_exit_us", to_json(figures.posix_spawn_us)},
      {"thread_until_runs_us", to_json(figures.thread_us)},
      {"ratio_fork_to_thread", figure(median_ratio(figures.fork_us, figures.thread_us))},
      {"ratio_fork_exec_to_thread", figure(median_ratio(figures.fork_exec_us, figures.thread_us))},
      {"ratio_posix_spawn_to_thread",
       figure(median_ratio(figures.posix_spawn_us, figures.thread_us))},
  };
}

std::string describe(const SpawnFigures& figures) {
  return "fork " + fixed_decimals(figures.fork_us.median, 0) + " us, fork+exec " +
         fixed_decimals(figures.fork_exec_us.median, 0) + " us, posix_spawn " +
         fixed_decimals(figures.posix_spawn_us.median, 0) + " us, thread " +
         fixed_decimals(figures.thread_us.median, 0) + " us (fork/thread " +
         fixed_decimals(median_ratio(figures.fork_us, figures.thread_us), 1) + "x)";
}

}  // namespace

double fork_until_child_runs_us() {
  Pipe ready;
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw_system_error("fork");
  if (pid == 0) {
    (void)write_byte(ready.write_fd(), 'r');
    ::_exit(0);
  }
  ChildProcess child(pid);
  char byte = 0;
  if (!read_byte_within(ready.read_fd(), byte, kHandshakeTimeout)) {
    throw ProbeError("a forked child did not signal that it runs");
  }
  const double elapsed = microseconds_since(start);
  child.wait_for_exit();
  return elapsed;
}

SpawnResult run_spawn_probe(const SpawnOptions& options) {
  if (::access(options.exec_path.c_str(), X_OK) != 0) {
    throw_system_error("cannot execute " + options.exec_path);
  }
  SpawnResult result;
  result.options = options;
  result.small_parent = measure_from_this_parent(options);
  if (options.parent_rss_mib > 0) {
    const auto bytes = static_cast<std::size_t>(options.parent_rss_mib) << 20;
    AnonymousPages heap(bytes / AnonymousPages::page_size(), options.huge_pages
                                                                 ? AnonymousPages::PageKind::huge
                                                                 : AnonymousPages::PageKind::small);
    heap.write_every_page();
    result.large_parent = measure_from_this_parent(options);
  }
  return result;
}

Json to_json(const SpawnResult& result) {
  return {
      {"probe", "spawn"},
      {"kernel", kernel_release()},
      {"samples_requested", result.options.samples},
      {"exec_path", result.options.exec_path},
      {"parent_rss_mib", result.options.parent_rss_mib},
      {"parent_huge_pages", result.options.huge_pages},
      {"small_parent", to_json(result.small_parent)},
      {"large_parent", result.large_parent ? to_json(*result.large_parent) : Json(nullptr)},
  };
}

std::string summary_line(const SpawnResult& result) {
  std::string line = "spawn (medians): " + describe(result.small_parent);
  if (result.large_parent) {
    line += "; from a parent with " + std::to_string(result.options.parent_rss_mib) + " MiB " +
            (result.options.huge_pages ? "in huge pages" : "resident") + ": " +
            describe(*result.large_parent);
  }
  return line;
}

}  // namespace echolab::probe
