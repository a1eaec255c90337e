#include "probes/context_switch_probe.hpp"

#include <sys/resource.h>

#include <chrono>
#include <thread>
#include <vector>

#include "probes/anonymous_pages.hpp"
#include "probes/child_process.hpp"
#include "probes/cpu_pin.hpp"
#include "probes/pipe.hpp"
#include "probes/probe_error.hpp"
#include "probes/sampling.hpp"

namespace echolab::probe {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kPlainRequest = 'p';
constexpr char kTouchRequest = 't';
constexpr int kWarmUpRoundTrips = 1'000;

// The partner's side of the ping-pong: answers every byte, after writing its working set
// when asked to. It returns at end of file, when the probe closes its end.
void answer_until_end_of_file(int request_fd, int reply_fd, AnonymousPages& working_set) noexcept {
  char request = 0;
  while (read_byte(request_fd, request)) {
    if (request == kTouchRequest) working_set.write_every_page();
    if (!write_byte(reply_fd, request)) return;
  }
}

// The partner as a forked process with its own address space. Killed and reaped with this
// object.
class ProcessPartner {
 public:
  explicit ProcessPartner(std::size_t touch_pages)
      : working_set_(touch_pages), child_(fork_child([this] {
          requests_.close_write();
          replies_.close_read();
          answer_until_end_of_file(requests_.read_fd(), replies_.write_fd(), working_set_);
          return 0;
        })) {
    // Without the child's ends open here, a child that dies gives end of file, not a hang.
    requests_.close_read();
    replies_.close_write();
  }
  int request_fd() const { return requests_.write_fd(); }
  int reply_fd() const { return replies_.read_fd(); }

 private:
  Pipe requests_;
  Pipe replies_;
  AnonymousPages working_set_;
  ChildProcess child_;
};

// The partner as a second thread of this process, sharing its address space.
class ThreadPartner {
 public:
  explicit ThreadPartner(std::size_t touch_pages)
      : working_set_(touch_pages), thread_([this] {
          answer_until_end_of_file(requests_.read_fd(), replies_.write_fd(), working_set_);
        }) {}
  // End of file ends the partner's loop, so the join cannot wait forever.
  ~ThreadPartner() {
    requests_.close_write();
    thread_.join();
  }
  ThreadPartner(const ThreadPartner&) = delete;
  ThreadPartner& operator=(const ThreadPartner&) = delete;
  ThreadPartner(ThreadPartner&&) = delete;
  ThreadPartner& operator=(ThreadPartner&&) = delete;

  int request_fd() const { return requests_.write_fd(); }
  int reply_fd() const { return replies_.read_fd(); }

 private:
  Pipe requests_;
  Pipe replies_;
  AnonymousPages working_set_;
  std::thread thread_;
};

long long switches_of_this_thread() {
  rusage usage{};
  if (::getrusage(RUSAGE_THREAD, &usage) != 0) throw_system_error("getrusage");
  return usage.ru_nvcsw + usage.ru_nivcsw;
}

struct Measurement {
  double ns_per_switch = 0;
  long long switches = 0;
};

template <typename Partner>
Measurement ping_pong(const Partner& partner, int round_trips, AnonymousPages* own_working_set) {
  const char request = own_working_set != nullptr ? kTouchRequest : kPlainRequest;
  const long long switches_before = switches_of_this_thread();
  const auto start = Clock::now();
  for (int trip = 0; trip < round_trips; ++trip) {
    if (own_working_set != nullptr) own_working_set->write_every_page();
    char reply = 0;
    if (!write_byte(partner.request_fd(), request) || !read_byte(partner.reply_fd(), reply)) {
      throw ProbeError("the ping-pong partner stopped answering");
    }
  }
  const std::chrono::duration<double, std::nano> elapsed = Clock::now() - start;
  return {elapsed.count() / (2.0 * round_trips), switches_of_this_thread() - switches_before};
}

double pipe_write_read_ns(int round_trips) {
  Pipe loop;
  const auto start = Clock::now();
  for (int trip = 0; trip < round_trips; ++trip) {
    char byte = 0;
    if (!write_byte(loop.write_fd(), 'x') || !read_byte(loop.read_fd(), byte)) {
      throw_system_error("pipe write/read");
    }
  }
  const std::chrono::duration<double, std::nano> elapsed = Clock::now() - start;
  return elapsed.count() / round_trips;
}

struct SamplePair {
  Measurement by_process;
  Measurement by_thread;
};

// Alternates process and thread samples so that a drift of the machine (another load, a
// clock change) falls on both alike.
SwitchFigures measure_variant(const ContextSwitchOptions& options, const ProcessPartner& process,
                              const ThreadPartner& thread, AnonymousPages* own_working_set) {
  const auto deadline = deadline_after(options.max_seconds_per_variant);
  ping_pong(process, kWarmUpRoundTrips, own_working_set);
  ping_pong(thread, kWarmUpRoundTrips, own_working_set);
  const std::vector<SamplePair> pairs = collect_until(options.samples, deadline, [&] {
    return SamplePair{ping_pong(process, options.round_trips, own_working_set),
                      ping_pong(thread, options.round_trips, own_working_set)};
  });
  std::vector<double> process_ns;
  std::vector<double> thread_ns;
  std::vector<double> difference_ns;
  long long process_switches = 0;
  long long thread_switches = 0;
  for (const SamplePair& pair : pairs) {
    process_ns.push_back(pair.by_process.ns_per_switch);
    thread_ns.push_back(pair.by_thread.ns_per_switch);
    difference_ns.push_back(pair.by_process.ns_per_switch - pair.by_thread.ns_per_switch);
    process_switches += pair.by_process.switches;
    thread_switches += pair.by_thread.switches;
  }
  const double round_trips = static_cast<double>(pairs.size()) * options.round_trips;
  SwitchFigures figures;
  figures.process_ns_per_switch = summarize(process_ns);
  figures.thread_ns_per_switch = summarize(thread_ns);
  figures.process_minus_thread_ns_per_sample = summarize(difference_ns);
  figures.process_switches_per_round_trip = static_cast<double>(process_switches) / round_trips;
  figures.thread_switches_per_round_trip = static_cast<double>(thread_switches) / round_trips;
  return figures;
}

// The figures of one variant, added to `json` after the members it already has.
void add_figures(Json& json, const SwitchFigures& figures, double nominal_mhz) {
  json["process_ns_per_switch"] = to_json(figures.process_ns_per_switch);
  json["thread_ns_per_switch"] = to_json(figures.thread_ns_per_switch);
  json["ratio_process_to_thread"] =
      figure(median_ratio(figures.process_ns_per_switch, figures.thread_ns_per_switch));
  const double difference_ns =
      figures.process_ns_per_switch.median - figures.thread_ns_per_switch.median;
  json["process_minus_thread_ns"] = figure(difference_ns);
  json["process_minus_thread_ns_per_sample"] = to_json(figures.process_minus_thread_ns_per_sample);
  // An estimate: the core may run above or below its nominal clock.
  json["process_minus_thread_cycles_at_nominal_clock"] =
      nominal_mhz > 0 ? figure(difference_ns * nominal_mhz / 1e3) : Json(nullptr);
  json["process_switches_per_round_trip"] = figure(figures.process_switches_per_round_trip);
  json["thread_switches_per_round_trip"] = figure(figures.thread_switches_per_round_trip);
}

std::string describe(const SwitchFigures& figures) {
  return "process " + fixed_decimals(figures.process_ns_per_switch.median, 0) + " ns, thread " +
         fixed_decimals(figures.thread_ns_per_switch.median, 0) +
         " ns per switch (process/thread " +
         fixed_decimals(median_ratio(figures.process_ns_per_switch, figures.thread_ns_per_switch),
                        2) +
         "x)";
}

}  // namespace

