"""The scenario matrix, run identically against every model: closed-loop throughput (echolab-load
and wrk), an open-loop fixed rate, connection churn, the 10,000-connection ramp-and-hold,
blocking work mixed into the load, and crash containment. Each function records one run of
every model into the Recorder."""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import cpu, floor, keepalive, loadtools, machine, metrics, processes, series
from .figures import Recorder
from .guard import one_line
from .plan import Plan
from .models import BY_NAME
from .servers import HYBRID_WORKERS, LOOPBACK, MODELS, Server, flag_value, with_flag

# A fork-per-connection prefork (every child exits after one connection), run only in the churn
# scenario: it is where process creation cost reaches the client.
RECYCLING_PREFORK = "prefork-recycle"
DISPLAY_NAMES = {RECYCLING_PREFORK: "prefork, 1 conn/child", **{name: floor.display(name) for name in floor.NAMES}}

CONTEXT_SWITCHES = "echolab_context_switches_total"
SPAWN_HISTOGRAM = "echolab_worker_spawn_seconds"
MEMORY_FIGURES = ("rss_mib", "pss_mib", "rss_per_connection_kib", "pss_per_connection_kib")

# The servers whose metrics read their workers' memory within a time budget per scrape
# (common/metrics/proc_stats.hpp: ProcStatsReader::kDefaultMemoryBudget). A worker not read
# within it counts as the mean of those that were; the exposition does not say when that
# happened, so a scrape that lasted the whole budget marks its memory figures as partial.
SAMPLED_MEMORY_MODELS = ("prefork", "hybrid")
SCRAPE_MEMORY_BUDGET_S = 0.25


def memory_partial(model: str, scrape_s: float) -> bool:
    return model in SAMPLED_MEMORY_MODELS and scrape_s >= SCRAPE_MEMORY_BUDGET_S


def display(model: str) -> str:
    return DISPLAY_NAMES.get(model, model)


def _ms(microseconds: float | None) -> str:
    if microseconds is None:
        return "-"
    return f"{microseconds / 1000:.2f} ms" if microseconds >= 1000 else f"{microseconds:.0f} us"


class FailedRun(RuntimeError):
    """A load run that ran but cannot be a figure (loadtools.run_failure says why): recorded
    against its row as failed, listed with its reason, kept out of every median."""


def raw_name(*parts) -> str:
    """The file name (without suffix) of one load run's outputs in the raw/ directory."""
    return "-".join(str(p) for p in parts)


def load_figures(result: dict) -> dict:
    """The figures of one load run, flat: requests_per_second, p50_us ... max_us, errors, and
    the time the load generator itself stalled (it sent nothing then)."""
    latency = result.get("latency_us") or {}
    figures = {"requests_per_second": result.get("requests_per_second"),
               "requests": result.get("requests"),
               "errors": (result.get("errors") or {}).get("total", 0),
               "client_stall_s": sum(stall.get("length_s") or 0 for stall in result.get("stalls") or [])}
    for key in loadtools.PERCENTILE_KEYS:
        figures[f"{key}_us"] = latency.get(key)
    return figures


PRESTART_LIMIT_S = 600.0


@dataclass
class Prestart:
    """The workers a server started before the hold's load, and how long they took."""

    workers: float
    took_s: float


def wait_for_idle_workers(server: Server, wanted: int, deadline: float) -> float:
    """Waits until `wanted` of the server's workers are idle (started and waiting for a
    connection); returns how many are."""
    while True:
        idle = metrics.scrape(server.metrics_url).total("echolab_workers", state="idle") or 0
        if idle >= wanted:
            return idle
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: only {idle:,.0f} of {wanted:,} workers ready after "
                               f"{PRESTART_LIMIT_S:.0f} s; see {server.log_path}")
        time.sleep(0.5)


