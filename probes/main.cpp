// echolab-probe: measures the raw claims of "processes vs threads" directly, one subcommand
// per claim, each printing a JSON object on stdout and one human line on stderr.
#include <CLI/CLI.hpp>

#include <csignal>
#include <exception>
#include <functional>
#include <iostream>
#include <string>

#include "probes/communication_probe.hpp"
#include "probes/context_switch_probe.hpp"
#include "probes/fork_descriptors_probe.hpp"
#include "probes/probe_error.hpp"
#include "probes/process_memory_probe.hpp"
#include "probes/rmap_probe.hpp"
#include "probes/spawn_probe.hpp"
#include "probes/thread_exhaustion_probe.hpp"
#include "probes/thread_memory_probe.hpp"

namespace {

using namespace echolab::probe;

// Runs a probe and prints its figures; the probe has cleaned up (threads joined, children
// reaped) before this returns or throws.
template <typename Options, typename Run>
std::function<void()> print_result_of(const Options& options, Run run) {
  return [&options, run] {
    const auto result = run(options);
    std::cout << to_json(result).dump(2) << '\n' << std::flush;
    std::cerr << summary_line(result) << '\n';
  };
}

// A numeric option kept within [low, high], its default shown in --help: the shape of
// nearly every option of the probes.
template <typename T, typename Bound>
CLI::Option* add_bounded(CLI::App* command, const std::string& name, T& value,
                         const std::string& help, Bound low, Bound high) {
  return command->add_option(name, value, help)
      ->check(CLI::Range(low, high))
      ->capture_default_str();
}

void add_spawn_command(CLI::App& app, SpawnOptions& options) {
  auto* command = app.add_subcommand(
      "spawn", "Process creation (fork, fork+exec, posix_spawn) against thread creation");
  add_bounded(command, "--samples", options.samples, "Spawns per figure", 1, 100'000);
  add_bounded(command, "--parent-rss-mib", options.parent_rss_mib,
              "Private memory the parent writes before a second round (0: no second round)", 0,
              16'384);
  command->add_flag("--huge-pages", options.huge_pages,
                    "Ask for transparent huge pages for that memory instead of 4 KiB pages");
  command->add_option("--exec", options.exec_path, "Program that fork+exec and posix_spawn run")
      ->capture_default_str();
  add_bounded(command, "--max-seconds-per-figure", options.max_seconds_per_figure,
              "Stop a figure's sampling early after this long", 0.01, 60.0);
  command->callback(print_result_of(options, run_spawn_probe));
}

void add_fork_descriptors_command(CLI::App& app, ForkDescriptorsOptions& options) {
  auto* command = app.add_subcommand("fork-descriptors",
                                     "fork() from a parent holding more and more open descriptors");
  add_bounded(command, "--samples", options.samples, "Forks per figure", 1, 100'000);
  command
      ->add_option("--levels", options.levels,
                   "Descriptors the parent holds at each level, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1LL, 1'000'000LL))
      ->capture_default_str();
  add_bounded(command, "--max-seconds-per-level", options.max_seconds_per_level,
              "Stop a level's sampling early after this long", 0.01, 600.0);
  command->callback(print_result_of(options, run_fork_descriptors_probe));
}

void add_context_switch_command(CLI::App& app, ContextSwitchOptions& options) {
  auto* command = app.add_subcommand(
      "context-switch", "Pipe ping-pong between two processes against two threads on one CPU");
  add_bounded(command, "--samples", options.samples, "Timed runs of each variant", 1, 1'000);
  add_bounded(command, "--round-trips", options.round_trips, "Round trips per timed run", 100,
              10'000'000);
  add_bounded(command, "--touch-pages", options.touch_pages,
              "Pages each side writes before answering, in a second variant (0: none)", 0, 65'536);
  add_bounded(command, "--max-seconds-per-variant", options.max_seconds_per_variant,
              "Stop a variant's sampling early after this long", 0.01, 600.0);
  command->add_option("--cpu", options.cpu, "CPU to pin both sides to (default: the first allowed)")
      ->check(CLI::NonNegativeNumber);
  command->callback(print_result_of(options, run_context_switch_probe));
}

void add_communication_command(CLI::App& app, CommunicationOptions& options) {
  auto* command = app.add_subcommand(
      "communication",
      "Round trips between two threads through shared memory, and between two processes through "
      "a pipe, a Unix socket and shared memory");
  add_bounded(command, "--samples", options.samples, "Timed runs of each figure", 1, 1'000);
  add_bounded(command, "--round-trips", options.round_trips, "Round trips per timed run", 10,
              1'000'000);
  add_bounded(command, "--small-bytes", options.small_bytes, "The small message", 1, 65'536);
  add_bounded(command, "--large-bytes", options.large_bytes, "The large message", 1, 16'777'216);
  add_bounded(command, "--max-seconds-per-figure", options.max_seconds_per_figure,
              "Stop a figure's sampling early after this long", 0.01, 600.0);
  command->callback(print_result_of(options, run_communication_probe));
}

void add_thread_memory_command(CLI::App& app, ThreadMemoryOptions& options) {
  auto* command = app.add_subcommand(
      "thread-memory", "Memory per idle thread, with the default stack and with a small one");
  add_bounded(command, "--samples", options.samples, "Batches per stack size", 1, 100);
  add_bounded(command, "--threads", options.threads, "Idle threads per batch", 1, 30'000);
  add_bounded(command, "--small-stack-kib", options.small_stack_kib, "The small stack size", 16,
              1'048'576);
  add_bounded(command, "--touch-stack-kib", options.touch_stack_kib,
              "Stack each thread writes before it blocks", 4, 65'536);
  add_bounded(command, "--max-seconds-per-figure", options.max_seconds_per_figure,
              "Stop a figure's sampling early after this long", 0.01, 600.0);
  command->callback(print_result_of(options, run_thread_memory_probe));
}

void add_thread_exhaustion_command(CLI::App& app, ThreadExhaustionOptions& options) {
  auto* command = app.add_subcommand(
      "thread-exhaustion",
      "Idle threads until creation fails or the cap: which limit ends it, and the memory held");
  add_bounded(command, "--cap", options.cap,
              "Most threads per stack size (lowered to what the task limits leave)", 1, 200'000);
  add_bounded(command, "--small-stack-kib", options.small_stack_kib, "The small stack size", 16,
              1'048'576);
  add_bounded(command, "--address-space-mib", options.address_space_mib,
              "RLIMIT_AS of the creating process (default: as inherited)", 64, 1'048'576);
  add_bounded(command, "--hold-seconds", options.hold_seconds,
              "Idle time with every thread up, over which their CPU is measured", 0.01, 60.0);
  add_bounded(command, "--max-seconds", options.max_seconds,
              "Kill the creating process after this long, per stack size", 1.0, 600.0);
  command->callback(print_result_of(options, run_thread_exhaustion_probe));
}

void add_process_memory_command(CLI::App& app, ProcessMemoryOptions& options) {
  auto* command = app.add_subcommand(
      "process-memory", "Memory per idle forked process, from a small and from a large parent");
  add_bounded(command, "--samples", options.samples, "Batches per parent size", 1, 100);
  add_bounded(command, "--processes", options.processes, "Idle children per batch", 1, 20'000);
  add_bounded(command, "--parent-rss-mib", options.parent_rss_mib,
              "Private memory the parent writes before a second round (0: no second round)", 0,
              16'384);
  add_bounded(command, "--touch-kib", options.touch_kib, "Fresh memory each child writes", 0,
              1'048'576);
  add_bounded(command, "--max-seconds-per-figure", options.max_seconds_per_figure,
              "Stop a figure's sampling early after this long", 0.01, 600.0);
  command->callback(print_result_of(options, run_process_memory_probe));
}

void add_rmap_command(CLI::App& app, RmapOptions& options) {
  auto* command = app.add_subcommand(
      "rmap", "Reverse-map walk per page mapped by N forked processes against N threads");
  add_bounded(command, "--max", options.max_tasks,
              "Largest count of processes and of threads (counts run 1, 10, 100, ... and this)", 1,
              30'000);
  add_bounded(command, "--samples", options.samples, "Write-backs timed per count and model", 1,
              50);
  add_bounded(command, "--pages", options.pages,
              "Pages written back per sample (fewer at large counts)", 1, 65'536);
  command
      ->add_option("--directory", options.directory,
                   "Where the probe's unnamed file lives: a disk filesystem, not tmpfs")
      ->check(CLI::ExistingDirectory)
      ->capture_default_str();
  add_bounded(command, "--max-seconds-per-figure", options.max_seconds_per_figure,
              "Stop a count's sampling early after this long", 0.01, 600.0);
  command->callback(print_result_of(options, run_rmap_probe));
}

// Exit status: 0 with figures printed, 1 when a probe failed (one line on stderr says why),
// CLI11's own status for a usage error.
int run_command_line(int argc, char** argv) {
  // A partner that died must show as a failed write (EPIPE) the probe can report and clean
  // up after, not as a SIGPIPE that kills the probe on the spot.
  (void)std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "echolab-probe: measures process and thread costs on this machine; each "
      "subcommand prints a JSON object on stdout and a summary line on stderr"};
  try {
    app.require_subcommand(1);
    SpawnOptions spawn;
    ForkDescriptorsOptions fork_descriptors;
    ContextSwitchOptions context_switch;
    CommunicationOptions communication;
    ThreadMemoryOptions thread_memory;
    ThreadExhaustionOptions thread_exhaustion;
    ProcessMemoryOptions process_memory;
    RmapOptions rmap;
    add_spawn_command(app, spawn);
    add_fork_descriptors_command(app, fork_descriptors);
    add_context_switch_command(app, context_switch);
    add_communication_command(app, communication);
    add_thread_memory_command(app, thread_memory);
    add_thread_exhaustion_command(app, thread_exhaustion);
    add_process_memory_command(app, process_memory);
    add_rmap_command(app, rmap);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const std::exception& error) {
    const auto subcommands = app.get_subcommands();
    const std::string command = subcommands.empty() ? "" : " " + subcommands.front()->get_name();
    std::cerr << "echolab-probe" << command << ": " << error.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_command_line(argc, argv);
  } catch (...) {
    // Only reached when even reporting the error failed (out of memory, say).
    return 1;
  }
}
