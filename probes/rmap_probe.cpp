#include "probes/rmap_probe.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "common/posix/unique_fd.hpp"
#include "probes/anonymous_pages.hpp"
#include "probes/idle_children.hpp"
#include "probes/idle_threads.hpp"
#include "probes/probe_error.hpp"
#include "probes/proc_files.hpp"
#include "probes/sampling.hpp"
#include "probes/task_limits.hpp"

namespace echolab::probe {
namespace {

// CPU time of the calling thread, in nanoseconds.
double thread_cpu_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec);
}

// Idle threads need little stack; a small one keeps 10,000 of them light.
constexpr std::size_t kThreadStackBytes = 64 << 10;
constexpr std::size_t kThreadTouchBytes = 4 << 10;
// A sample visits about this many (page, address space) pairs at most, so that a sample at
// 10,000 processes takes a fraction of a second, not minutes: the page count shrinks as the
// task count grows.
constexpr long long kMappingsPerSample = 100'000;
constexpr int kFewestPages = 8;

// A file of `pages` pages on a disk filesystem, mapped shared. O_TMPFILE: it has no name, and
// it is gone when the probe is, however the probe ends.
class MappedFile {
 public:
  MappedFile(const std::string& directory, std::size_t pages)
      : pages_(pages), bytes_(pages * AnonymousPages::page_size()) {
    require_disk_filesystem(directory);
    file_.reset(::open(directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!file_) throw_system_error("open a temporary file in " + directory);
    if (::ftruncate(file_.get(), static_cast<off_t>(bytes_)) != 0) throw_system_error("ftruncate");
    void* mapping = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, file_.get(), 0);
    if (mapping == MAP_FAILED) throw_system_error("mmap of the temporary file");
    data_ = static_cast<volatile char*>(mapping);
    // The first write-back allocates the file's blocks; later ones only write them.
    dirty_every_page();
    wait_for_write_back();
  }
  ~MappedFile() { (void)::munmap(const_cast<char*>(data_), bytes_); }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&&) = delete;
  MappedFile& operator=(MappedFile&&) = delete;

  // A forked child inherits the mapping but not its page-table entries (the kernel fills them
  // at the first access): reading every page puts the page in the child's page tables, as
  // fork puts a prefork master's pages in its children's. Memory reads only.
  void read_every_page() const noexcept {
    char sum = 0;
    for (std::size_t page = 0; page < pages_; ++page) {
      sum = static_cast<char>(sum + data_[page * AnonymousPages::page_size()]);
    }
    last_sum_ = sum;
  }

  // Times the start of the write-back of every page (dirtied first), per page, then waits for
  // the disk untimed: the time is the kernel's work on the pages (one reverse-map walk each to
  // write-protect the page everywhere it is mapped), not the disk's. The calling thread does
  // that work, so its CPU time is the measure: on a shared machine the wall clock would also
  // count the time other tasks had the CPU.
  double write_back_ns_per_page() {
    dirty_every_page();
    const double start = thread_cpu_ns();
    if (::sync_file_range(file_.get(), 0, static_cast<off_t>(bytes_), SYNC_FILE_RANGE_WRITE) != 0) {
      throw_system_error("sync_file_range");
    }
    const double elapsed = thread_cpu_ns() - start;
    wait_for_write_back();
    return elapsed / static_cast<double>(pages_);
  }

 private:
  static void require_disk_filesystem(const std::string& directory) {
    struct statfs filesystem {};
    if (::statfs(directory.c_str(), &filesystem) != 0) throw_system_error("statfs " + directory);
    if (filesystem.f_type == TMPFS_MAGIC || filesystem.f_type == RAMFS_MAGIC) {
      throw ProbeError(directory + " is in memory (tmpfs), which never writes pages back; " +
                       "give --directory on a disk filesystem");
    }
  }

  void dirty_every_page() noexcept {
    for (std::size_t page = 0; page < pages_; ++page) {
      data_[page * AnonymousPages::page_size()] =
          static_cast<char>(data_[page * AnonymousPages::page_size()] + 1);
    }
  }

  void wait_for_write_back() const {
    if (::fdatasync(file_.get()) != 0) throw_system_error("fdatasync");
  }

  std::size_t pages_;
  std::size_t bytes_;
  UniqueFd file_;
  volatile char* data_ = nullptr;
  mutable volatile char last_sum_ = 0;
};

