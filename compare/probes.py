"""The article's raw claims measured directly with echolab-probe, away from any server: process
vs thread creation, a context switch between two processes vs two threads pinned to one CPU,
and the memory of an idle thread and of an idle forked process."""

import json
import subprocess
import sys
import time
from pathlib import Path

from . import processes
from .figures import Recorder
from .plan import Plan


def _arguments(plan: Plan) -> dict[str, list[str]]:
    return {
        "spawn": ["--samples", str(plan.spawn_samples), "--parent-rss-mib", str(plan.spawn_parent_mib)],
        "context-switch": ["--samples", str(plan.switch_samples), "--round-trips", str(plan.switch_round_trips)],
        "thread-memory": ["--samples", str(plan.memory_samples), "--threads", str(plan.idle_threads)],
        "process-memory": ["--samples", str(plan.memory_samples), "--processes", str(plan.idle_processes),
                           "--parent-rss-mib", str(plan.memory_parent_mib)],
        "rmap": ["--max", str(plan.rmap_max_tasks), "--samples", str(plan.rmap_samples)],
        "communication": ["--samples", str(plan.communication_samples),
                          "--round-trips", str(plan.communication_round_trips)],
        "thread-exhaustion": ["--cap", str(plan.exhaustion_cap)],
        "fork-descriptors": ["--samples", str(plan.fork_descriptor_samples)],
    }


def _run(binary: Path, command: str, args: list[str], work_dir: Path, name: str) -> tuple[dict, str]:
    out_path = work_dir / f"{name}.json"
    with open(out_path, "wb") as out:
        process = processes.spawn([str(binary), command, *args], log_path=work_dir / f"{name}.log", stdout=out)
    try:
        status = process.wait(timeout=300)
    except subprocess.TimeoutExpired:
        processes.stop(process, grace_s=2)
        raise RuntimeError(f"echolab-probe {command} did not finish in 300 s")
    processes.stop(process, grace_s=1)
    log = (work_dir / f"{name}.log").read_text(errors="replace").strip()
    if status != 0:
        raise RuntimeError(f"echolab-probe {command} exited with {status}: {log.splitlines()[-1] if log else ''}")
    return json.loads(out_path.read_text()), (log.splitlines()[-1] if log else "")


def _median(summary: dict | None) -> float | None:
    return summary.get("median") if isinstance(summary, dict) else None


def _p99(summary: dict | None) -> float | None:
    return summary.get("p99") if isinstance(summary, dict) else None


def spawn_figures(data: dict) -> dict:
    figures = {}
    for parent in ("small_parent", "large_parent"):
        part = data.get(parent)
        if not part:
            continue
        prefix = "" if parent == "small_parent" else "large_parent_"
        for key, name in (("fork_until_child_runs_us", "fork"), ("fork_exec_until_exit_us", "fork_exec"),
                          ("posix_spawn_until_exit_us", "posix_spawn"), ("thread_until_runs_us", "thread")):
            figures[f"{prefix}{name}_p50_us"] = _median(part.get(key))
            figures[f"{prefix}{name}_p99_us"] = _p99(part.get(key))
        figures[f"{prefix}parent_rss_kib"] = part.get("parent_rss_kib")
        figures[f"{prefix}parent_page_tables_kib"] = part.get("parent_page_tables_kib")
    return figures


def _difference_figures(summary: dict | None, name: str, scale: float = 1.0) -> dict:
    """The median of per-sample differences as `name`, their extremes as `name`_low and
    `name`_high: figures.difference turns them into a difference or "no difference"."""
    if not isinstance(summary, dict) or not scale:
        return {name: None, f"{name}_low": None, f"{name}_high": None}
    return {name: summary["median"] * scale, f"{name}_low": summary["min"] * scale,
            f"{name}_high": summary["max"] * scale}