class Bench:
    """The servers, the tools, the plan and the recorder of one comparison run."""

    def __init__(self, plan: Plan, bin_dir: Path, work_dir: Path, log_dir: Path, wrk_script: Path | None,
                 main: dict[str, Server], fault: dict[str, Server], recycling: Server | None,
                 total_steps: int, floors: dict[str, Server] | None = None):
        self.plan, self.bin_dir, self.work_dir, self.log_dir = plan, bin_dir, work_dir, log_dir
        self.wrk_script = wrk_script
        self.main, self.fault, self.recycling = main, fault, recycling
        self.floors = floors or {}  # compare/floor.py: measured in the closed loop only
        # (connections, repetition) -> the epoll floor's CPU per request in that run, which
        # each model's run at the same level and repetition is divided by.
        self.floor_cpu_us: dict[tuple[int, int], float] = {}
        self.recorder = Recorder()
        self.failures: list[str] = []
        self.open_loop_rate: float | None = None
        self.extra_servers: dict[str, list[str]] = {}  # name -> command of servers started by one scenario
        self.step, self.total_steps = 0, total_steps
        self.load_binary = bin_dir / "echolab-load"
        self.work_dir.mkdir(parents=True, exist_ok=True)

    # -- running and reporting one step -------------------------------------------------------

    def progress(self, rep: int, label: str, model: str, summary: str, seconds: float) -> None:
        self.step += 1
        width = len(str(self.total_steps))
        print(f"[{self.step:>{width}}/{self.total_steps}] run {rep + 1}/{self.plan.repetitions}  "
              f"{label:<30} {display(model):<22} {summary}  ({seconds:.1f} s)", flush=True)

    def attempt(self, rep: int, label: str, model: str, measure) -> None:
        """Runs one measurement; a failure is recorded and reported, and the run goes on."""
        started = time.monotonic()
        try:
            summary = measure()
        except FailedRun as error:
            summary = self.list_failure(f"{label}, {display(model)}, run {rep + 1}: failed run, kept out of the figures",
                                error, str(error))
        except Exception as error:  # noqa: BLE001 - one failed measurement must not lose the others
            summary = self.list_failure(f"{label}, {display(model)}, run {rep + 1}", error, one_line(error))
        self.progress(rep, label, model, summary, time.monotonic() - started)

    def list_failure(self, what: str, error: Exception, reason: str) -> str:
        """Lists a failed measurement by its one-line reason (the whole error, a load tool's log
        tail included, goes to stderr) and returns its progress summary."""
        self.failures.append(f"{what}: {reason}")
        print(f"  {what}: {error}", file=sys.stderr, flush=True)
        return f"FAILED: {reason}"

    def ensure_alive(self, server: Server) -> None:
        """A server that died outside the crash experiment is a finding: restart it, say so."""
        if not server.alive():
            note = f"{server.name} exited unexpectedly (status {server.process.returncode}); restarted"
            self.failures.append(note)
            print(f"  {note}", file=sys.stderr, flush=True)
            server.restart()

    def fresh_server(self, model: str, purpose: str) -> Server:
        """A new instance with the measured instance's settings, for a figure that a warm
        server would distort (memory a previous run left resident)."""
        main = self.main[model]
        return Server(f"{model}-{purpose}", model, main.binary, list(main.flags), self.log_dir).start()

    def run_name(self, *parts) -> str:
        return raw_name(*parts)

    def judged(self, key: tuple[str, tuple, str], result: dict, planned_s: float | None,
               errors_are_findings: bool = False,
               unfinished_tolerance: float = loadtools.UNFINISHED_TOLERANCE) -> dict:
        """`result` when it can be a figure of `key` (scenario, row, model); else the run is
        recorded as failed there and FailedRun raised with the reason."""
        reason = loadtools.run_failure(result, planned_s, errors_are_findings, unfinished_tolerance)
        if reason is not None:
            self.recorder.fail(*key, reason)
            raise FailedRun(reason)
        if columns := series.load_columns(result.get("series")):
            self.recorder.add_series(*key, {"run": result.get("raw_name"), "load": columns})
        return result

    def run_load(self, server: Server, options: list[str], name: str, seconds: float,
                 key: tuple[str, tuple, str] | None = None,
                 unfinished_tolerance: float = loadtools.UNFINISHED_TOLERANCE) -> dict:
        """One echolab-load run of `seconds`; judged as a figure of `key` when given."""
        run = loadtools.echolab_load(self.load_binary, server.target, options, self.work_dir, name,
                                     timeout_s=seconds + 60)
        result = run.result()
        return self.judged(key, result, seconds, unfinished_tolerance=unfinished_tolerance) if key else result

    def hold_server(self, model: str, connections: int) -> tuple[metrics.Scrape, Server, "Prestart | None"]:
        """A fresh instance for the hold (the baseline is then a server that never held a
        connection, not one whose allocator keeps what the throughput runs made resident),
        with the idle scrape its per-connection figures start from.

        A model that starts its workers before the load (models.py, hold_prestart_flags) is
        measured against the idle scrape of a fresh instance at its defaults: the workers it
        starts early for the connections are part of what the connections cost."""
        spec = BY_NAME[model]
        if not spec.hold_prestart_flags:
            server = self.fresh_server(model, "hold")
            return self.wait_idle(server), server, None
        baseline = self.fresh_server(model, "hold-baseline")
        try:
            idle = self.wait_idle(baseline)
        finally:
            baseline.stop()
        main = self.main[model]
        flags = list(main.flags)
        prestart = spec.prestart_flags(connections)
        for name, value in zip(prestart[::2], prestart[1::2]):
            flags = with_flag(flags, name, value)
        began = time.monotonic()
        # Minutes, not seconds: 10,000 forks on a busy machine; the limit only says "hung".
        server = Server(f"{model}-hold", model, main.binary, flags, self.log_dir).start(timeout=PRESTART_LIMIT_S)
        try:
            workers = wait_for_idle_workers(server, connections, began + PRESTART_LIMIT_S)
        except Exception:
            server.stop()
            raise
        return idle, server, Prestart(workers, time.monotonic() - began)

    def wait_idle(self, server: Server, timeout_s: float = 30.0) -> metrics.Scrape:
        """Waits until the server holds no connection (the previous run's are closed), and
        returns that scrape: the baseline of the next measurement."""
        deadline = time.monotonic() + timeout_s
        while True:
            scrape = metrics.scrape(server.metrics_url)
            if (scrape.total("echolab_connections_active") or 0) == 0 or time.monotonic() > deadline:
                return scrape
            time.sleep(0.2)