std::vector<double> time_write_backs(MappedFile& file, const RmapOptions& options) {
  return collect_within_budget(options.samples, options.max_seconds_per_figure,
                               [&] { return file.write_back_ns_per_page(); });
}

std::vector<double> mapped_by_processes(int processes, int pages, const RmapOptions& options) {
  // Mapped before the fork: every child maps the same pages, as a prefork server's children
  // map what their master held before forking them.
  MappedFile file(options.directory, static_cast<std::size_t>(pages));
  IdleChildren children(processes, 0, [&file] { file.read_every_page(); });
  auto nanoseconds = time_write_backs(file, options);
  children.release_and_reap();
  return nanoseconds;
}

std::vector<double> mapped_by_threads(int threads, int pages, const RmapOptions& options) {
  MappedFile file(options.directory, static_cast<std::size_t>(pages));
  const IdleThreads idle(threads, kThreadStackBytes, kThreadTouchBytes);
  return time_write_backs(file, options);
}

std::vector<double> pairwise_differences(const std::vector<double>& first,
                                         const std::vector<double>& second) {
  std::vector<double> differences;
  for (std::size_t index = 0; index < std::min(first.size(), second.size()); ++index) {
    differences.push_back(first[index] - second[index]);
  }
  return differences;
}

int pages_for(int tasks, const RmapOptions& options) {
  const long long fitting = kMappingsPerSample / (tasks + 1);
  return static_cast<int>(
      std::clamp<long long>(fitting, std::min(kFewestPages, options.pages), options.pages));
}

RmapPoint measure_point(int tasks, const RmapOptions& options) {
  RmapPoint point;
  point.tasks = tasks;
  point.pages = pages_for(tasks, options);
  const std::vector<double> by_processes = mapped_by_processes(tasks, point.pages, options);
  const std::vector<double> by_threads = mapped_by_threads(tasks, point.pages, options);
  point.process_ns_per_page = summarize(by_processes);
  point.thread_ns_per_page = summarize(by_threads);
  point.process_minus_thread_ns_per_page =
      summarize(pairwise_differences(by_processes, by_threads));
  return point;
}

// 1, 10, 100, ... below `max`, then `max` itself.
std::vector<int> task_counts(int max) {
  std::vector<int> counts;
  for (int count = 1; count < max; count *= 10) counts.push_back(count);
  counts.push_back(max);
  return counts;
}

}  // namespace

RmapResult run_rmap_probe(const RmapOptions& options) {
  // One model at a time: the children are reaped before the threads start.
  require_task_headroom(options.max_tasks, std::to_string(options.max_tasks) + " processes",
                        "--max");
  RmapResult result;
  result.options = options;
  for (const int tasks : task_counts(options.max_tasks)) {
    result.points.push_back(measure_point(tasks, options));
  }
  return result;
}

Json to_json(const RmapResult& result) {
  Json points = Json::array();
  for (const RmapPoint& point : result.points) {
    points.push_back({
        {"tasks", point.tasks},
        {"pages", point.pages},
        {"process_ns_per_page", to_json(point.process_ns_per_page)},
        {"thread_ns_per_page", to_json(point.thread_ns_per_page)},
        {"ratio_process_to_thread",
         figure(median_ratio(point.process_ns_per_page, point.thread_ns_per_page))},
        {"process_minus_thread_ns_per_page", to_json(point.process_minus_thread_ns_per_page)},
    });
  }
  return {
      {"probe", "rmap"},
      {"kernel", kernel_release()},
      {"method", "write-back of a shared file mapping"},
      {"directory", result.options.directory},
      {"samples_requested", result.options.samples},
      {"max_tasks", result.options.max_tasks},
      {"points", points},
  };
}

std::string summary_line(const RmapResult& result) {
  std::string line = "rmap (median ns per page to write-protect it in every mapping):";
  // Appended piece by piece: GCC 12 at -O3 warns falsely (-Wrestrict) on a chain of
  // std::string operator+ that starts from a literal.
  for (const RmapPoint& point : result.points) {
    line.append(" ").append(std::to_string(point.tasks)).append(" processes ");
    line.append(fixed_decimals(point.process_ns_per_page.median, 0)).append(", threads ");
    line.append(fixed_decimals(point.thread_ns_per_page.median, 0)).append(";");
  }
  line.pop_back();
  return line;
}

}  // namespace echolab::probe
