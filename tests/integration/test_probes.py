"""echolab-probe: each subcommand runs, prints complete and plausible JSON, and leaves no
thread or child process behind. The figures themselves are reported, never ranked: nothing
here asserts that processes or threads are the faster model."""

import json
import math
import os
import resource
import signal
import subprocess
import time

import pytest

from harness import BIN_DIR, process_table

PROBE = BIN_DIR / "echolab-probe"
SUMMARY_KEYS = {"samples", "median", "p90", "p99", "min", "max"}
# The JSON contract the compare report reads: every key, always present (null when a figure
# was not asked for).
SPAWN_KEYS = {"probe", "kernel", "samples_requested", "exec_path", "parent_rss_mib", "parent_huge_pages",
              "small_parent", "large_parent"}
SPAWN_FIGURE_KEYS = {"parent_rss_kib", "parent_page_tables_kib", "parent_anon_huge_pages_kib",
                     "fork_until_child_runs_us", "fork_exec_until_exit_us", "posix_spawn_until_exit_us",
                     "thread_until_runs_us", "ratio_fork_to_thread", "ratio_fork_exec_to_thread",
                     "ratio_posix_spawn_to_thread"}
SWITCH_KEYS = {"probe", "kernel", "cpu_model", "cpu_nominal_mhz", "pinned_cpu", "pcid", "invpcid", "meltdown",
               "samples_requested", "round_trips_per_sample", "pipe_write_read_ns", "plain", "touching"}
SWITCH_FIGURE_KEYS = {"process_ns_per_switch", "thread_ns_per_switch", "ratio_process_to_thread",
                      "process_minus_thread_ns", "process_minus_thread_ns_per_sample", "process_minus_thread_cycles_at_nominal_clock",
                      "process_switches_per_round_trip", "thread_switches_per_round_trip"}
THREAD_MEMORY_KEYS = {"probe", "kernel", "threads", "samples_requested", "touch_stack_kib", "default_stack",
                      "small_stack"}
THREAD_MEMORY_FIGURE_KEYS = {"stack_kib", "rss_kib_per_thread", "pss_kib_per_thread",
                             "virtual_kib_per_thread", "page_tables_kib_per_thread",
                             "kernel_stack_kib_per_thread"}
PROCESS_MEMORY_KEYS = {"probe", "kernel", "processes", "samples_requested", "touch_kib", "parent_rss_mib",
                       "small_parent", "large_parent"}
PROCESS_MEMORY_FIGURE_KEYS = {"parent_rss_kib", "parent_pss_kib", "rss_kib_per_process",
                              "pss_kib_per_process", "pss_added_kib_per_process",
                              "page_tables_kib_per_process", "kernel_stack_kib_per_process"}
RMAP_KEYS = {"probe", "kernel", "method", "directory", "samples_requested", "max_tasks", "points"}
RMAP_POINT_KEYS = {"tasks", "pages", "process_ns_per_page", "thread_ns_per_page", "ratio_process_to_thread",
                   "process_minus_thread_ns_per_page"}
NOBODY = 65534


def session_members(session_id: int, include_zombies: bool = False) -> list[int]:
    """Pids of the processes still in a session (the probe runs as a session leader)."""
    return [pid for pid, (state, _, session) in process_table().items()
            if session == session_id and (include_zombies or state != "Z")]