# -- closed loop ------------------------------------------------------------------------------

def closed_servers(bench: Bench, connections: int) -> list[tuple[str, Server]]:
    """The servers of the closed loop at one level: the floors first (each model's run is
    divided by the epoll floor's of the same repetition), where the plan measures them."""
    floors = list(bench.floors.items()) if connections in bench.plan.floor_concurrency else []
    return floors + [(model, bench.main[model]) for model in MODELS]


def closed_loop(bench: Bench, rep: int) -> None:
    plan = bench.plan
    for connections in plan.concurrency:
        for model, server in closed_servers(bench, connections):
            bench.ensure_alive(server)
            base = ["--connections", str(connections), "--threads", str(plan.load_threads)]
            # Unrecorded: lets prefork fork the children this level needs, as a server in
            # production has them; every model gets the same warm-up.
            bench.attempt(rep, f"warm-up c={connections}", model, lambda: throughput_summary(load_figures(
                bench.run_load(server, base + ["--duration", f"{plan.warmup_s:g}s"],
                               bench.run_name("warmup", connections, model, rep), plan.warmup_s))))

            def measure_echolab_load() -> str:
                key = ("closed_loop", ("echolab-load", connections), model)
                window = cpu.CpuWindow(server.process.pid, plan.duration_s)
                try:
                    result = bench.run_load(server, base + ["--duration", f"{plan.duration_s:g}s"],
                                            bench.run_name("closed", connections, model, rep), plan.duration_s, key)
                finally:
                    cpu_window = window.finish()
                figures = load_figures(result)
                figures.update(cpu_figures(bench, connections, rep, model,
                                           cpu.cpu_us_per_request(cpu_window, figures["requests_per_second"])))
                bench.recorder.add(*key, figures)
                return throughput_summary(figures)

            bench.attempt(rep, f"closed loop c={connections} echolab-load", model, measure_echolab_load)
            if loadtools.wrk_available():
                def measure_wrk() -> str:
                    key = ("closed_loop", ("wrk", connections), model)
                    result = bench.judged(key, loadtools.wrk(server.url, connections, plan.load_threads,
                                                             plan.duration_s, bench.wrk_script, bench.work_dir,
                                                             bench.run_name("wrk", connections, model, rep)).result(),
                                          plan.duration_s)
                    figures = load_figures(result)
                    bench.recorder.add(*key, figures, note=f"wrk latency from {result.get('source')}")
                    return throughput_summary(figures)

                bench.attempt(rep, f"closed loop c={connections} wrk", model, measure_wrk)