def context_switch_figures(data: dict) -> dict:
    figures = {"cpu_nominal_mhz": data.get("cpu_nominal_mhz"), "pcid": 1 if data.get("pcid") else 0,
               "pipe_write_read_ns": _median(data.get("pipe_write_read_ns"))}
    for variant in ("plain", "touching"):
        part = data.get(variant)
        if not part:
            continue
        prefix = "" if variant == "plain" else "touching_"
        figures[f"{prefix}process_ns"] = _median(part.get("process_ns_per_switch"))
        figures[f"{prefix}thread_ns"] = _median(part.get("thread_ns_per_switch"))
        figures[f"{prefix}process_p99_ns"] = _p99(part.get("process_ns_per_switch"))
        figures[f"{prefix}thread_p99_ns"] = _p99(part.get("thread_ns_per_switch"))
        # Cycles at the nominal clock, an estimate: the core may run above or below it.
        figures.update(_difference_figures(part.get("process_minus_thread_ns_per_sample"), f"{prefix}extra_cycles",
                                           (data.get("cpu_nominal_mhz") or 0) / 1e3))
        if variant == "touching":
            figures["touching_pages_per_side"] = part.get("pages_per_side")
    return figures


def thread_memory_figures(data: dict) -> dict:
    figures = {}
    for stack in ("default_stack", "small_stack"):
        part = data.get(stack) or {}
        figures[f"{stack}_kib"] = part.get("stack_kib")
        for key in ("rss", "pss", "virtual", "page_tables", "kernel_stack"):
            figures[f"{stack}_{key}_kib"] = _median(part.get(f"{key}_kib_per_thread"))
    return figures


def process_memory_figures(data: dict) -> dict:
    figures = {}
    for parent in ("small_parent", "large_parent"):
        part = data.get(parent)
        if not part:
            continue
        figures[f"{parent}_rss_kib"] = part.get("parent_rss_kib")
        for key in ("rss", "pss", "pss_added", "page_tables", "kernel_stack"):
            figures[f"{parent}_{key}_per_process_kib"] = _median(part.get(f"{key}_kib_per_process"))
    return figures


def rmap_figures(data: dict) -> dict:
    """Per count N of tasks: process_ns_at_N, thread_ns_at_N and the difference_ns_at_N
    figures (ns per page for one walk of the reverse map)."""
    figures = {}
    for point in data.get("points") or []:
        tasks = point["tasks"]
        figures[f"process_ns_at_{tasks}"] = _median(point.get("process_ns_per_page"))
        figures[f"thread_ns_at_{tasks}"] = _median(point.get("thread_ns_per_page"))
        figures.update(_difference_figures(point.get("process_minus_thread_ns_per_page"), f"difference_ns_at_{tasks}"))
    return figures


def rmap_counts(runs: list[dict]) -> list[int]:
    """The counts of tasks the rmap probe measured, from its figures' names."""
    counts = {int(name.rsplit("_", 1)[1]) for run in runs for name in run if name.startswith("process_ns_at_")}
    return sorted(counts)


COMMUNICATION_PAIRS = ("thread_shared_memory", "process_shared_memory", "process_pipe", "process_unix_socket")
COMMUNICATION_PLACEMENTS = ("one_cpu", "two_cpus", "unpinned")
COMMUNICATION_SIZES = ("small", "large")


def communication_figures(data: dict) -> dict:
    """Per placement, size ("small", "large") and pair: {placement}_{size}_{pair}_us (median
    round trip) and _mib_s (throughput); {placement}_{size}_process_minus_thread_us the
    difference of the two shared-memory pairs, sample by sample."""
    figures = {"small_bytes": data.get("small_bytes"), "large_bytes": data.get("large_bytes")}
    for placement, part in (data.get("placements") or {}).items():
        for size_name, size in zip(COMMUNICATION_SIZES, part.get("sizes") or []):
            prefix = f"{placement}_{size_name}"
            for pair, pair_figures in (size.get("pairs") or {}).items():
                figures[f"{prefix}_{pair}_us"] = _median(pair_figures.get("round_trip_us"))
                figures[f"{prefix}_{pair}_mib_s"] = _median(pair_figures.get("mib_per_second"))
            figures.update(_difference_figures(size.get("process_minus_thread_shared_memory_us"),
                                               f"{prefix}_process_minus_thread_us"))
    return figures


MEMORY_ENDINGS = ("memory", "OOM killer", "killed by signal 9")


