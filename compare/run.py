"""make compare: the four concurrency models under identical load, and the article's claims
checked against what this machine measures.

Usage: python3 -m compare --bin-dir build/bin [--quick] [--peers] [--out DIR] [--baseline DIR]
       python3 -m compare diff OLD NEW [--out DIR]   (compare/diff.py)

Starts echolab-prefork, echolab-threads and echolab-pool on loopback, runs the same scenario
matrix against each (closed-loop throughput with echolab-load and wrk, an open-loop rate,
connection churn, the 10,000-connection hold, blocking work, crash containment), measures the
raw costs with echolab-probe, and writes results/<UTC time>/report.md, report.html,
results.json, PNG charts and each latency histogram as .hgrm. Every process it starts is
stopped when it ends, on Ctrl-C and on failure too."""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from . import charts, claims, diff, floor, hgrm, isolation, loadtools, probes, processes, report, scenarios, slow_clients
from .peers import hook as peer_hook
from . import machine as machine_info
from .guard import guarded
from .models import REGISTRY
from .plan import Plan, make_plan
from .servers import HYBRID_WORKERS, MODELS, Server, settings_for

REPO = Path(__file__).resolve().parents[1]
BINARIES = (*(model.binary for model in REGISTRY), floor.BINARY, "echolab-load", "echolab-probe")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m compare", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, default=REPO / "build" / "bin",
                        help="where the echolab binaries are (default: build/bin)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced matrix: 1 run per figure, short runs, a 1,000-connection hold (<3 min)")
    parser.add_argument("--peers", action="store_true",
                        help="also load Apache httpd (prefork, worker) and nginx, see compare/peers/")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: results/<UTC timestamp>)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="an earlier result directory: diff.md and diff.html of this run against it "
                             "(python3 -m compare diff)")
    return parser.parse_args(argv)


def check_binaries(bin_dir: Path) -> None:
    missing = [name for name in BINARIES if not (bin_dir / name).is_file()]
    if missing:
        sys.exit(f"compare: missing in {bin_dir}: {', '.join(missing)} (build them: "
                 f"cmake --build build --target {' '.join(BINARIES)})")


def preflight(quick: bool):
    """Reads the machine and its limits, raises ulimit -n, and says what will be scaled down."""
    machine = machine_info.inspect_machine()
    wanted = 1_000 if quick else 10_000
    capacity = machine_info.connection_capacity(machine, wanted)
    print(f"compare: {machine.cpu_model}, {machine.cores_usable} cores, {machine.kernel}", flush=True)
    if machine.open_files_soft_before != machine.open_files_soft:
        print(f"compare: raised ulimit -n from {machine.open_files_soft_before:,} to {machine.open_files_soft:,}",
              flush=True)
    ports = machine.ephemeral_ports
    print(f"compare: limits: ulimit -n {machine.open_files_soft:,}, pid_max {machine.pid_max}, "
          f"threads-max {machine.threads_max}, ephemeral ports {f'{ports[0]}-{ports[1]}' if ports else 'unknown'}",
          flush=True)
    if capacity.reasons:
        print(f"compare: SCALED DOWN: the {wanted:,}-connection hold becomes {capacity.connections:,} connections:",
              flush=True)
        for reason in capacity.reasons:
            print(f"compare:   {reason}", flush=True)
    if capacity.connections < 100:
        sys.exit(f"compare: the limits allow only {capacity.connections} connections; raise them (see above)")
    return machine, capacity


def progress_steps(plan: Plan, with_wrk: bool, peer_steps: int) -> int:
    """The progress lines this run will print: the probes and the repeated matrix each
    repetition, the slow-clients experiment once, and the peers' share."""
    per_repetition = sum(scenario.steps(plan, with_wrk) for scenario in scenarios.REPEATED)
    return (probes.steps(plan) + per_repetition * plan.repetitions + slow_clients.steps(plan) + peer_steps
            + isolation.STEPS)


