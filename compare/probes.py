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


READERS = {"spawn": spawn_figures, "context-switch": context_switch_figures,
           "thread-memory": thread_memory_figures, "process-memory": process_memory_figures,
           "rmap": rmap_figures}


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
                recorder.add("probe", (command,), "machine", READERS[command](data))
                summary = line.split(": ", 1)[-1][:110]
            except (RuntimeError, OSError, ValueError) as error:
                message = f"probe {command}, run {rep + 1}: {error}"
                failures.append(message)
                print(f"  {message}", file=sys.stderr, flush=True)
                summary = "FAILED"
            progress(rep, f"probe {command}", "-", summary, time.monotonic() - started)
