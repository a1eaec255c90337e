"""Each echolab model beside the production server that implements the same model, under
the same wrk load on loopback: req/s, p50, p99 and errors at several connection counts,
medians of repeated runs, and each server's CPU per request, also as a multiple of the floor's
(echolab-floor, compare/floor.py). Usage: python3 -m compare.peers --bin-dir build/bin [--connections 100,1000,10000]
[--busy-loops N]"""

import argparse
import contextlib
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import cpu, floor, loadtools, processes
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


def measured_run(server, connections: int, seconds: int) -> dict:
    """One wrk run, and the CPU time the server's processes spent per request: what serving
    costs the server itself, whatever share of the two cores wrk took (compare/cpu.py)."""
    window = cpu.CpuWindow(server.process.pid, seconds)
    run = run_wrk(url_of(server), connections, seconds)
    return {**run, "cpu_us": cpu.cpu_us_per_request(window.finish(), run["rps"])}


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
    # The floor, with as many event loops as hybrid and nginx: what no server can go below.
    servers += [(name, lambda n=name: floor.floor_server(n, args.bin_dir, NGINX_WORKERS, log_dir))
                for name in floor.NAMES]
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
                print(f"{floor.display(name):16} -c{connections:<6} {row['rps']:>9.0f} req/s  p50 {row['p50_us']:>9.0f} us"
                      f"  p99 {row['p99_us']:>9.0f} us  cpu {cpu_text(row)} us/req"
                      f"  errors {row['errors']}", file=sys.stderr)
        if args.busy_loops:
            print(f"{args.busy_loops} busy loops ran meanwhile and had {busy_cpu_seconds():.2f} s"
                  " of CPU time")
    print_table(rows)
    return 0


def print_table(rows: list[dict]) -> None:
    """The Markdown table, each server's CPU per request also as a multiple of the epoll
    floor's at the same connection count."""
    floor_cpu = {r["connections"]: r["cpu_us"] for r in rows if r["server"] == floor.REFERENCE}
    print("| server | connections | req/s (median) | min-max | p50 (us) | p99 (us)"
          " | server CPU (us/req) | CPU per request vs floor | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {floor.display(r['server'])} | {r['connections']} | {r['rps']:.0f}"
              f" | {r['rps_min']:.0f}-{r['rps_max']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f}"
              f" | {cpu_text(r)} | {floor.ratio_text(r['cpu_us'], floor_cpu.get(r['connections']))}"
              f" | {r['errors']} |")


if __name__ == "__main__":
    sys.exit(main())