def cpu_figures(bench: Bench, connections: int, rep: int, model: str, cpu_us: float | None) -> dict:
    """The server's CPU per request in one echolab-load run, and that as a multiple of the epoll
    floor's in the same repetition at the same level (when both were read)."""
    if model == floor.REFERENCE and cpu_us is not None:
        bench.floor_cpu_us[(connections, rep)] = cpu_us
    floor_cpu_us = bench.floor_cpu_us.get((connections, rep))
    figures = {"cpu_per_request_us": cpu_us}
    if model != floor.REFERENCE and cpu_us is not None and floor_cpu_us:
        figures["cpu_vs_floor_ratio"] = cpu_us / floor_cpu_us
    return figures


def throughput_summary(figures: dict) -> str:
    errors = figures.get("errors") or 0
    return (f"{figures['requests_per_second']:>10,.0f} req/s  p50 {_ms(figures.get('p50_us'))}  "
            f"p99 {_ms(figures.get('p99_us'))}" + (f"  errors {errors:,.0f}" if errors else ""))


def choose_open_loop_rate(bench: Bench) -> float | None:
    """A fixed rate every model can sustain: a share of the slowest model's closed-loop rate at
    the lowest concurrency, rounded to two significant digits."""
    row = ("echolab-load", bench.plan.concurrency[0])
    rates = [bench.recorder.median("closed_loop", row, model, "requests_per_second") for model in MODELS]
    rates = [r for r in rates if r]
    if not rates:
        return None
    rate = min(rates) * bench.plan.open_loop_share
    magnitude = 10 ** max(len(str(int(rate))) - 2, 0)
    return max(float(int(rate // magnitude) * magnitude), 100.0)


def open_loop(bench: Bench, rep: int) -> None:
    plan = bench.plan
    if bench.open_loop_rate is None:
        bench.open_loop_rate = choose_open_loop_rate(bench)
    rate = bench.open_loop_rate
    for model in MODELS:
        server = bench.main[model]
        bench.ensure_alive(server)

        def measure() -> str:
            if rate is None:
                raise RuntimeError("no closed-loop rate was measured to derive the open-loop rate from")
            tolerance = plan.unsent_tolerance
            result = bench.run_load(server, ["--connections", str(plan.open_loop_connections),
                                             "--threads", str(plan.load_threads), "--rate", f"{rate:g}",
                                             "--duration", f"{plan.duration_s:g}s",
                                             "--unsent-tolerance", f"{tolerance * 100:g}"],
                                    bench.run_name("open", model, rep), plan.duration_s, ("open_loop", (rate,), model),
                                    unfinished_tolerance=tolerance)
            figures = load_figures(result)
            bench.recorder.add("open_loop", (rate,), model, figures)
            return throughput_summary(figures)

        bench.attempt(rep, f"open loop {rate or 0:,.0f} req/s", model, measure)


# -- connection churn -------------------------------------------------------------------------

def churn(bench: Bench, rep: int) -> None:
    plan = bench.plan
    targets = [(model, bench.main[model]) for model in MODELS]
    if bench.recycling is not None:
        targets.append((RECYCLING_PREFORK, bench.recycling))
    for model, server in targets:
        bench.ensure_alive(server)

        def measure(model=model, server=server) -> str:
            before = bench.wait_idle(server)
            result = bench.run_load(server, ["--connections", str(plan.churn_connections),
                                             "--threads", str(plan.load_threads),
                                             "--new-connection-per-request",
                                             "--duration", f"{plan.duration_s:g}s"],
                                    bench.run_name("churn", model, rep), plan.duration_s,
                                    ("churn", (plan.churn_connections,), model))
            after = metrics.scrape(server.metrics_url)
            figures = load_figures(result)
            figures["connect_p50_us"] = (result.get("connect_us") or {}).get("p50")
            figures.update(spawn_figures(before, after, result["requests"]))
            bench.recorder.add("churn", (plan.churn_connections,), model, figures)
            return (throughput_summary(figures).replace("req/s", "conn/s") +
                    (f"  spawns {figures['spawns']:,.0f}" if figures["spawns"] is not None else ""))

        bench.attempt(rep, "churn (new connection/request)", model, measure)


def spawn_figures(before: metrics.Scrape, after: metrics.Scrape, connections: int) -> dict:
    """Workers the server created between two scrapes, per connection, and how long each took
    (the server's own fork- or thread-until-ready histogram)."""
    figures = {"spawns": None, "spawns_per_connection": None, "spawn_p50_us": None, "spawn_p99_us": None}
    count = f"{SPAWN_HISTOGRAM}_count"
    if not after.has(count):
        return figures
    spawned = (after.total(count) or 0) - (before.total(count) or 0)
    figures["spawns"] = spawned
    figures["spawns_per_connection"] = spawned / connections if connections else None
    buckets = metrics.bucket_delta(before, after, SPAWN_HISTOGRAM)
    for quantile, key in ((0.5, "spawn_p50_us"), (0.99, "spawn_p99_us")):
        seconds = metrics.histogram_quantile(quantile, buckets)
        figures[key] = seconds * 1e6 if seconds is not None else None
    return figures


# -- the 10,000-connection hold ---------------------------------------------------------------

@dataclass(frozen=True)
class HoldReading:
    """One scrape of a held server, with what was read beside it at the same moment."""
    scrape: metrics.Scrape
    kernel_cpu: machine.KernelCpu
    at: float  # monotonic seconds
    server_cpu_s: float  # the server's own CPU seconds so far


def _scrape_during(run: loadtools.LoadRun, server: Server, window: tuple[float, float],
                   scrapes: int, mm_threads: dict[int, str]) -> list[HoldReading]:
    """Scrapes the server `scrapes` times spread over `window` (monotonic times) while the load
    tool runs."""
    begin, end = window
    step = (end - begin) / max(scrapes - 1, 1)
    due = begin
    readings = []
    while run.process.poll() is None and due <= end:
        if time.monotonic() >= due:
            readings.append(HoldReading(metrics.scrape(server.metrics_url, timeout=20),
                                        machine.kernel_cpu(mm_threads), time.monotonic(),
                                        processes.group_cpu_seconds(server.process.pid)))
            due = max(due + step, time.monotonic())
        time.sleep(0.05)
    return readings


def hold(bench: Bench, rep: int) -> None:
    plan = bench.plan
    for model in MODELS:
        def measure(model=model) -> str:
            idle, server, prestart = bench.hold_server(model, plan.hold_connections)
            try:
                return hold_once(bench, rep, model, server, idle, prestart)
            finally:
                server.stop()

        bench.attempt(rep, f"hold {plan.hold_connections:,} connections", model, measure)


def hold_once(bench: Bench, rep: int, model: str, server: Server, idle: metrics.Scrape,
              prestart: Prestart | None) -> str:
    plan = bench.plan
    mm_threads = machine.mm_thread_pids()
    started = time.monotonic()
    run = loadtools.echolab_load(
        bench.load_binary, server.target,
        ["--connections", str(plan.hold_connections), "--threads", str(plan.load_threads),
         "--ramp", f"{plan.ramp_s:g}s", "--hold", f"{plan.hold_s:g}s", "--interval", f"{plan.interval_s:g}s",
         "--unsent-tolerance", f"{plan.unsent_tolerance * 100:g}"],
        bench.work_dir, bench.run_name("hold", model, rep), timeout_s=plan.ramp_s + plan.hold_s + 90)
    # The hold begins when the ramp ends; leave a moment for the last connects.
    margin = min(1.0, plan.hold_s / 4)
    window = (started + plan.ramp_s + margin, started + plan.ramp_s + plan.hold_s - margin)
    readings = _scrape_during(run, server, window, scrapes=5, mm_threads=mm_threads)
    result = bench.judged(("hold", (plan.hold_connections,), model), run.result(), plan.ramp_s + plan.hold_s,
                          unfinished_tolerance=plan.unsent_tolerance)
    add_server_series(bench, ("hold", (plan.hold_connections,), model), result, readings)
    figures = hold_figures(idle, [reading.scrape for reading in readings], result)
    figures["memory_partial"] = 1 if memory_partial(model, figures["memory_scrape_ms"] / 1000) else 0
    figures.update(ramp_figures(idle, readings[0].scrape if readings else None, plan, prestart))
    if len(readings) >= 2:
        first, last = readings[0], readings[-1]
        figures.update(machine.kernel_cpu_figures(first.kernel_cpu, last.kernel_cpu, last.at - first.at))
    bench.recorder.add("hold", (plan.hold_connections,), model, figures)
    return (f"{figures['connections_held'] or 0:>6,.0f} held  RSS/conn "
            f"{_kib(figures['rss_per_connection_kib'])}  PSS/conn {_kib(figures['pss_per_connection_kib'])}  "
            f"p99 {_ms(figures['hold_p99_us'])}" + (f"  errors {figures['errors']:,.0f}" if figures["errors"] else ""))


def add_server_series(bench: Bench, key: tuple, result: dict, readings: list[HoldReading]) -> None:
    """The hold's scrapes as the server's series, beside the load's series of the same run."""
    runs = bench.recorder.series(*key)
    if not runs or runs[-1]["run"] != result.get("raw_name"):
        return
    wall_minus_monotonic = time.time() - time.monotonic()
    runs[-1]["server"] = series.server_columns(
        [(reading.scrape, reading.at, reading.server_cpu_s) for reading in readings],
        result.get("window_start_unix_s"), wall_minus_monotonic)


def _kib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} KiB"


def hold_figures(idle: metrics.Scrape, samples: list[metrics.Scrape], result: dict) -> dict:
    if len(samples) < 2:
        raise RuntimeError(f"only {len(samples)} scrape(s) during the hold; the load ended early "
                           f"(errors: {result.get('errors')})")
    fullest = max(samples, key=lambda s: s.total("echolab_connections_active") or 0)
    held = fullest.total("echolab_connections_active") or result.get("connections_open_peak") or 0
    figures = {"connections_held": held, "connections_open_peak": result.get("connections_open_peak")}
    for name, key in (("echolab_memory_rss_bytes", "rss"), ("echolab_memory_pss_bytes", "pss")):
        during, before = fullest.total(name), idle.total(name)
        figures[f"{key}_mib"] = during / 2**20 if during is not None else None
        figures[f"{key}_idle_mib"] = before / 2**20 if before is not None else None
        figures[f"{key}_per_connection_kib"] = ((during - before) / held / 1024
                                                if during is not None and before is not None and held else None)
    figures["processes"] = fullest.total("echolab_processes")
    figures["threads"] = fullest.total("echolab_threads")
    figures["context_switches_per_s"] = metrics.counter_rate(samples[0], samples[-1], CONTEXT_SWITCHES)
    figures["scrape_max_ms"] = max(s.took_s for s in samples) * 1000
    figures["memory_scrape_ms"] = fullest.took_s * 1000  # the scrape the memory figures come from
    hold_latency = result.get("hold_latency_us") or {}
    for key in ("p50", "p99", "p99_9", "max"):
        figures[f"hold_{key}_us"] = hold_latency.get(key)
    figures["connect_p99_us"] = (result.get("connect_us") or {}).get("p99")
    # The longest any connection waited for its accept (prefork: for a free child).
    figures["connect_max_us"] = (result.get("connect_us") or {}).get("max")
    figures["hold_requests"] = result.get("hold_requests")
    figures["errors"] = (result.get("errors") or {}).get("total", 0)
    return figures


def ramp_figures(idle: metrics.Scrape, first_of_hold: metrics.Scrape | None, plan,
                 prestart: Prestart | None = None) -> dict:
    """How the server's workers kept up with the ramp: workers it started per second (threads:
    one per connection; the pool: none) between the idle scrape and the first scrape of the
    hold, against connections arriving per second. A server that started its workers before
    the load (prefork) is given the rate at which it started them."""
    figures = {"connections_arriving_per_s": plan.hold_connections / plan.ramp_s if plan.ramp_s else None,
               "workers_started": None, "workers_started_per_s": None,
               "workers_prestarted": prestart.workers if prestart else None}
    if prestart is not None:
        figures["workers_started"] = prestart.workers
        figures["workers_started_per_s"] = prestart.workers / prestart.took_s if prestart.took_s > 0 else None
        return figures
    if first_of_hold is None:
        return figures
    before = idle.total(f"{SPAWN_HISTOGRAM}_count") or 0.0
    after = first_of_hold.total(f"{SPAWN_HISTOGRAM}_count")
    elapsed = first_of_hold.taken_at - idle.taken_at
    if after is not None and elapsed > 0:
        figures["workers_started"] = after - before
        figures["workers_started_per_s"] = (after - before) / elapsed
    return figures


# -- blocking work ----------------------------------------------------------------------------

def blocking(bench: Bench, rep: int) -> None:
    plan = bench.plan
    for model in MODELS:
        server = bench.fault[model]
        bench.ensure_alive(server)

        def measure(model=model, server=server) -> str:
            bench.wait_idle(server)
            # A pause in the answers is what this experiment provokes (every pool thread asleep
            # in a handler, new connections not even accepted meanwhile): a figure, not a failed
            # run. Only a run with no answer at all fails ("no request completed").
            common = ["--threads", str(plan.load_threads), "--duration", f"{plan.duration_s:g}s",
                      "--stall-threshold", f"{plan.duration_s:g}s"]
            sleeper = loadtools.echolab_load(
                bench.load_binary, server.target,
                ["--connections", str(plan.blocking_sleep_connections), "--path",
                 f"/sleep?ms={plan.sleep_ms}", *common], bench.work_dir,
                bench.run_name("blocking-sleep", model, rep), timeout_s=plan.duration_s + 60)
            getter = loadtools.echolab_load(
                bench.load_binary, server.target,
                ["--connections", str(plan.blocking_get_connections), *common], bench.work_dir,
                bench.run_name("blocking-get", model, rep), timeout_s=plan.duration_s + 60)
            time.sleep(plan.duration_s / 2)
            during = metrics.scrape(server.metrics_url)
            key = ("blocking", (plan.blocking_get_connections, plan.blocking_sleep_connections), model)
            get_result, sleep_result = getter.result(), sleeper.result()  # both ended before either is judged
            get_result, sleep_result = (bench.judged(key, r, plan.duration_s) for r in (get_result, sleep_result))
            figures = load_figures(get_result)
            sleep_figures = load_figures(sleep_result)
            figures["sleep_requests_per_second"] = sleep_figures["requests_per_second"]
            figures["sleep_p99_us"] = sleep_figures["p99_us"]
            figures["sleep_errors"] = sleep_figures["errors"]
            figures["errors"] = (figures["errors"] or 0) + (sleep_figures["errors"] or 0)
            figures["workers_busy"] = during.total("echolab_workers", state="busy")
            figures["workers_idle"] = during.total("echolab_workers", state="idle")
            bench.recorder.add(*key, figures)
            return (f"GET {figures['requests_per_second']:>9,.0f} req/s p99 {_ms(figures['p99_us'])}  "
                    f"sleep {figures['sleep_requests_per_second']:,.0f} req/s")

        bench.attempt(rep, f"blocking (/sleep?ms={plan.sleep_ms} mixed)", model, measure)


# -- crash containment ------------------------------------------------------------------------

def crash(bench: Bench, rep: int) -> None:
    plan = bench.plan
    for model in MODELS:
        server = bench.fault[model]
        bench.ensure_alive(server)

        def measure(model=model, server=server) -> str:
            figures = crash_once(bench, server)
            bench.recorder.add("crash", (plan.crash_clients,), model, figures)
            return crash_summary(figures)

        bench.attempt(rep, "crash (one GET /crash)", model, measure)


def crash_once(bench: Bench, server: Server) -> dict:
    """Connects the plan's keep-alive clients, crashes the worker of one more connection with
    a real SIGSEGV, and counts the clients still served afterwards."""
    clients_wanted = bench.plan.crash_clients
    bench.wait_idle(server)
    before = metrics.scrape(server.metrics_url)
    with keepalive.KeepAliveClients(LOOPBACK, server.port, clients_wanted) as clients:
        crashed_at = time.monotonic()
        connection_died = keepalive.send_crash(LOOPBACK, server.port)
        died, served_at = _recover(server, deadline=time.monotonic() + 15)
        survived = clients.still_served()
    after = metrics.scrape(server.metrics_url) if not died else None
    return {
        "clients": clients_wanted,
        "crash_connection_closed": 1 if connection_died else 0,
        "process_died": 1 if died else 0,
        "connections_lost": clients_wanted - survived,
        "connections_survived": survived,
        "time_to_serve_ms": (served_at - crashed_at) * 1000 if served_at else None,
        "workers": int(flag_value(server.flags, "--workers") or 0) or None,
        "crashes_counted": _delta(before, after, "echolab_worker_crashes_total"),
        "lost_counted": _delta(before, after, "echolab_connections_lost_total"),
    }


def crash_summary(figures: dict) -> str:
    clients = figures["clients"]
    if figures["process_died"]:
        return (f"process died, all {clients} connections lost; restarted, serving "
                f"again after {figures['time_to_serve_ms'] or 0:,.0f} ms")
    return (f"process lives, {figures['connections_lost']} of {clients} connections lost; "
            f"serving after {figures['time_to_serve_ms'] or 0:,.1f} ms")


# -- blast radius -----------------------------------------------------------------------------

def blast_radius(bench: Bench, rep: int) -> None:
    """hybrid with 1, 2, 4 worker processes: the throughput each pays (closed loop at the first
    concurrency level) and the connections one crash loses. The other models' rows are their
    closed-loop and crash figures, and so is hybrid's at its default worker count, measured
    already in this repetition."""
    plan = bench.plan
    connections = plan.concurrency[0]
    fault = bench.fault["hybrid"]
    for workers in plan.blast_workers:
        if workers == HYBRID_WORKERS:  # what settings_for() gives every hybrid instance
            crashed = bench.recorder.runs("crash", (plan.crash_clients,), "hybrid")
            served = bench.recorder.runs("closed_loop", ("echolab-load", connections), "hybrid")
            if crashed and served:
                bench.recorder.add("blast_radius", (workers,), "hybrid",
                                   {**crashed[-1], "requests_per_second": served[-1]["requests_per_second"]})
            continue
        flags = with_flag(fault.flags, "--workers", str(workers))

        def measure(workers=workers, flags=flags) -> str:
            with Server(f"hybrid-{workers}-workers", "hybrid", fault.binary, flags, bench.log_dir) as server:
                bench.extra_servers[server.name] = server.command
                result = bench.run_load(server, ["--connections", str(connections), "--threads",
                                                 str(plan.load_threads), "--duration", f"{plan.duration_s:g}s"],
                                        bench.run_name("blast", workers, rep), plan.duration_s,
                                        ("blast_radius", (workers,), "hybrid"))
                figures = {**crash_once(bench, server), "requests_per_second": load_figures(result)["requests_per_second"]}
            bench.recorder.add("blast_radius", (workers,), "hybrid", figures)
            return f"{figures['requests_per_second']:>9,.0f} req/s; " + crash_summary(figures)

        bench.attempt(rep, f"blast radius (--workers {workers})", "hybrid", measure)


def _recover(server: Server, deadline: float) -> tuple[bool, float | None]:
    """Polls until a fresh connection is served again. A server whose process died is
    restarted, as a supervisor (systemd, Kubernetes) would; the time to serve then includes the
    restart. Returns (the process died, when it served again)."""
    died = False
    while time.monotonic() < deadline:
        if not server.alive():
            died = True
            server.restart()
        if keepalive.serves(LOOPBACK, server.port, timeout_s=0.5):
            return died, time.monotonic()
        time.sleep(0.002)
    return died, None


def _delta(before: metrics.Scrape, after: metrics.Scrape | None, name: str) -> float | None:
    if after is None:
        return None
    first, last = before.total(name), after.total(name)
    return None if first is None or last is None else last - first


# -- the repeated matrix ----------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """One scenario of the repeated matrix, and how many progress steps (bench.attempt calls)
    it makes per repetition, given the plan and whether wrk is installed."""

    run: Callable[[Bench, int], None]
    steps: Callable[[Plan, bool], int]


# In the order they run, each repetition; run.py runs this list and counts its progress from it.
REPEATED = (
    Scenario(closed_loop, lambda plan, wrk: (len(plan.concurrency) * len(MODELS) + len(plan.floor_concurrency)
                                             * len(floor.NAMES)) * (3 if wrk else 2)),
    Scenario(open_loop, lambda plan, wrk: len(MODELS)),
    Scenario(hold, lambda plan, wrk: len(MODELS)),
    Scenario(churn, lambda plan, wrk: len(MODELS) + 1),  # and the fork-per-connection prefork
    Scenario(blocking, lambda plan, wrk: len(MODELS)),
    Scenario(crash, lambda plan, wrk: len(MODELS)),
    Scenario(blast_radius, lambda plan, wrk: len([w for w in plan.blast_workers if w != HYBRID_WORKERS])),
)
