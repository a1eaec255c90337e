#include "probes/task_limits.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/server/capacity.hpp"
#include "probes/probe_error.hpp"
#include "probes/proc_files.hpp"

namespace echolab::probe {
namespace {

// Left free under the machine-wide limits for the rest of the machine (shells, the servers
// under test); under the user's own limit the user decides.
constexpr long long kMachineSpareTasks = 32;

struct Limit {
  std::string name;
  long long maximum = 0;
  long long in_use = 0;
  long long spare = kMachineSpareTasks;
};

long long read_number_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return std::stoll(text);
  } catch (const std::exception&) {
    throw ProbeError(path + " does not hold a number");
  }
}

// A machine-wide figure the check cannot do without: 0 means it could not be read.
long long required(std::uint64_t value, const char* source) {
  if (value == 0) throw ProbeError(std::string("cannot read ") + source);
  return static_cast<long long>(value);
}

// RLIMIT_NPROC counts the tasks (threads included) whose real user is this one.
long long tasks_of_user(uid_t uid) {
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) throw_system_error("opendir /proc");
  long long tasks = 0;
  while (const dirent* entry = ::readdir(proc.get())) {
    if (!std::isdigit(static_cast<unsigned char>(entry->d_name[0]))) continue;
    // A process may exit between readdir and the read: it no longer counts.
    const auto status = read_file_if_present(std::string("/proc/") + entry->d_name + "/status");
    if (!status) continue;
    const auto real_uid = find_number_field(*status, "Uid");
    const auto threads = find_number_field(*status, "Threads");
    if (real_uid && threads && *real_uid == static_cast<long long>(uid)) tasks += *threads;
  }
  return tasks;
}

std::optional<Limit> user_process_limit(const SystemLimits& limits) {
  if (!limits.nproc || limits.nproc_exempt) return std::nullopt;
  const uid_t uid = ::getuid();
  return Limit{"RLIMIT_NPROC (ulimit -u) for user " + std::to_string(uid),
               static_cast<long long>(*limits.nproc), tasks_of_user(uid), 0};
}

// The pids controller of this process's cgroup (v2 "0::/path", or v1 "N:pids:/path").
std::optional<Limit> cgroup_pids_limit() {
  const auto cgroups = read_file_if_present("/proc/self/cgroup");
  if (!cgroups) return std::nullopt;
  std::istringstream lines(*cgroups);
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    std::string directory;
    if (controllers.empty()) {
      directory = "/sys/fs/cgroup" + path;
    } else if (controllers == "pids") {
      directory = "/sys/fs/cgroup/pids" + path;
    } else {
      continue;
    }
    const auto maximum = read_file_if_present(directory + "/pids.max");
    if (!maximum || maximum->starts_with("max")) continue;
    return Limit{"the cgroup's " + directory + "/pids.max", std::stoll(*maximum),
                 read_number_file(directory + "/pids.current")};
  }
  return std::nullopt;
}

void require_room(const Limit& limit, long long extra_tasks, std::string_view what,
                  std::string_view option) {
  if (limit.in_use + extra_tasks + limit.spare <= limit.maximum) return;
  const std::string spare =
      limit.spare > 0 ? " (keeping " + std::to_string(limit.spare) + " spare)" : "";
  throw ProbeError("needs " + std::string(what) + " but " + limit.name + " is " +
                   std::to_string(limit.maximum) + " with " + std::to_string(limit.in_use) +
                   " tasks in use" + spare + "; lower " + std::string(option) +
                   " or raise the limit");
}

std::vector<Limit> current_task_limits() {
  const SystemLimits limits = read_system_limits();
  const long long machine_tasks = required(limits.tasks_in_use, "the task count in /proc/loadavg");
  std::vector<Limit> current{
      {"kernel.threads-max (/proc/sys/kernel/threads-max)",
       required(limits.threads_max, "/proc/sys/kernel/threads-max"), machine_tasks},
      {"kernel.pid_max (/proc/sys/kernel/pid_max)",
       required(limits.pid_max, "/proc/sys/kernel/pid_max"), machine_tasks}};
  if (auto cgroup = cgroup_pids_limit()) current.push_back(std::move(*cgroup));
  if (auto user = user_process_limit(limits)) current.push_back(std::move(*user));
  return current;
}

}  // namespace

void require_task_headroom(long long extra_tasks, std::string_view what, std::string_view option) {
  for (const Limit& limit : current_task_limits()) require_room(limit, extra_tasks, what, option);
}

TaskHeadroom task_headroom() {
  TaskHeadroom tightest{-1, ""};
  for (const Limit& limit : current_task_limits()) {
    const long long room = std::max(0LL, limit.maximum - limit.in_use - limit.spare);
    if (tightest.tasks < 0 || room < tightest.tasks) tightest = {room, limit.name};
  }
  return tightest;
}

}  // namespace echolab::probe
