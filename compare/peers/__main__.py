"""Each echolab model beside the production server that implements the same model, under
the same wrk load on loopback: req/s, p50, p99 and errors at several connection counts,
medians of repeated runs. Usage: python3 -m compare.peers --bin-dir build/bin [--connections 100,1000,10000]
[--busy-loops N]"""

import argparse
import contextlib
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import loadtools, processes
from ..servers import MODELS, Server, settings_for, with_flag
from .servers import NGINX_WORKERS, Peer, available

WARMUP_S = 3


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.port}/hello"


def run_wrk(url: str, connections: int, seconds: int) -> dict:
    """One wrk -t2 run; the numbers parsed from its --latency report."""
    got = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout=10s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60)
    parsed = loadtools.parse_wrk_text(got.stdout)
    return {
        "rps": parsed["requests_per_second"],
        "p50_us": parsed["latency_us"]["p50"],
        "p99_us": parsed["latency_us"]["p99"],
        "errors": parsed["errors"]["total"],
        "timeouts": parsed["errors"]["timeout"],
    }


def cpu_reading_at(pgid: int, moment: float) -> tuple[float, float]:
    """The group's CPU seconds read at `moment` (time.monotonic()), and when the reading was
    taken: the middle of it, as reading 10,000 processes takes a while."""
    time.sleep(max(moment - time.monotonic(), 0))
    begun = time.monotonic()
    cpu = processes.group_cpu_seconds(pgid)
    return cpu, (begun + time.monotonic()) / 2


def measured_run(server, connections: int, seconds: int) -> dict:
    """One wrk run, and the CPU time the server's processes spent per request: what serving
    costs the server itself, whatever share of the two cores wrk took. The CPU time is read
    at 10 % and 80 % of the run, when every connection (and every worker thread or process
    serving one) is up, and divided by the requests between the two readings at the run's
    rate. A reading that ends after wrk did (connection threads may have exited with their
    time) is dropped, not reported."""
    wrk_done = threading.Event()
    window = []

    def read_window(started: float) -> None:
        cpu_before, at_before = cpu_reading_at(server.process.pid, started + 0.1 * seconds)
        cpu_after, at_after = cpu_reading_at(server.process.pid, started + 0.8 * seconds)
        if not wrk_done.is_set():
            window.append((cpu_after - cpu_before, at_after - at_before))

    reader = threading.Thread(target=read_window, args=(time.monotonic(),))
    reader.start()
    run = run_wrk(url_of(server), connections, seconds)
    wrk_done.set()
    reader.join()
    cpu_us = window[0][0] * 1e6 / max(run["rps"] * window[0][1], 1) if window else None
    return {**run, "cpu_us": cpu_us}


def cpu_text(row: dict) -> str:
    return "-" if row["cpu_us"] is None else f"{row['cpu_us']:.2f}"


def median_of(runs: list[dict]) -> dict:
    by_rps = sorted(runs, key=lambda r: r["rps"])
    middle = by_rps[len(by_rps) // 2]
    return {**middle, "rps": statistics.median(r["rps"] for r in runs),
            "rps_min": by_rps[0]["rps"], "rps_max": by_rps[-1]["rps"],
            "cpu_us": statistics.median(cpu) if (cpu := [r["cpu_us"] for r in runs
                                                          if r["cpu_us"] is not None]) else None,
            "errors": max(r["errors"] for r in runs)}


@contextlib.contextmanager
def busy_loops(count: int):
    """`count` processes that spin for the whole benchmark: the other jobs of a shared machine,
    made deliberate, to show how each server's cost per request changes when its threads are
    preempted. Yields a function that returns the CPU seconds they have had so far."""
    spinners = [processes.spawn([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield lambda: sum(processes.group_cpu_seconds(spinner.pid) for spinner in spinners)
    finally:
        for spinner in spinners:
            processes.stop(spinner, grace_s=1.0)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m compare.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, default=Path("build/bin"))
    parser.add_argument("--connections", default="100,1000,10000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated server names to run")
    parser.add_argument("--busy-loops", type=int, default=0, metavar="N",
                        help="spin N processes meanwhile, competing for the cores")
    args = parser.parse_args()
    if args.busy_loops < 0:
        parser.error(f"--busy-loops must be 0 or more, not {args.busy_loops}")
    processes.install_cleanup()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    levels = [int(c) for c in args.connections.split(",")]
    if max(levels) + 100 > hard:
        sys.exit(f"benchmark: ulimit -n is {hard}, below {max(levels) + 100}: raise it (ulimit -n)")

    log_dir = Path(tempfile.mkdtemp(prefix="echolab-peers-"))

    # Both pre-forking servers keep every idle child between runs (a spare limit as high as
    # the worker cap): each run then measures serving, not forking 10,000 children again.
    # Apache retires one idle child a second, echolab-prefork the whole surplus, so with the
    # default of 256 the same setting would give them different pools at the next run.
    keep_every_child = max(levels) + 64

    def echolab(model: str, name: str = "", *extra: str) -> Server:
        flags = settings_for(model, max(levels)) + list(extra)
        if model == "prefork":
            flags = with_flag(flags, "--max-spare", str(keep_every_child))
        elif model == "hybrid":
            flags = with_flag(flags, "--workers", str(NGINX_WORKERS))
        return Server(name or model, model, args.bin_dir / f"echolab-{model}", flags, log_dir)

    servers = [(model, lambda m=model: echolab(m)) for model in MODELS]
    # The pool's other mode, nginx's own shape: an event loop per thread, no shared reactor.
    servers.append(("pool-per-thread",
                    lambda: echolab("pool", "pool-per-thread", "--io-context-per-thread")))
    servers += [(peer, lambda p=peer: Peer(p, max_spare=keep_every_child)) for peer in available()]
    if args.only:
        servers = [(n, m) for n, m in servers if n in args.only.split(",")]
    # Every server runs for the whole benchmark and the runs are interleaved (each repetition
    # visits every server in turn), so a burst of noise on a shared machine hits all alike.
    # An unrecorded warm-up at each level lets prefork models fork up to it first.
    rows = []
    with contextlib.ExitStack() as stack:
        running = [(name, stack.enter_context(make())) for name, make in servers]
        busy_cpu_seconds = stack.enter_context(busy_loops(args.busy_loops))
        for connections in levels:
            runs = {name: [] for name, _ in running}
            for name, server in running:
                run_wrk(url_of(server), connections, WARMUP_S)
            for _ in range(args.repeat):
                for name, server in running:
                    runs[name].append(measured_run(server, connections, args.seconds))
            for name, _ in running:
                row = {"server": name, "connections": connections, **median_of(runs[name])}
                rows.append(row)
                print(f"{name:15} -c{connections:<6} {row['rps']:>9.0f} req/s  p50 {row['p50_us']:>9.0f} us"
                      f"  p99 {row['p99_us']:>9.0f} us  cpu {cpu_text(row)} us/req"
                      f"  errors {row['errors']}", file=sys.stderr)
        if args.busy_loops:
            print(f"{args.busy_loops} busy loops ran meanwhile and had {busy_cpu_seconds():.2f} s"
                  " of CPU time")
    print("| server | connections | req/s (median) | min-max | p50 (us) | p99 (us)"
          " | server CPU (us/req) | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['connections']} | {r['rps']:.0f} | {r['rps_min']:.0f}-{r['rps_max']:.0f}"
              f" | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {cpu_text(r)} | {r['errors']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
