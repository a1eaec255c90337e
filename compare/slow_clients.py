"""The slow-clients experiment: S attack connections, more than the server's worker capacity,
beside a few normal keep-alive clients. Each attack (slow headers, never read) is run against a
server configured for it (a stated worker capacity, short timeouts), and the normal clients are
measured in three windows: before the attack, during it and after it stops. The full run adds
each model with its defence effectively off (timeouts of minutes), to show what it buys."""

import time

from . import keepalive, loadtools, metrics
from .figures import Difference, difference
from .peers import servers as peer_servers
from .servers import LOOPBACK, MODELS, Server

ATTACKS = ("slow_headers", "never_read")
ATTACK_NAMES = {"slow_headers": "slow headers", "never_read": "never read"}
DEFENDED, UNDEFENDED = "defended", "undefended"
WINDOWS = ("before", "during", "after")
TIMEOUT_KINDS = ("header", "send", "body", "idle")
TIMED_OUT = "echolab_connections_timed_out_total"
UNDEFENDED_TIMEOUT = "10m"   # longer than the experiment: the defence is effectively off
NEVER_READ_PAYLOAD = 65_536  # each request's echoed answer fills the socket buffers in a few requests
SETTLE_S = 0.3               # for the attack's connections to open before the "during" window


def server_flags(model: str, plan, defended: bool) -> list[str]:
    """The server's settings for this experiment: the worker capacity the attack exceeds, and
    the timeouts (short, or minutes long when the defence is off)."""
    timeout = f"{plan.slow_timeout_s:g}s" if defended else UNDEFENDED_TIMEOUT
    flags = ["--max-connections", str(4 * (plan.slow_attackers + plan.slow_normal_connections)),
             "--idle-timeout", "30s", "--header-timeout", timeout, "--send-timeout", timeout]
    # prefork starts its whole capacity and keeps half of it spare (at the full run's 64, its
    # defaults), so that a smaller capacity (the quick run's) is a valid configuration too.
    capacity = {"prefork": ["--max-workers", str(plan.slow_capacity), "--start-servers", str(plan.slow_capacity),
                            "--min-spare", str(plan.slow_capacity // 2)],
                "threads": ["--max-threads", str(plan.slow_capacity)],
                "pool": ["--threads", str(plan.slow_pool_threads)],
                "hybrid": ["--workers", str(plan.slow_pool_threads)]}
    return flags + capacity[model]


def capacity_text(model: str, plan) -> str:
    return {"prefork": f"{plan.slow_capacity} processes", "threads": f"{plan.slow_capacity} threads",
            "pool": f"{plan.slow_pool_threads} threads",
            "hybrid": f"{plan.slow_pool_threads} worker processes"}.get(model, "")


def attack_options(attack: str, plan, connections: int, seconds: float, path: str) -> list[str]:
    common = ["--connections", str(connections), "--threads", "1", "--duration", f"{seconds:g}s", "--path", path]
    if attack == "slow_headers":
        return common + ["--slow-headers", f"{plan.slow_header_interval_s:g}s"]
    return common + ["--never-read", "--method", "POST", "--payload", str(NEVER_READ_PAYLOAD)]


def window_figures(result: dict, seconds: list[dict]) -> dict:
    """A normal-client window: its rate, errors, p99, and the rate of each whole second."""
    latency = result.get("latency_us") or {}
    return {"rps": result.get("requests_per_second"),
            "errors": (result.get("errors") or {}).get("total", 0),
            "p99_us": latency.get("p99") if result.get("requests") else None,
            "per_second": [s["requests"] for s in seconds]}


def _seconds(window: dict) -> list[float]:
    return window["per_second"] or [window["rps"] or 0]


def rate_change(before: dict, window: dict, quiet: list[dict] | None = None) -> dict:
    """The window's rate minus the before window's, with a noise band; a change inside it is
    noise. Between two quiet windows (before and after) the band is the extremes of one's
    per-second rates minus the other's. During an attack (`quiet`: the windows without one
    around it) the window's own seconds are not noise: a server whose workers the attack holds
    serves nothing for seconds, then bursts when a timeout frees them, and those extremes hid a
    fall from 44,649 to 13,284 req/s (threads, a full run). The window's rate is then set against
    the per-second rates of the quiet windows, which show how far the rate moves without one."""
    median = (window["rps"] or 0) - (before["rps"] or 0)
    if quiet:
        reference = [rate for calm in quiet for rate in _seconds(calm)]
        low, high = (window["rps"] or 0) - max(reference), (window["rps"] or 0) - min(reference)
    else:
        low, high = min(_seconds(window)) - max(_seconds(before)), max(_seconds(window)) - min(_seconds(before))
    return {"median": median, "low": min(low, median), "high": max(high, median)}


def rps_text(value: float) -> str:
    return f"{value:,.0f} req/s"


def rate_difference(figures: dict, window: str) -> Difference | None:
    """The window's change of the normal clients' rate, with its per-second noise band."""
    return difference(figures.get(f"{window}_change_rps"), figures.get(f"{window}_change_rps_low"),
                      figures.get(f"{window}_change_rps_high"), rps_text)


def change_text(figures: dict, window: str) -> str:
    """"-1,234 req/s (...)" or "no difference within ±X req/s", from the recorded figures."""
    gap = rate_difference(figures, window)
    return gap.text if gap else "-"


def attack_figures(result: dict) -> dict:
    attack = result.get("attack") or {}
    held = attack.get("held_ms") or {}
    if not held.get("count"):  # the server ended none of them before the attack did
        held = {}
    statuses = attack.get("statuses") or {}
    return {"attack_connects": attack.get("connects"), "attack_closed_by_server": attack.get("closed_by_server"),
            "attack_still_open": attack.get("still_open_at_end"), "attack_held_p50_ms": held.get("p50"),
            "attack_held_max_ms": held.get("max"), "attack_408": statuses.get("408", 0),
            "attack_bytes_sent": attack.get("bytes_sent")}


def server_figures(base: metrics.Scrape, during: metrics.Scrape, end: metrics.Scrape) -> dict:
    """Workers and memory during the attack; timeouts, 408s and rejections over the experiment."""
    delta = lambda name, **labels: ((end.total(name, **labels) or 0) - (base.total(name, **labels) or 0)
                                    if end.has(name) else None)
    mib = lambda scrape, name: scrape.total(name) / 2**20 if scrape.total(name) is not None else None
    figures = {f"timed_out_{kind}": delta(TIMED_OUT, kind=kind) for kind in TIMEOUT_KINDS}
    figures.update({
        "answered_408": delta("echolab_request_errors_total", status="408"),
        "rejected": delta("echolab_connections_rejected_total"),
        "workers_busy": during.total("echolab_workers", state="busy"),
        "workers_idle": during.total("echolab_workers", state="idle"),
        "connections_active": during.total("echolab_connections_active"),
        "processes": during.total("echolab_processes"), "threads": during.total("echolab_threads"),
        "rss_mib": mib(during, "echolab_memory_rss_bytes"), "pss_mib": mib(during, "echolab_memory_pss_bytes"),
    })
    base_rss = mib(base, "echolab_memory_rss_bytes")
    figures["rss_added_mib"] = figures["rss_mib"] - base_rss if figures["rss_mib"] is not None and base_rss else None
    return figures


def time_to_normal(port: int, path: str, normal_s: float, limit_s: float) -> float | None:
    """Seconds from now until a fresh connection is answered within `normal_s` (the before
    window's p99, with a floor); None if that did not happen within `limit_s`."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < limit_s:
        took = keepalive.answer_time(LOOPBACK, port, path, timeout_s=max(limit_s - elapsed, 0.05))
        if took is not None and took <= normal_s:
            return time.monotonic() - started
        time.sleep(0.01)
    return None


class Target:
    """What an experiment loads: an echolab server (with /metrics) or a peer (without)."""

    def __init__(self, name: str, port: int, path: str, metrics_url: str | None):
        self.name, self.port, self.path, self.metrics_url = name, port, path, metrics_url

    def scrape(self) -> metrics.Scrape | None:
        return metrics.scrape(self.metrics_url, timeout=20) if self.metrics_url else None


def normal_window(bench, target: Target, seconds: float, name: str):
    """Starts the normal clients for one window: a closed loop of keep-alive GETs."""
    plan = bench.plan
    return loadtools.echolab_load(bench.load_binary, f"{LOOPBACK}:{target.port}",
                                  ["--connections", str(plan.slow_normal_connections), "--threads", "1",
                                   "--duration", f"{seconds:g}s", "--timeout", f"{plan.slow_client_timeout_s:g}s",
                                   "--path", target.path],
                                  bench.work_dir, name, timeout_s=seconds + 60, progress=True)


def finish_window(bench, run, key: tuple[str, tuple, str], planned_s: float) -> dict:
    """A window's figures. Its errors, and a window in which no request completed, are what
    the experiment measures (a starved server), not a failed run."""
    result = bench.judged(key, run.result(), planned_s, errors_are_findings=True)
    return window_figures(result, loadtools.per_second(run.log_path.read_text(errors="replace")))


def experiment(bench, target: Target, attack: str, attackers: int, before: dict, label: str,
               key: tuple[str, tuple, str]) -> tuple[dict, dict]:
    """One attack against `target`, after the quiet window `before` (already measured).
    Returns the figures, and the after window (the quiet window that precedes the next attack).
    The attack's own run is not judged: its requests are unfinished by design."""
    plan = bench.plan
    base = target.scrape()
    attack_run = loadtools.echolab_load(bench.load_binary, f"{LOOPBACK}:{target.port}",
                                        attack_options(attack, plan, attackers,
                                                       SETTLE_S + plan.slow_attack_window_s + 0.2, target.path),
                                        bench.work_dir, f"{label}-attack", timeout_s=plan.slow_attack_window_s + 60)
    time.sleep(SETTLE_S)
    during_run = normal_window(bench, target, plan.slow_attack_window_s, f"{label}-during")
    time.sleep(plan.slow_attack_window_s / 2)
    during_scrape = target.scrape()
    during = finish_window(bench, during_run, key, plan.slow_attack_window_s)
    attack_result = attack_run.result()
    normal_s = max(5 * (before["p99_us"] or 0) / 1e6, 0.02)
    recovery = time_to_normal(target.port, target.path, normal_s, limit_s=plan.slow_recovery_limit_s)
    after = finish_window(bench, normal_window(bench, target, plan.slow_window_s, f"{label}-after"), key,
                          plan.slow_window_s)
    figures = {"attackers": attackers, "normal_clients": plan.slow_normal_connections,
               "normal_latency_ms": normal_s * 1000,
               "time_to_normal_ms": recovery * 1000 if recovery is not None else None}
    for window, values in (("before", before), ("during", during), ("after", after)):
        figures.update({f"{window}_{key}": value for key, value in values.items() if key != "per_second"})
    for window, values, quiet in (("during", during, [before, after]), ("after", after, None)):
        change = rate_change(before, values, quiet)
        figures.update({f"{window}_change_rps": change["median"], f"{window}_change_rps_low": change["low"],
                        f"{window}_change_rps_high": change["high"]})
    figures.update(attack_figures(attack_result))
    if base is not None:
        figures.update(server_figures(base, during_scrape, target.scrape()))
    return figures, after


def summary(figures: dict) -> str:
    normal = lambda w: f"{figures[f'{w}_rps'] or 0:,.0f}"
    text = (f"normal req/s {normal('before')} / {normal('during')} / {normal('after')}  "
            f"errors during {figures['during_errors']:,.0f}")
    if figures.get("timed_out_header") is not None:
        text += f"  timeouts header {figures['timed_out_header']:,.0f} send {figures['timed_out_send']:,.0f}"
    return text + (f"  normal again after {figures['time_to_normal_ms']:,.0f} ms"
                   if figures["time_to_normal_ms"] is not None else "  not normal again")


def run_against(bench, target: Target, model: str, defence: str, attackers: int, rep: int) -> None:
    """Both attacks in turn against one running target; each attack's before window is the
    quiet window that precedes it (for the second attack, the first one's after window)."""
    before = None
    for attack in ATTACKS:
        label = bench.run_name("slow", attack, defence, model, rep)

        def measure(attack=attack, label=label) -> str:
            nonlocal before
            key = ("slow_clients", (attack, defence), model)
            if before is None:
                before = finish_window(bench, normal_window(bench, target, bench.plan.slow_window_s, f"{label}-before"),
                                       key, bench.plan.slow_window_s)
            figures, before = experiment(bench, target, attack, attackers, before, label, key)
            bench.recorder.add(*key, figures)
            return summary(figures)

        bench.attempt(rep, f"slow clients: {ATTACK_NAMES[attack]}, {defence}", model, measure)


def slow_clients(bench, rep: int) -> None:
    plan = bench.plan
    defences = [DEFENDED] + ([UNDEFENDED] if plan.slow_undefended else [])
    for defence in defences:
        for model in MODELS:
            main = bench.main[model]
            server = Server(f"{model}-slow-{defence}", model, main.binary,
                            server_flags(model, plan, defence == DEFENDED), bench.log_dir)
            try:
                server.start()
                bench.extra_servers[server.name] = server.command
            except RuntimeError as error:
                bench.failures.append(f"slow clients: {error}")
                continue
            try:
                run_against(bench, Target(model, server.port, "/", server.metrics_url), model, defence,
                            plan.slow_attackers, rep)
            finally:
                status = server.stop()
                if status not in (0, None):
                    bench.failures.append(f"{server.name} exited with status {status} on SIGTERM")


def steps(plan) -> int:
    return len(ATTACKS) * len(MODELS) * (2 if plan.slow_undefended else 1)


def run_peers(bench, peers) -> None:
    """The same attacks against Apache (prefork, worker) and nginx configured as Debian ships
    them (mod_reqtimeout as shipped), with S = 2x Apache's MaxRequestWorkers."""
    for name in peers.names:
        peer = peer_servers.Peer(name, defaults="debian")
        try:
            peer.start()
        except Exception as error:  # noqa: BLE001 - the peer's own start-up problem, reported
            bench.failures.append(f"slow clients: peer {name} did not start: {error}")
            continue
        try:
            run_against(bench, Target(name, peer.port, "/hello", None), name, DEFENDED,
                        bench.plan.slow_peer_attackers, 0)
        finally:
            peer.stop()