def exhaustion_figures(data: dict) -> dict:
    """Per stack ("default", "small"): threads, memory and CPU share, and what ended the run as
    flags ({stack}_ended_at_cap, _by_memory, _by_address_space, _by_task_limit), since figures
    are numbers; the words themselves are in exhaustion_note."""
    figures = {key: data.get(key) for key in ("cap", "task_headroom", "mem_available_kib")}
    for run in data.get("runs") or []:
        stack, ended_by = run["stack"], run.get("ended_by") or ""
        for key in ("stack_kib", "threads", "rss_kib", "virtual_kib", "page_tables_kib", "kernel_stack_kib_added",
                    "creation_seconds", "creation_cpu_share", "hold_cpu_share"):
            figures[f"{stack}_{key}"] = run.get(key)
        figures[f"{stack}_ended_at_cap"] = int(ended_by == "the cap")
        figures[f"{stack}_ended_by_address_space"] = int(ended_by.startswith("RLIMIT_AS"))
        figures[f"{stack}_ended_by_memory"] = int(any(word in ended_by for word in MEMORY_ENDINGS))
        figures[f"{stack}_ended_by_task_limit"] = int(any(word in ended_by for word in (
            "RLIMIT_NPROC", "threads-max", "pid_max", "pids.max")))
    return figures


def exhaustion_note(data: dict) -> str:
    runs = "; ".join(f"{run['stack']} stack: {run.get('threads')} threads, ended by {run.get('ended_by')}"
                     for run in data.get("runs") or [])
    return f"cap {data.get('cap')} (set by {data.get('cap_set_by')}); {runs}"


def fork_descriptor_figures(data: dict) -> dict:
    """fork_at_{N}_us and fork_exit_at_{N}_us per level N of descriptors reached; extra_us the
    median of the per-round differences, most descriptors minus fewest (the levels alternate)."""
    figures = {}
    reached = [level for level in data.get("levels") or [] if not level.get("skipped")]
    for level in reached:
        wanted = level["descriptors_wanted"]
        figures[f"fork_at_{wanted}_us"] = _median(level.get("fork_until_child_runs_us"))
        figures[f"fork_exit_at_{wanted}_us"] = _median(level.get("fork_until_child_exits_us"))
    if len(reached) >= 2:
        figures.update(fewest_descriptors=reached[0]["descriptors_wanted"],
                       most_descriptors=reached[-1]["descriptors_wanted"])
        figures.update(_difference_figures(data.get("most_minus_fewest_fork_us"), "extra_us"))
    return figures


def descriptor_levels(runs: list[dict]) -> list[int]:
    """The descriptor levels the fork-descriptors probe reached, from its figures' names."""
    return sorted({int(name.split("_")[2]) for run in runs for name in run if name.startswith("fork_at_")})


NOTES = {"thread-exhaustion": exhaustion_note}


READERS = {"spawn": spawn_figures, "context-switch": context_switch_figures,
           "thread-memory": thread_memory_figures, "process-memory": process_memory_figures,
           "rmap": rmap_figures, "communication": communication_figures,
           "thread-exhaustion": exhaustion_figures, "fork-descriptors": fork_descriptor_figures}


def steps(plan: Plan) -> int:
    return len(READERS) * plan.repetitions


def run_probes(binary: Path, plan: Plan, work_dir: Path, recorder: Recorder, failures: list[str],
               progress) -> None:
    """Every probe, `plan.repetitions` times; each run's figures go to the recorder under
    scenario "probe", row (probe name,)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    arguments = _arguments(plan)
    for rep in range(plan.repetitions):
        for command, args in arguments.items():
            started = time.monotonic()
            try:
                data, line = _run(binary, command, args, work_dir, f"probe-{command}-{rep}")
                note = NOTES[command](data) if command in NOTES else None
                recorder.add("probe", (command,), "machine", READERS[command](data), note)
                summary = line.split(": ", 1)[-1][:110]
            except (RuntimeError, OSError, ValueError) as error:
                message = f"probe {command}, run {rep + 1}: {error}"
                failures.append(message)
                print(f"  {message}", file=sys.stderr, flush=True)
                summary = "FAILED"
            progress(rep, f"probe {command}", "-", summary, time.monotonic() - started)