def assert_session_empties(session_id: int, limit_s: float = 30) -> None:
    """Every process of a killed probe's session goes (limit_s only says "it hung")."""
    deadline = time.monotonic() + limit_s
    while session_members(session_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_members(session_id) == []


def run_probe(*args: str, timeout: float = 60,
              preexec_fn=None) -> tuple[subprocess.CompletedProcess, list[int]]:
    """Runs echolab-probe in a session of its own; returns its result and what it left."""
    assert PROBE.exists(), f"{PROBE} is not built (set ECHOLAB_BIN_DIR)"
    process = subprocess.Popen([str(PROBE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True, preexec_fn=preexec_fn)
    stdout, stderr = process.communicate(timeout=timeout)
    left_behind = session_members(process.pid, include_zombies=True)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), left_behind


def probe_json(*args: str, timeout: float = 60) -> tuple[dict, str]:
    result, left_behind = run_probe(*args, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert left_behind == [], f"processes left behind: {left_behind}"
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return json.loads(result.stdout), result.stderr


def check_summary(summary: dict, max_samples: int, positive: bool = True) -> None:
    assert set(summary) == SUMMARY_KEYS
    assert 1 <= summary["samples"] <= max_samples
    assert summary["min"] <= summary["median"] <= summary["max"]
    assert summary["median"] <= summary["p90"] <= summary["p99"] <= summary["max"]
    if positive:
        assert summary["min"] > 0


def check_ratio(ratio: float, numerator: dict, denominator: dict) -> None:
    assert ratio > 0
    assert math.isclose(ratio, numerator["median"] / denominator["median"], rel_tol=0.01)


def spawn_figures_are_plausible(figures: dict, samples: int) -> None:
    assert set(figures) == SPAWN_FIGURE_KEYS
    for key in ("fork_until_child_runs_us", "fork_exec_until_exit_us", "posix_spawn_until_exit_us",
                "thread_until_runs_us"):
        check_summary(figures[key], samples)
        # Creating anything takes longer than a microsecond and, on an idle machine, far
        # less than a second.
        assert 1 <= figures[key]["median"] < 1_000_000, (key, figures[key])
    thread = figures["thread_until_runs_us"]
    check_ratio(figures["ratio_fork_to_thread"], figures["fork_until_child_runs_us"], thread)
    check_ratio(figures["ratio_fork_exec_to_thread"], figures["fork_exec_until_exit_us"], thread)
    check_ratio(figures["ratio_posix_spawn_to_thread"], figures["posix_spawn_until_exit_us"], thread)
    assert figures["parent_rss_kib"] > 0
    assert figures["parent_page_tables_kib"] > 0
    assert figures["parent_anon_huge_pages_kib"] >= 0


def test_spawn_times_processes_and_threads_from_a_small_and_a_large_parent():
    report, summary = probe_json("spawn", "--samples", "20", "--parent-rss-mib", "32")
    assert set(report) == SPAWN_KEYS
    assert report["probe"] == "spawn"
    assert report["samples_requested"] == 20
    assert report["parent_huge_pages"] is False
    assert report["exec_path"] == "/bin/true"
    spawn_figures_are_plausible(report["small_parent"], 20)
    spawn_figures_are_plausible(report["large_parent"], 20)
    # The large parent really holds the extra 32 MiB, and the page tables that map it.
    grown_kib = report["large_parent"]["parent_rss_kib"] - report["small_parent"]["parent_rss_kib"]
    assert grown_kib >= 32 * 1024 * 0.95
    assert report["large_parent"]["parent_page_tables_kib"] > report["small_parent"]["parent_page_tables_kib"]
    assert summary.startswith("spawn")


def test_spawn_without_a_large_parent_says_so():
    report, _ = probe_json("spawn", "--samples", "5", "--parent-rss-mib", "0")
    spawn_figures_are_plausible(report["small_parent"], 5)
    assert report["large_parent"] is None


def test_spawn_from_a_parent_in_huge_pages():
    report, summary = probe_json("spawn", "--samples", "5", "--parent-rss-mib", "16", "--huge-pages")
    assert report["parent_huge_pages"] is True
    spawn_figures_are_plausible(report["large_parent"], 5)
    # The kernel may decline huge pages (disabled, or no free 2 MiB blocks): asked, not promised.
    assert report["large_parent"]["parent_anon_huge_pages_kib"] <= 16 * 1024 + 4096
    assert "huge pages" in summary


def test_spawn_reports_a_program_that_cannot_run():
    result, left_behind = run_probe("spawn", "--samples", "3", "--exec", "/nonexistent/program")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "/nonexistent/program" in result.stderr
    assert left_behind == []


def cpu_flags() -> set[str]:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def check_switch_figures(figures: dict, samples: int) -> None:
    assert set(figures) - {"pages_per_side"} == SWITCH_FIGURE_KEYS
    check_summary(figures["process_ns_per_switch"], samples)
    check_summary(figures["thread_ns_per_switch"], samples)
    check_summary(figures["process_minus_thread_ns_per_sample"], samples, positive=False)
    check_ratio(figures["ratio_process_to_thread"], figures["process_ns_per_switch"],
                figures["thread_ns_per_switch"])
    difference = figures["process_ns_per_switch"]["median"] - figures["thread_ns_per_switch"]["median"]
    assert math.isclose(figures["process_minus_thread_ns"], difference, abs_tol=0.01)
    # On one CPU the probe's thread gives the CPU away about once per round trip.
    assert 0.5 <= figures["process_switches_per_round_trip"] <= 2
    assert 0.5 <= figures["thread_switches_per_round_trip"] <= 2


def test_context_switch_ping_pongs_processes_and_threads_on_one_cpu():
    report, summary = probe_json("context-switch", "--samples", "3", "--round-trips", "2000",
                                 "--touch-pages", "16")
    assert set(report) == SWITCH_KEYS
    assert report["probe"] == "context-switch"
    assert report["samples_requested"] == 3
    assert report["pinned_cpu"] in os.sched_getaffinity(0)
    flags = cpu_flags()
    assert report["pcid"] == ("pcid" in flags)
    assert report["invpcid"] == ("invpcid" in flags)
    assert report["meltdown"]
    assert report["round_trips_per_sample"] == 2000
    check_summary(report["pipe_write_read_ns"], 3)
    check_switch_figures(report["plain"], 3)
    assert report["touching"]["pages_per_side"] == 16
    check_switch_figures(report["touching"], 3)
    assert "pcid" in summary


def test_context_switch_on_a_chosen_cpu_without_touching():
    cpu = max(os.sched_getaffinity(0))
    report, _ = probe_json("context-switch", "--samples", "1", "--round-trips", "500",
                           "--touch-pages", "0", "--cpu", str(cpu))
    assert report["pinned_cpu"] == cpu
    check_switch_figures(report["plain"], 1)
    assert report["touching"] is None


def default_thread_stack_kib() -> int | None:
    """glibc sizes default thread stacks by RLIMIT_STACK when it is finite."""
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    return None if soft == resource.RLIM_INFINITY else soft // 1024


def test_thread_memory_shows_reserved_stacks_and_resident_pages():
    report, summary = probe_json("thread-memory", "--samples", "2", "--threads", "100",
                                 "--small-stack-kib", "64", "--touch-stack-kib", "16")
    assert set(report) == THREAD_MEMORY_KEYS
    assert report["probe"] == "thread-memory"
    assert report["threads"] == 100
    assert report["samples_requested"] == 2
    default, small = report["default_stack"], report["small_stack"]
    assert set(default) == set(small) == THREAD_MEMORY_FIGURE_KEYS
    expected_default = default_thread_stack_kib()
    if expected_default is not None:
        assert default["stack_kib"] == expected_default
    assert small["stack_kib"] == 64
    for figures in (default, small):
        for key in ("rss_kib_per_thread", "pss_kib_per_thread", "virtual_kib_per_thread",
                    "page_tables_kib_per_thread"):
            check_summary(figures[key], 2)
        check_summary(figures["kernel_stack_kib_per_thread"], 2, positive=False)
        # Every thread wrote 16 KiB of its stack: those pages are resident.
        assert figures["rss_kib_per_thread"]["median"] >= 16
        assert figures["pss_kib_per_thread"]["median"] <= figures["rss_kib_per_thread"]["median"] + 1
        # The whole stack is reserved in the address space, whether touched or not.
        assert figures["virtual_kib_per_thread"]["median"] >= figures["stack_kib"]
    # A large stack is reserved, not resident: what the threads did not touch costs no RAM.
    assert default["rss_kib_per_thread"]["median"] < default["stack_kib"] / 4
    assert small["virtual_kib_per_thread"]["median"] < default["virtual_kib_per_thread"]["median"]
    assert summary.startswith("thread-memory")


def test_process_memory_shows_copy_on_write_sharing():
    report, summary = probe_json("process-memory", "--samples", "2", "--processes", "20",
                                 "--parent-rss-mib", "32", "--touch-kib", "64")
    assert set(report) == PROCESS_MEMORY_KEYS
    assert report["probe"] == "process-memory"
    assert report["processes"] == 20
    assert report["samples_requested"] == 2
    small, large = report["small_parent"], report["large_parent"]
    assert set(small) == set(large) == PROCESS_MEMORY_FIGURE_KEYS
    for figures in (small, large):
        for key in ("rss_kib_per_process", "pss_kib_per_process", "pss_added_kib_per_process",
                    "page_tables_kib_per_process"):
            check_summary(figures[key], 2)
        check_summary(figures["kernel_stack_kib_per_process"], 2, positive=False)
        # Each child wrote 64 KiB of fresh memory, which only it maps.
        assert figures["pss_kib_per_process"]["median"] >= 64
        assert figures["pss_kib_per_process"]["median"] <= figures["rss_kib_per_process"]["median"]
    # The children map the parent's 32 MiB (RSS counts it in each) but share it copy-on-write
    # (PSS divides it among the 21 processes), and each holds page tables for it.
    assert large["parent_rss_kib"] >= small["parent_rss_kib"] + 32 * 1024 * 0.95
    assert large["rss_kib_per_process"]["median"] >= 32 * 1024
    assert large["pss_kib_per_process"]["median"] < large["rss_kib_per_process"]["median"] / 4
    assert large["page_tables_kib_per_process"]["median"] > small["page_tables_kib_per_process"]["median"]
    assert summary.startswith("process-memory")


def test_process_memory_without_a_large_parent_says_so():
    report, _ = probe_json("process-memory", "--samples", "1", "--processes", "5", "--parent-rss-mib", "0")
    assert set(report["small_parent"]) == PROCESS_MEMORY_FIGURE_KEYS
    assert report["large_parent"] is None


def test_rmap_walk_grows_with_processes_and_not_with_threads():
    # 512 tasks: each process adds one mapping of the page to walk, about 0.1-0.3 us, so the
    # growth stands well clear of the per-page cost of a write-back (several us, and noisy).
    report, summary = probe_json("rmap", "--max", "512", "--samples", "3", "--directory", "/var/tmp")
    assert set(report) == RMAP_KEYS
    assert report["probe"] == "rmap" and report["max_tasks"] == 512
    points = {point["tasks"]: point for point in report["points"]}
    assert sorted(points) == [1, 10, 100, 512]
    for point in points.values():
        assert set(point) == RMAP_POINT_KEYS
        assert 8 <= point["pages"] <= 256
        check_summary(point["process_ns_per_page"], 3)
        check_summary(point["thread_ns_per_page"], 3)
        check_summary(point["process_minus_thread_ns_per_page"], 3, positive=False)
        check_ratio(point["ratio_process_to_thread"], point["process_ns_per_page"], point["thread_ns_per_page"])
    # Each process maps the page in an address space of its own, which the kernel visits on
    # every walk: the cost per page grows with them. Threads share one address space, so 512
    # of them cost what one does, give or take the noise of a shared machine: far less than
    # 512 processes.
    process_at = lambda n: points[n]["process_ns_per_page"]["median"]
    thread_at = lambda n: points[n]["thread_ns_per_page"]["median"]
    assert process_at(512) > 4 * process_at(1), report["points"]
    assert process_at(512) > 3 * thread_at(512), report["points"]
    assert summary.startswith("rmap")


def test_rmap_refuses_a_directory_in_memory():
    result, left_behind = run_probe("rmap", "--max", "4", "--directory", "/dev/shm")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "tmpfs" in result.stderr and "--directory" in result.stderr
    assert left_behind == []


def tasks_of_user(uid: int) -> int:
    tasks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid:
            tasks += int(fields["Threads"])
    return tasks


def low_process_limit():
    """A preexec function that leaves room for about 10 more tasks under RLIMIT_NPROC. The
    kernel does not apply the limit to root, so root runs the probe as nobody."""
    if os.geteuid() == 0:
        def as_nobody_with_limit():
            resource.setrlimit(resource.RLIMIT_NPROC, (10, 10))
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        return as_nobody_with_limit
    limit = tasks_of_user(os.getuid()) + 10

    def with_limit():
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, resource.getrlimit(resource.RLIMIT_NPROC)[1]))
    return with_limit


@pytest.mark.parametrize("command, option", [("thread-memory", "--threads"),
                                             ("process-memory", "--processes"), ("rmap", "--max")])
def test_a_task_limit_too_low_fails_up_front_naming_the_limit(command, option):
    try:
        result, _ = run_probe(command, "--samples", "1", option, "50", *(
            ["--directory", "/var/tmp"] if command == "rmap" else []), preexec_fn=low_process_limit())
    except PermissionError:
        pytest.skip(f"{PROBE} is not executable by user {NOBODY}")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "RLIMIT_NPROC" in lines[0] and option in lines[0]


def test_children_die_with_a_killed_probe():
    # Long enough (many samples, no time budget) to be killed while its children are up.
    process = subprocess.Popen([str(PROBE), "process-memory", "--samples", "100", "--processes", "200",
                                "--parent-rss-mib", "0", "--max-seconds-per-figure", "600"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # However slowly its children come up, the first one is the event; stopping the probe
        # then keeps it from reaping its children before it is killed.
        deadline = time.monotonic() + 60  # only "it hung"
        while len(session_members(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGSTOP)
        children = [pid for pid in session_members(process.pid) if pid != process.pid]
        assert children, "the probe never had its children up"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert_session_empties(process.pid)


@pytest.mark.parametrize("args, option", [(["context-switch", "--round-trips", "1"], "--round-trips"),
                                          (["rmap", "--max", "0"], "--max"),
                                          (["rmap", "--max", "40000"], "--max"),
                                          (["rmap", "--directory", "/nonexistent"], "--directory"),
                                          (["communication", "--round-trips", "1"], "--round-trips"),
                                          (["thread-exhaustion", "--cap", "0"], "--cap"),
                                          (["fork-descriptors", "--levels", "10,x"], "--levels")])
def test_a_usage_error_is_reported(args, option):
    result, _ = run_probe(*args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert option in result.stderr.splitlines()[0]


COMMUNICATION_PAIRS = {"thread_shared_memory", "process_shared_memory", "process_pipe", "process_unix_socket"}


def test_communication_gives_every_pair_both_sizes_and_every_placement():
    report, summary = probe_json("communication", "--samples", "3", "--round-trips", "50",
                                 "--small-bytes", "64", "--large-bytes", "65536")
    assert report["probe"] == "communication"
    assert report["wake_up"] == "futex"
    placements = report["placements"]
    two_cpus = len(os.sched_getaffinity(0)) >= 2
    assert list(placements) == (["one_cpu", "two_cpus", "unpinned"] if two_cpus else ["one_cpu", "unpinned"])
    assert (report["two_cpus_skipped"] is None) == two_cpus
    assert len(placements["one_cpu"]["cpus"]) == 1 and placements["unpinned"]["cpus"] == []
    if two_cpus:
        assert len(set(placements["two_cpus"]["cpus"])) == 2
    for placement in placements.values():
        assert [size["bytes"] for size in placement["sizes"]] == [64, 65536]
        for size in placement["sizes"]:
            assert set(size["pairs"]) == COMMUNICATION_PAIRS
            for pair in size["pairs"].values():
                check_summary(pair["round_trip_us"], 3)
                check_summary(pair["mib_per_second"], 3)
            check_summary(size["process_minus_thread_shared_memory_us"], 3, positive=False)
    assert summary.startswith("communication")


def exhaustion_runs(report: dict) -> dict:
    assert report["probe"] == "thread-exhaustion"
    runs = {run["stack"]: run for run in report["runs"]}
    assert list(runs) == ["default", "small"]
    return runs


def test_thread_exhaustion_under_a_small_cap_ends_at_the_cap():
    report, summary = probe_json("thread-exhaustion", "--cap", "200", "--small-stack-kib", "64",
                                 "--hold-seconds", "0.1")
    assert report["cap"] == 200 and report["cap_set_by"] == "--cap"
    runs = exhaustion_runs(report)
    assert runs["small"]["stack_kib"] == 64
    for run in runs.values():
        assert run["threads"] == 200
        assert run["ended_by"] == "the cap" and run["error"] is None and run["reported"] is True
        # Every thread holds a stack mapping and its guard page.
        assert run["map_count"] >= 200
        assert run["virtual_kib"] >= 200 * run["stack_kib"]
        assert 0 < run["rss_kib"] < run["virtual_kib"]
        assert run["hold_cpu_share"] >= 0
    # The default stack reserves more address space than the small one, for as many threads.
    assert runs["default"]["virtual_kib"] > runs["small"]["virtual_kib"]
    assert "ended by the cap" in summary


def with_address_space_limit(mib: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mib << 20, mib << 20))
    return limit


def test_thread_exhaustion_under_rlimit_as_ends_at_that_limit_and_names_it():
    # 512 MiB of address space holds a few dozen default (8 MiB) stacks, far below the cap;
    # 64 KiB stacks fit thousands, so the small-stack run reaches the cap instead.
    if default_thread_stack_kib() is None or default_thread_stack_kib() < 1024:
        pytest.skip("the default thread stack is too small for 512 MiB to run out first")
    result, left_behind = run_probe("thread-exhaustion", "--cap", "2000", "--hold-seconds", "0.1",
                                    preexec_fn=with_address_space_limit(512))
    assert result.returncode == 0, result.stderr
    assert left_behind == []
    runs = exhaustion_runs(json.loads(result.stdout))
    assert runs["default"]["ended_by"] == "RLIMIT_AS (address space)"
    assert runs["default"]["error"] is not None
    assert 0 < runs["default"]["threads"] < 2000
    assert runs["default"]["virtual_kib"] <= 512 * 1024
    assert runs["small"]["ended_by"] == "the cap" and runs["small"]["threads"] == 2000


def test_thread_exhaustion_leaves_no_thread_behind_when_killed():
    process = subprocess.Popen([str(PROBE), "thread-exhaustion", "--cap", "2000", "--hold-seconds", "60"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60  # only "it hung"
        while len(session_members(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(session_members(process.pid)) == 2, "the creating child never came up"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert_session_empties(process.pid)


def test_fork_descriptors_gives_three_increasing_levels():
    report, summary = probe_json("fork-descriptors", "--samples", "5", "--levels", "10,1000,10000")
    assert report["probe"] == "fork-descriptors"
    levels = report["levels"]
    assert [level["descriptors_wanted"] for level in levels] == [10, 1000, 10000]
    reached = [level for level in levels if level["skipped"] is None]
    for level in levels:
        if level["skipped"] is not None:
            assert "RLIMIT_NOFILE" in level["skipped"]
            assert level["descriptors_wanted"] + 8 > report["open_files_limit"]
    assert reached, "not even 10 descriptors could be held"
    held = [level["descriptors_held"] for level in reached]
    assert held == sorted(held) and len(set(held)) == len(held)
    if len(reached) >= 2:
        check_summary(report["most_minus_fewest_fork_us"], 5, positive=False)
    for level in reached:
        assert level["descriptors_held"] >= level["descriptors_wanted"]
        check_summary(level["fork_until_child_runs_us"], 5)
        check_summary(level["fork_until_child_exits_us"], 5)
    assert summary.startswith("fork-descriptors")
