#include "probes/fork_descriptors_probe.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "common/posix/unique_fd.hpp"
#include "common/server/capacity.hpp"
#include "probes/child_process.hpp"
#include "probes/probe_error.hpp"
#include "probes/proc_files.hpp"
#include "probes/sampling.hpp"
#include "probes/spawn_probe.hpp"

namespace echolab::probe {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWarmUpRounds = 3;
// Descriptors a fork needs beside those held: the handshake pipe, the /proc listing.
constexpr long long kWorkingDescriptors = 8;

long long open_descriptors() {
  std::unique_ptr<DIR, int (*)(DIR*)> directory(::opendir("/proc/self/fd"), ::closedir);
  if (!directory) throw_system_error("opendir /proc/self/fd");
  long long count = 0;
  while (const dirent* entry = ::readdir(directory.get())) {
    if (entry->d_name[0] != '.') ++count;
  }
  return count - 1;  // the listing's own descriptor
}

long long open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) throw_system_error("getrlimit RLIMIT_NOFILE");
  return limit.rlim_cur == RLIM_INFINITY ? std::numeric_limits<long long>::max()
                                         : static_cast<long long>(limit.rlim_cur);
}

double fork_until_child_exits_us() {
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw_system_error("fork");
  if (pid == 0) ::_exit(0);
  ChildProcess(pid).wait_for_exit();
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Duplicates of /dev/null: each is a descriptor-table slot and a reference to an open file,
// which is what fork copies.
class HeldDescriptors {
 public:
  HeldDescriptors()
      : null_(::open("/dev/null", O_RDONLY | O_CLOEXEC)), already_open_(open_descriptors()) {
    if (!null_) throw_system_error("open /dev/null");
  }
  // Closing the highest descriptors shrinks what fork copies: the kernel copies the table up
  // to the highest open descriptor, however large the table once grew.
  void hold_in_total(long long total) {
    while (already_open_ + static_cast<long long>(held_.size()) > total && !held_.empty()) {
      held_.pop_back();
    }
    while (already_open_ + static_cast<long long>(held_.size()) < total) {
      UniqueFd copy(::fcntl(null_.get(), F_DUPFD_CLOEXEC, 0));
      if (!copy) throw_system_error("duplicating a descriptor");
      held_.push_back(std::move(copy));
    }
  }

 private:
  UniqueFd null_;
  long long already_open_;
  std::vector<UniqueFd> held_;
};

struct LevelSample {
  double runs_us = 0;
  double exits_us = 0;
};

// One round: every reachable level in turn, so that a drift of the machine falls on every
// level alike rather than on whichever was measured last.
std::vector<LevelSample> measure_round(const std::vector<long long>& levels,
                                       HeldDescriptors& held) {
  std::vector<LevelSample> round;
  for (const long long level : levels) {
    held.hold_in_total(level);
    round.push_back({fork_until_child_runs_us(), fork_until_child_exits_us()});
  }
  return round;
}

void summarize_rounds(ForkDescriptorsResult& result, const std::vector<DescriptorLevel*>& reached,
                      const std::vector<std::vector<LevelSample>>& rounds) {
  for (std::size_t index = 0; index < reached.size(); ++index) {
    std::vector<LevelSample> samples;
    samples.reserve(rounds.size());
    for (const auto& round : rounds) samples.push_back(round[index]);
    reached[index]->fork_until_child_runs_us = summarize_field(samples, &LevelSample::runs_us);
    reached[index]->fork_until_child_exits_us = summarize_field(samples, &LevelSample::exits_us);
  }
  if (reached.size() < 2) return;
  std::vector<double> differences;
  differences.reserve(rounds.size());
  for (const auto& round : rounds)
    differences.push_back(round.back().runs_us - round.front().runs_us);
  result.most_minus_fewest_us = summarize(differences);
}

}  // namespace

ForkDescriptorsResult run_fork_descriptors_probe(const ForkDescriptorsOptions& options) {
  ForkDescriptorsResult result;
  result.options = options;
  std::vector<long long> levels = options.levels;
  std::sort(levels.begin(), levels.end());
  levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
  raise_open_files_limit(static_cast<std::uint64_t>(levels.back() + kWorkingDescriptors));
  result.open_files_limit = open_files_limit();
  HeldDescriptors held;
  std::vector<long long> reachable;
  for (const long long wanted : levels) {
    DescriptorLevel level;
    level.wanted = wanted;
    if (wanted + kWorkingDescriptors > result.open_files_limit) {
      level.skipped = "RLIMIT_NOFILE (ulimit -n) is " + std::to_string(result.open_files_limit);
    } else {
      held.hold_in_total(wanted);
      level.held = open_descriptors();
      reachable.push_back(wanted);
    }
    result.levels.push_back(level);
  }
  if (reachable.empty()) return result;
  std::vector<DescriptorLevel*> reached;
  for (DescriptorLevel& level : result.levels) {
    if (!level.skipped) reached.push_back(&level);
  }
  const auto deadline =
      deadline_after(options.max_seconds_per_level * static_cast<double>(reachable.size()));
  for (int round = 0; round < kWarmUpRounds; ++round) (void)measure_round(reachable, held);
  summarize_rounds(result, reached, collect_until(options.samples, deadline, [&] {
                     return measure_round(reachable, held);
                   }));
  return result;
}

Json to_json(const ForkDescriptorsResult& result) {
  Json levels = Json::array();
  for (const DescriptorLevel& level : result.levels) {
    if (level.skipped) {
      levels.push_back({{"descriptors_wanted", level.wanted},
                        {"descriptors_held", nullptr},
                        {"skipped", *level.skipped},
                        {"fork_until_child_runs_us", nullptr},
                        {"fork_until_child_exits_us", nullptr}});
      continue;
    }
    levels.push_back({{"descriptors_wanted", level.wanted},
                      {"descriptors_held", level.held},
                      {"skipped", nullptr},
                      {"fork_until_child_runs_us", to_json(level.fork_until_child_runs_us)},
                      {"fork_until_child_exits_us", to_json(level.fork_until_child_exits_us)}});
  }
  return {{"probe", "fork-descriptors"},
          {"kernel", kernel_release()},
          {"samples_requested", result.options.samples},
          {"open_files_limit", result.open_files_limit},
          {"levels", levels},
          {"most_minus_fewest_fork_us",
           result.most_minus_fewest_us ? to_json(*result.most_minus_fewest_us) : Json(nullptr)}};
}

std::string summary_line(const ForkDescriptorsResult& result) {
  std::string line = "fork-descriptors (medians)";
  for (const DescriptorLevel& level : result.levels) {
    line += "; " + std::to_string(level.wanted) + " descriptors: ";
    line += level.skipped ? "skipped, " + *level.skipped
                          : "fork " + fixed_decimals(level.fork_until_child_runs_us.median, 0) +
                                " us until the child runs, " +
                                fixed_decimals(level.fork_until_child_exits_us.median, 0) +
                                " us until it has exited";
  }
  return line;
}

}  // namespace echolab::probe
