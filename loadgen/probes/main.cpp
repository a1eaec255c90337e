// echolab-probe: measures the raw claims of "processes vs threads" directly, one subcommand
// per claim, each printing a JSON object on stdout and one human line on stderr.
#include <CLI/CLI.hpp>

#include <csignal>
#include <exception>
#include <functional>
#include <iostream>
#include <string>

#include "loadgen/probes/context_switch_probe.hpp"
#include "loadgen/probes/probe_error.hpp"
#include "loadgen/probes/process_memory_probe.hpp"
#include "loadgen/probes/spawn_probe.hpp"
#include "loadgen/probes/thread_memory_probe.hpp"

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

void add_spawn_command(CLI::App& app, SpawnOptions& options) {
  auto* command = app.add_subcommand(
      "spawn", "Process creation (fork, fork+exec, posix_spawn) against thread creation");
  command->add_option("--samples", options.samples, "Spawns per figure")
      ->check(CLI::Range(1, 100'000))
      ->capture_default_str();
  command
      ->add_option("--parent-rss-mib", options.parent_rss_mib,
                   "Private memory the parent writes before a second round (0: no second round)")
      ->check(CLI::Range(0, 16'384))
      ->capture_default_str();
  command->add_flag("--huge-pages", options.huge_pages,
                    "Ask for transparent huge pages for that memory instead of 4 KiB pages");
  command->add_option("--exec", options.exec_path, "Program that fork+exec and posix_spawn run")
      ->capture_default_str();
  command
      ->add_option("--max-seconds-per-figure", options.max_seconds_per_figure,
                   "Stop a figure's sampling early after this long")
      ->check(CLI::Range(0.01, 60.0))
      ->capture_default_str();
  command->callback(print_result_of(options, run_spawn_probe));
}

void add_context_switch_command(CLI::App& app, ContextSwitchOptions& options) {
  auto* command = app.add_subcommand(
      "context-switch", "Pipe ping-pong between two processes against two threads on one CPU");
  command->add_option("--samples", options.samples, "Timed runs of each variant")
      ->check(CLI::Range(1, 1'000))
      ->capture_default_str();
  command->add_option("--round-trips", options.round_trips, "Round trips per timed run")
      ->check(CLI::Range(100, 10'000'000))
      ->capture_default_str();
  command
      ->add_option("--touch-pages", options.touch_pages,
                   "Pages each side writes before answering, in a second variant (0: none)")
      ->check(CLI::Range(0, 65'536))
      ->capture_default_str();
  command
      ->add_option("--max-seconds-per-variant", options.max_seconds_per_variant,
                   "Stop a variant's sampling early after this long")
      ->check(CLI::Range(0.01, 600.0))
      ->capture_default_str();
  command->add_option("--cpu", options.cpu, "CPU to pin both sides to (default: the first allowed)")
      ->check(CLI::NonNegativeNumber);
  command->callback(print_result_of(options, run_context_switch_probe));
}

void add_thread_memory_command(CLI::App& app, ThreadMemoryOptions& options) {
  auto* command = app.add_subcommand(
      "thread-memory", "Memory per idle thread, with the default stack and with a small one");
  command->add_option("--samples", options.samples, "Batches per stack size")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  command->add_option("--threads", options.threads, "Idle threads per batch")
      ->check(CLI::Range(1, 30'000))
      ->capture_default_str();
  command->add_option("--small-stack-kib", options.small_stack_kib, "The small stack size")
      ->check(CLI::Range(16, 1'048'576))
      ->capture_default_str();
  command
      ->add_option("--touch-stack-kib", options.touch_stack_kib,
                   "Stack each thread writes before it blocks")
      ->check(CLI::Range(4, 65'536))
      ->capture_default_str();
  command
      ->add_option("--max-seconds-per-figure", options.max_seconds_per_figure,
                   "Stop a figure's sampling early after this long")
      ->check(CLI::Range(0.01, 600.0))
      ->capture_default_str();
  command->callback(print_result_of(options, run_thread_memory_probe));
}

void add_process_memory_command(CLI::App& app, ProcessMemoryOptions& options) {
  auto* command = app.add_subcommand(
      "process-memory", "Memory per idle forked process, from a small and from a large parent");
  command->add_option("--samples", options.samples, "Batches per parent size")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  command->add_option("--processes", options.processes, "Idle children per batch")
      ->check(CLI::Range(1, 20'000))
      ->capture_default_str();
  command
      ->add_option("--parent-rss-mib", options.parent_rss_mib,
                   "Private memory the parent writes before a second round (0: no second round)")
      ->check(CLI::Range(0, 16'384))
      ->capture_default_str();
  command->add_option("--touch-kib", options.touch_kib, "Fresh memory each child writes")
      ->check(CLI::Range(0, 1'048'576))
      ->capture_default_str();
  command
      ->add_option("--max-seconds-per-figure", options.max_seconds_per_figure,
                   "Stop a figure's sampling early after this long")
      ->check(CLI::Range(0.01, 600.0))
      ->capture_default_str();
  command->callback(print_result_of(options, run_process_memory_probe));
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
    ContextSwitchOptions context_switch;
    ThreadMemoryOptions thread_memory;
    ProcessMemoryOptions process_memory;
    add_spawn_command(app, spawn);
    add_context_switch_command(app, context_switch);
    add_thread_memory_command(app, thread_memory);
    add_process_memory_command(app, process_memory);
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