ContextSwitchResult run_context_switch_probe(const ContextSwitchOptions& options) {
  ContextSwitchResult result;
  result.options = options;
  result.cpu_description = describe_cpu();
  result.meltdown = meltdown_status();

  // The pin comes first: the partner process and thread inherit it.
  const ScopedCpuPin pin(options.cpu);
  result.cpu = pin.cpu();
  const auto touch_pages = static_cast<std::size_t>(options.touch_pages);
  // The process partner is forked before the thread exists, so the child holds no copy of
  // the thread's pipes (which would keep them from reaching end of file).
  const ProcessPartner process(touch_pages);
  const ThreadPartner thread(touch_pages);
  AnonymousPages own_working_set(touch_pages);

  result.plain = measure_variant(options, process, thread, nullptr);
  if (touch_pages > 0) {
    result.touching = measure_variant(options, process, thread, &own_working_set);
  }

  std::vector<double> pipe_ns;
  pipe_ns.reserve(static_cast<std::size_t>(options.samples));
  for (int sample = 0; sample < options.samples; ++sample) {
    pipe_ns.push_back(pipe_write_read_ns(options.round_trips));
  }
  result.pipe_write_read_ns = summarize(pipe_ns);
  return result;
}

Json to_json(const ContextSwitchResult& result) {
  const CpuDescription& cpu = result.cpu_description;
  Json json = {
      {"probe", "context-switch"},
      {"kernel", kernel_release()},
      {"cpu_model", cpu.model},
      {"cpu_nominal_mhz", figure(cpu.nominal_mhz)},
      {"pinned_cpu", result.cpu},
      {"pcid", cpu.has_flag("pcid")},
      {"invpcid", cpu.has_flag("invpcid")},
      {"meltdown", result.meltdown},
      {"samples_requested", result.options.samples},
      {"round_trips_per_sample", result.options.round_trips},
      {"pipe_write_read_ns", to_json(result.pipe_write_read_ns)},
  };
  add_figures(json["plain"], result.plain, cpu.nominal_mhz);
  if (result.touching) {
    Json& touching = json["touching"];
    touching["pages_per_side"] = result.options.touch_pages;
    add_figures(touching, *result.touching, cpu.nominal_mhz);
  } else {
    json["touching"] = nullptr;
  }
  return json;
}

std::string summary_line(const ContextSwitchResult& result) {
  std::string line = "context-switch (medians, CPU " + std::to_string(result.cpu) + ", pcid " +
                     (result.cpu_description.has_flag("pcid") ? "yes" : "no") +
                     "): " + describe(result.plain);
  if (result.touching) {
    line += "; writing " + std::to_string(result.options.touch_pages) +
            " pages per side between switches: " + describe(*result.touching);
  }
  return line + "; a pipe write+read alone takes " +
         fixed_decimals(result.pipe_write_read_ns.median, 0) + " ns";
}

}  // namespace echolab::probe