def start_servers(bin_dir: Path, plan, log_dir: Path) -> tuple[dict, dict, Server, dict]:
    """The measured instance of each model, a fault-injection instance of each (blocking and
    crash only), the fork-per-connection prefork (churn only), and the two floors (closed loop
    only), with as many event loops as hybrid."""
    cap = plan.hold_connections
    main = {m: Server(m, m, bin_dir / f"echolab-{m}", settings_for(m, cap), log_dir) for m in MODELS}
    fault = {m: Server(f"{m}-fault-injection", m, bin_dir / f"echolab-{m}",
                       settings_for(m, cap) + ["--fault-injection"], log_dir) for m in MODELS}
    recycling = Server(scenarios.RECYCLING_PREFORK, "prefork", bin_dir / "echolab-prefork",
                       settings_for("prefork", cap) + ["--max-connections-per-child", "1"], log_dir)
    floors = {name: floor.floor_server(name, bin_dir, HYBRID_WORKERS, log_dir) for name in floor.NAMES}
    for server in [*main.values(), *fault.values(), recycling, *floors.values()]:
        server.start()
    return main, fault, recycling, floors


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    processes.install_cleanup()
    bin_dir = args.bin_dir.resolve()
    check_binaries(bin_dir)
    started_utc = datetime.datetime.now(datetime.timezone.utc)
    out_dir = (args.out or REPO / "results" / started_utc.strftime("%Y%m%dT%H%M%SZ")).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Inherited by every process this run starts (prefork children too), so a test or a user
    # can find any that outlived it: grep ECHOLAB_COMPARE_RUN /proc/*/environ.
    os.environ["ECHOLAB_COMPARE_RUN"] = str(out_dir)
    started = time.monotonic()

    machine, capacity = preflight(args.quick)
    plan = make_plan(args.quick, capacity.connections)
    baseline_refusal = diff.refusal_before_run(args.baseline, "quick" if plan.quick else "full", plan.to_json())
    if baseline_refusal:  # before any server starts, not after the run
        print(f"compare: --baseline {args.baseline}: {baseline_refusal}", file=sys.stderr)
        if args.out is None:
            out_dir.rmdir()  # still empty: nothing ran
        return 2
    peers = peer_hook.discover() if args.peers else None
    if peers is not None:
        print(f"compare: peers: {', '.join(peers.names)}{'; ' if peers.names and peers.message else ''}"
              f"{peers.message}", flush=True)
    wrk_script = REPO / "loadgen" / "wrk" / "json_report.lua"
    if not loadtools.wrk_available():
        print("compare: wrk is not installed; the wrk rows are skipped (Debian package wrk)", flush=True)
    elif not wrk_script.exists():
        print(f"compare: {wrk_script} is missing; wrk's latency comes from its --latency summary", flush=True)
        wrk_script = None
    print(f"compare: {'quick' if plan.quick else 'full'} run, {plan.repetitions} run(s) per figure, "
          f"hold of {plan.hold_connections:,} connections; writing {out_dir}", flush=True)

    peer_steps = peer_hook.steps(peers, plan) if peers and peers.available else 0
    try:
        main_servers, fault_servers, recycling, floors = start_servers(bin_dir, plan, out_dir / "logs")
    except RuntimeError as error:  # the servers already started are stopped at exit
        sys.exit(f"compare: {error}")
    bench = scenarios.Bench(plan, bin_dir, out_dir / "raw", out_dir / "logs", wrk_script, main_servers, fault_servers,
                            recycling, progress_steps(plan, bool(loadtools.wrk_available()), peer_steps), floors)
    try:
        measure_everything(bench, peers, bin_dir, out_dir)
    finally:
        started_servers = [*main_servers.values(), *fault_servers.values(), recycling, *floors.values()]
        commands = {s.name: s.command for s in started_servers}
        commands.update(bench.extra_servers)
        exit_statuses = {s.name: s.stop() for s in started_servers}
    for name, status in exit_statuses.items():
        if status not in (0, None):
            bench.failures.append(f"{name} exited with status {status} on SIGTERM (graceful shutdown expected 0)")
    status = conclude(out_dir, bench, machine, capacity, peers, commands, started_utc, time.monotonic() - started)
    if args.baseline is not None:
        status = max(status, diff.against_baseline(args.baseline, out_dir))
    return status


def measure_everything(bench: scenarios.Bench, peers, bin_dir: Path, out_dir: Path) -> None:
    """The probes, the repeated matrix, the slow-clients experiment and the peers. A step that
    raises outside its own measurements is listed among the failures, and the next one runs."""
    plan, failures = bench.plan, bench.failures
    skip = lambda error: None  # noqa: E731 - the failure is listed; nothing stands in for it
    # The probes first, while the machine is as quiet as this run will leave it.
    guarded("probes", lambda: probes.run_probes(bin_dir / "echolab-probe", plan, out_dir / "raw", bench.recorder,
                                                failures, bench.progress), failures, skip)
    for rep in range(plan.repetitions):
        for scenario in scenarios.REPEATED:
            guarded(f"{scenario.run.__name__}, run {rep + 1}", lambda: scenario.run(bench, rep), failures, skip)
        if peers and peers.available:
            guarded(f"peers, run {rep + 1}", lambda: peer_hook.run_peers(bench, peers, rep), failures, skip)
    # Once, not per repetition: its spread comes from the per-second rates of each window.
    guarded("slow clients", lambda: slow_clients.slow_clients(bench, 0), failures, skip)
    # Memory isolation: once, on servers of its own (compare/isolation.py).
    guarded("memory isolation", lambda: isolation.run(bench, 0), failures, skip)
    if peers and peers.available:
        guarded("slow clients, peers", lambda: slow_clients.run_peers(bench, peers), failures, skip)


def conclude(out_dir: Path, bench: scenarios.Bench, machine, capacity, peers, commands: dict[str, list[str]],
             started_utc: datetime.datetime, runtime_s: float) -> int:
    """The claims, the charts, report.md and results.json, written whatever a claim, chart or
    section raises (each is listed among the failures); the exit status: 1 if anything failed."""
    plan, failures = bench.plan, bench.failures
    claim_list = claims.evaluate(bench.recorder, plan.crash_clients, machine.pcid, machine.meltdown,
                                 plan.hold_connections, plan.quick, failures)
    chart_paths = guarded("charts", lambda: charts.draw_all(out_dir, bench.recorder, plan), failures, lambda error: [])
    guarded("hgrm export", lambda: hgrm.export(out_dir / "raw"), failures, lambda error: [])
    results = report.Results(
        started_utc=started_utc.strftime("%Y-%m-%d %H:%M:%S UTC"), quick=plan.quick, runtime_s=runtime_s,
        machine=machine, capacity=capacity, plan=plan, open_loop_rate=bench.open_loop_rate, servers=commands,
        recorder=bench.recorder, claims=claim_list, charts=chart_paths, peers=peers, failures=failures)
    report.write(out_dir, results)
    print()
    print(report.terminal_summary(bench.recorder, plan, claim_list))
    print(f"compare: {runtime_s / 60:.1f} minutes; report: {out_dir / 'report.md'}", flush=True)
    if failures:
        print(f"compare: {len(failures)} failure(s), listed at the end of the report", file=sys.stderr)
        return 1
    return 0
