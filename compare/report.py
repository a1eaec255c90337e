"""report.md and results.json: every scenario's table, the 10,000-connection table, the raw
probe figures and the Claims table, each figure a median with its spread (min-max); and
report.html (compare/html_report.py) from results.json's content."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from . import floor, html_report
from .cells import cell, duration_us, ns_per_page
from .claims import Claim
from . import isolation
from .figures import Recorder, ratio_figure
from .guard import guarded, one_line
from .machine import Capacity, Machine
from .models import BY_NAME
from .peers.hook import Peers
from .plan import Plan
from .probes import COMMUNICATION_PAIRS, COMMUNICATION_PLACEMENTS, descriptor_levels, rmap_counts
from .scenarios import MEMORY_FIGURES, MODELS, RECYCLING_PREFORK, SCRAPE_MEMORY_BUDGET_S, display
from .slow_clients import ATTACK_NAMES, SETTLE_S, capacity_text, change_text

# The layout of results.json; python3 -m compare diff reads only its own. Raise it when a
# figure's meaning or a key changes.
RESULTS_FORMAT = 1

SECTIONS = ("Machine and limits", "Throughput and latency", "Open loop", "Connection churn",
            "10,000 connections", "Blocking work", "Crash containment", "Slow clients", "Raw costs",
            "Claims", "Charts")




def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- sections ---------------------------------------------------------------------------------

def capacity_table(capacity: Capacity) -> str:
    """What each model alone could hold here, from its per-connection costs, and why."""
    rows = []
    for name, allowed in capacity.per_model.items():
        model = BY_NAME[name]
        costs = [f"{model.descriptors_per_connection} descriptor{'s' if model.descriptors_per_connection > 1 else ''} in one process"
                 if model.descriptors_per_connection
                 else "a descriptor in a process of its own",
                 f"{model.tasks_per_connection} {'process' if model.kind == 'processes' else 'thread'}"
                 if model.tasks_per_connection else "no task",
                 f"at most {model.memory_bound_bytes >> 10} KiB"]
        rows.append([name, ", ".join(costs), f"{allowed.connections:,}", allowed.binding_limit])
    return ("Connections each model could hold here (echolab-load's own descriptor and port per "
            "connection included); every model holds the same number, the smallest:\n\n"
            + table(["model", "costs per connection", "could hold", "limit that binds"], rows))


def machine_section(machine: Machine, capacity: Capacity, plan: Plan, servers: dict[str, list[str]]) -> str:
    ports = machine.ephemeral_ports
    rows = [
        ["CPU", f"{machine.cpu_model}" + (f", {machine.cpu_mhz:.0f} MHz" if machine.cpu_mhz else "")],
        ["cores", f"{machine.cores_usable} usable of {machine.cores_online}"],
        ["kernel", machine.kernel],
        ["memory", f"{(machine.memory_total_bytes or 0) / 2**30:.1f} GiB, "
                   f"{(machine.memory_available_bytes or 0) / 2**30:.1f} GiB available"],
        ["PCID / INVPCID", f"{'yes' if machine.pcid else 'no'} / {'yes' if machine.invpcid else 'no'}"],
        ["Meltdown mitigation", machine.meltdown or "unknown"],
        ["ulimit -n", f"{machine.open_files_soft:,} (soft was {machine.open_files_soft_before:,}; "
                      f"hard {machine.open_files_hard:,})"],
        ["kernel.pid_max / threads-max", f"{machine.pid_max or 0:,} / {machine.threads_max or 0:,}"],
        ["tasks already running", f"{machine.tasks_running:,}"],
        ["ephemeral ports", f"{ports[0]}-{ports[1]}" if ports else "unknown"],
        ["net.core.somaxconn / tcp_tw_reuse", f"{machine.somaxconn} / {machine.tcp_tw_reuse}"],
        ["DAMON (kdamond)", machine.damon],
    ]
    text = "## Machine and limits\n\n" + table(["", "this machine"], rows) + "\n\n"
    text += capacity_table(capacity) + "\n\n"
    if capacity.reasons:
        text += (f"**Scaled down:** the {plan.hold_wanted:,}-connection hold becomes "
                 f"{plan.hold_connections:,} connections, because:\n\n")
        text += "\n".join(f"- {reason}" for reason in capacity.reasons) + "\n\n"
        if plan.concurrency[-1] < 1000:
            text += f"- closed-loop levels: {', '.join(str(c) for c in plan.concurrency)} connections\n\n"
    else:
        text += f"Nothing was scaled down: the limits allow the {plan.hold_wanted:,}-connection hold.\n\n"
    text += ("Servers (one instance per model, the same settings; a second instance with "
             "`--fault-injection` serves the blocking and crash experiments only):\n\n")
    text += "\n".join(f"- {name}: `{' '.join([Path(command[0]).name, *command[1:]])}`"
                      for name, command in servers.items()) + "\n\n"
    text += (f"Plan: {plan.repetitions} run(s) of each figure, n={plan.repetitions} (the median is shown, the "
             "spread min-max in brackets; a figure that rests on fewer runs, because a run failed or lacked it, "
             "says so: \"[2 of 3 runs]\"; failed runs are listed under Failures with their reason); "
             f"{plan.duration_s:g} s per load run after a {plan.warmup_s:g} s warm-up; "
             f"echolab-load and wrk with {plan.load_threads} threads each, on the same cores as the server.\n")
    return text


def closed_loop_section(recorder: Recorder) -> str:
    rows = []
    for row in recorder.rows("closed_loop"):
        tool, connections = row
        for model in recorder.models("closed_loop", row):
            fig = lambda name: recorder.figure("closed_loop", row, model, name)
            rows.append([tool, f"{connections:,}", display(model), cell(fig("requests_per_second")),
                         cell(fig("p50_us"), "us"), cell(fig("p99_us"), "us"), cell(fig("p99_9_us"), "us"),
                         cell(fig("errors")), cell(fig("cpu_per_request_us"), "us")])
    return ("## Throughput and latency (closed loop, HTTP keep-alive GET)\n\n"
            "Each connection sends its next request when the previous answer arrives. The floor rows "
            "are echolab-floor, a responder that only counts request ends and sends fixed bytes: the "
            "least a keep-alive responder can do here, not a model (no verdict, no memory figure). "
            "Server CPU per request is the scheduler's count for the server's processes over the "
            "run from 10 % of it until a fifth of it (a second, or a quarter of a short run, at least) before its end, per request served meanwhile (echolab-load runs only).\n\n" +
            table(["tool", "connections", "model", "requests/s", "p50", "p99", "p99.9", "errors",
                   "server CPU per request"], rows) + "\n\n" + floor_multiples_section(recorder))


def floor_multiples_section(recorder: Recorder) -> str:
    levels = [connections for tool, connections in recorder.rows("closed_loop") if tool == "echolab-load"]
    rows = floor.multiples_rows(levels, lambda connections, server, name: recorder.figure(
        "closed_loop", ("echolab-load", connections), server, name))
    if not rows:
        return ""
    return (f"### {floor.MULTIPLES_TITLE}\n\n"
            "Each echolab-load run's server CPU per request divided by the epoll floor's in the same "
            "repetition at the same connection count; the median of the runs, their spread in "
            "brackets. Where the runs' spread reaches 1x they cannot tell the server from the floor: "
            "\"no difference within ±X %\".\n\n" + table(floor.MULTIPLES_HEADER, rows) + "\n")


def open_loop_section(recorder: Recorder, plan: Plan) -> str:
    rows = []
    rate = None
    for row in recorder.rows("open_loop"):
        rate = row[0]
        for model in recorder.models("open_loop", row):
            fig = lambda name: recorder.figure("open_loop", row, model, name)
            rows.append([model, f"{rate:,.0f}", cell(fig("requests_per_second")), cell(fig("p50_us"), "us"),
                         cell(fig("p99_us"), "us"), cell(fig("p99_9_us"), "us"), cell(fig("errors"))])
    share = "half" if plan.open_loop_share == 0.5 else f"{plan.open_loop_share:.0%} of"
    intro = (f"A fixed schedule of requests, the same for every model ({share} the slowest model's "
             "closed-loop rate), with latency counted from each request's intended send time, so "
             "a stall shows in the percentiles instead of pausing the load (no coordinated omission). "
             f"A run that leaves more than {plan.unsent_tolerance:.0%} of its requests due unsent "
             "is a failed run.\n\n")
    if not rows:
        return "## Open loop\n\n" + intro + "Not measured.\n"
    return (f"## Open loop ({rate:,.0f} requests/s)\n\n" + intro +
            table(["model", "scheduled/s", "achieved/s", "p50", "p99", "p99.9", "errors"], rows) + "\n")


def churn_section(recorder: Recorder) -> str:
    rows = []
    for row in recorder.rows("churn"):
        for model in recorder.models("churn", row):
            fig = lambda name: recorder.figure("churn", row, model, name)
            rows.append([display(model), cell(fig("requests_per_second")), cell(fig("p50_us"), "us"),
                         cell(fig("p99_us"), "us"), cell(fig("connect_p50_us"), "us"),
                         cell(fig("spawns_per_connection"), decimals=2), cell(fig("spawn_p50_us"), "us"),
                         cell(fig("errors"))])
    connections = recorder.rows("churn")[0][0] if recorder.rows("churn") else 0
    return ("## Connection churn (a new connection per request)\n\n"
            f"{connections} clients, each connecting, sending one GET and closing, as fast as the server "
            "allows. threads creates a thread per connection; prefork hands it to a child forked "
            f"in advance; `{display(RECYCLING_PREFORK)}` is prefork with `--max-connections-per-child 1`, "
            "a fork per connection, where process creation reaches the client. Spawn p50 is the "
            "server's own `echolab_worker_spawn_seconds` (fork or thread creation until the worker is ready).\n\n" +
            table(["model", "connections/s", "p50", "p99", "connect p50", "spawns/connection",
                   "spawn p50 (server)", "errors"], rows) + "\n")


def prestart_note(plan: Plan) -> str:
    flags = " ".join(f"`{flag}`" for flag in BY_NAME["prefork"].prestart_flags(plan.hold_connections))
    return flags or "no flags"


def hold_section(recorder: Recorder, plan: Plan) -> str:
    rows_spec = [("connections held", "connections_held", "number", 0),
                 ("processes", "processes", "number", 0), ("threads", "threads", "number", 0),
                 ("RSS idle", "rss_idle_mib", "mib", 1), ("RSS held", "rss_mib", "mib", 1),
                 ("PSS idle", "pss_idle_mib", "mib", 1), ("PSS held", "pss_mib", "mib", 1),
                 ("**RSS per connection**", "rss_per_connection_kib", "kib", 1),
                 ("**PSS per connection**", "pss_per_connection_kib", "kib", 1),
                 ("context switches/s", "context_switches_per_s", "number", 0),
                 ("latency p50 during the hold", "hold_p50_us", "us", 0),
                 ("latency p99 during the hold", "hold_p99_us", "us", 0),
                 ("latency p99.9 during the hold", "hold_p99_9_us", "us", 0),
                 ("connect p99 (ramp)", "connect_p99_us", "us", 0),
                 ("connect max (ramp): longest wait for an accept", "connect_max_us", "us", 0),
                 ("connections arriving/s (ramp)", "connections_arriving_per_s", "number", 0),
                 ("workers started/s (ramp to hold)", "workers_started_per_s", "number", 0),
                 ("slowest /metrics scrape", "scrape_max_ms", "ms", 0),
                 ("memory figures' /metrics scrape", "memory_scrape_ms", "ms", 0),
                 ("kernel mm threads CPU (% of one CPU)", "mm_threads_cpu_percent", "percent1", 1),
                 ("of which kdamond", "kdamond_cpu_percent", "percent1", 1),
                 ("machine CPU: user", "machine_user_percent", "percent", 0),
                 ("machine CPU: system", "machine_system_percent", "percent", 0),
                 ("errors", "errors", "number", 0)]
    held_rows = recorder.rows("hold")
    title = "## 10,000 connections\n\n"
    intro = (f"echolab-load opens {plan.hold_connections:,} connections over {plan.ramp_s:g} s, then holds "
             f"them {plan.hold_s:g} s, each sending one GET every {plan.interval_s:g} s; the server's "
             "/metrics are scraped during the hold. Each hold runs against a fresh instance (same settings), so "
             "the idle figure is a server that never held a connection. Per-connection memory is (held - idle) / connections. "
             "PSS shares each page among the processes mapping it, so it is the honest sum for forked children. "
             "Kernel mm threads are kdamond, kswapd, kcompactd and khugepaged, whose page checks walk every "
             "address space that maps a page; their CPU and the machine's user/system split are read at the "
             "first and last scrape of the hold. Workers started/s counts `echolab_worker_spawn_seconds` "
             "from the idle scrape to the first scrape of the hold: one thread per connection for threads, "
             "none for the pool and hybrid. prefork forks its children before the load "
             f"({prestart_note(plan)}), as Apache is sized for a known peak: forking on demand cannot "
             "follow the ramp on a machine where a fork costs about a millisecond and the forking "
             "process shares the CPU with the children it forked (docs/compare.md, \"The hold\"); its "
             "idle figure is a fresh instance at its defaults, so the children count in its cost per "
             "connection, and its workers started/s is the rate at which it forked them.\n\n")
    if plan.hold_connections < plan.hold_wanted:
        intro += (f"**Held {plan.hold_connections:,} connections, not {plan.hold_wanted:,}**"
                  f"{' (quick run)' if plan.quick else ' (limits: see above)'}.\n\n")
    if not held_rows:
        return title + intro + "Not measured.\n"
    row = held_rows[0]
    body = []
    for label, name, kind, decimals in rows_spec:
        body.append([label] + [cell(recorder.figure("hold", row, m, name), kind, decimals) +
                               (partial_mark(recorder.figure("hold", row, m, "memory_partial"))
                                if name in MEMORY_FIGURES else "") for m in MODELS])
    partial = any(partial_mark(recorder.figure("hold", row, m, "memory_partial")) for m in MODELS)
    note = (f"\n*partial*: the scrape the memory figures come from lasted the server's whole "
            f"{SCRAPE_MEMORY_BUDGET_S * 1000:.0f} ms budget for reading its workers' memory; workers it did "
            "not read within it count as the mean of those it read (prefork's children are forks of one "
            "master doing one job), so the figure is an estimate. The exposition does not say how many were "
            "read: the scrape's duration is the sign.\n" if partial else "")
    return title + intro + table(["", *MODELS], body) + "\n" + note


def partial_mark(partial: dict | None) -> str:
    """" (partial)" when every run's memory scrape hit the budget, " (partial in 1 of 3 runs)"
    when some did, "" when none did."""
    if not partial:
        return ""
    hits = sum(1 for value in partial["runs"] if value)
    if hits == 0:
        return ""
    return " (partial)" if hits == len(partial["runs"]) else f" (partial in {hits} of {len(partial['runs'])} runs)"


def blocking_section(recorder: Recorder, plan: Plan) -> str:
    rows = []
    base_row = ("echolab-load", plan.concurrency[0])
    ideal = plan.blocking_sleep_connections * 1000 / plan.sleep_ms
    for row in recorder.rows("blocking"):
        for model in recorder.models("blocking", row):
            fig = lambda name: recorder.figure("blocking", row, model, name)
            share = ratio_figure(fig("requests_per_second"),
                                  recorder.figure("closed_loop", base_row, model, "requests_per_second"), 100)
            rows.append([model, cell(fig("requests_per_second")), cell(share, "percent"),
                         cell(fig("p50_us"), "us"), cell(fig("p99_us"), "us"),
                         cell(fig("sleep_requests_per_second")), cell(fig("workers_busy")), cell(fig("errors"))])
    return ("## Blocking work (/sleep mixed into the load)\n\n"
            f"{plan.blocking_get_connections} connections of GET / alongside {plan.blocking_sleep_connections} "
            f"connections of `GET /sleep?ms={plan.sleep_ms}` (a worker blocked as by a slow database call; "
            f"at most {ideal:,.0f} sleeps/s if nothing else limits them). A thread or process per connection "
            "blocks only its own connection; the pool's N threads are shared, so N sleeps stall every "
            "connection. \"vs unblocked\" compares GET throughput with the closed loop at "
            f"{plan.concurrency[0]} connections.\n\n" +
            table(["model", "GET/s", "vs unblocked", "GET p50", "GET p99", "sleeps/s", "workers busy",
                   "errors"], rows) + "\n")


def crash_section(recorder: Recorder, plan: Plan) -> str:
    rows = []
    for row in recorder.rows("crash"):
        for model in recorder.models("crash", row):
            fig = lambda name: recorder.figure("crash", row, model, name)
            died = fig("process_died")
            outcome = "-" if died is None else (
                f"process died, all {plan.crash_clients} connections lost" if died["median"] >= 0.5 and
                (fig("connections_lost") or {}).get("median") == plan.crash_clients else
                "process died" if died["median"] >= 0.5 else "process lives")
            rows.append([model, outcome, cell(fig("connections_lost")), cell(fig("time_to_serve_ms"), "ms", 1),
                         cell(fig("crashes_counted")), cell(fig("lost_counted"))])
    return ("## Crash containment\n\n"
            f"{plan.crash_clients} keep-alive clients connected and served once; then one `GET /crash` "
            "(a real SIGSEGV in the worker). Lost = clients that get no answer afterwards (the crashing "
            "connection itself is not among them). A server whose process died is restarted by the "
            "runner, as a supervisor would; its time to serve includes that restart.\n\n" +
            table(["model", "outcome", "connections lost", "serving again after", "crashes counted",
                   "lost counted (metrics)"], rows) + "\n")


def blast_radius_section(recorder: Recorder, plan: Plan) -> str:
    """What one crash costs against what the isolation costs: hybrid with 1, 2 and 4 worker
    processes beside the other models' crash and closed-loop figures."""
    if not recorder.rows("blast_radius"):
        return ""
    connections = plan.concurrency[0]
    rows = []
    for (workers,) in recorder.rows("blast_radius"):
        fig = lambda name: recorder.figure("blast_radius", (workers,), "hybrid", name)
        rows.append([f"hybrid, --workers {workers}", cell(fig("requests_per_second")),
                     cell(fig("connections_lost")), cell(fig("time_to_serve_ms"), "ms", 1)])
    for model in MODELS:
        if model == "hybrid":
            continue
        crash = lambda name: recorder.figure("crash", (plan.crash_clients,), model, name)
        rate = recorder.figure("closed_loop", ("echolab-load", connections), model, "requests_per_second")
        rows.append([model, cell(rate), cell(crash("connections_lost")), cell(crash("time_to_serve_ms"), "ms", 1)])
    return ("## Blast radius: what one crash loses, and what isolation costs\n\n"
            f"hybrid's worker processes each hold the connections the kernel gave them: one crash "
            f"loses that worker's share, about 1/N of the {plan.crash_clients} clients. Requests/s: "
            f"echolab-load, {connections:,} connections, closed loop (the other models' from the "
            "throughput table).\n\n" +
            table(["server", "requests/s", "connections lost to one crash", "serving again after"], rows) + "\n")


def slow_clients_section(recorder: Recorder, plan: Plan, peers: Peers | None) -> str:
    peer_models = peers.models if peers else {}
    capacity = lambda model: capacity_text(model, plan) or f"as Debian ships it ({peer_models.get(model, '')})"
    normal_rows, server_rows = [], []
    for row in recorder.rows("slow_clients"):
        attack, defence = row
        for model in recorder.models("slow_clients", row):
            runs = recorder.runs("slow_clients", row, model)
            figures = runs[-1] if runs else {}  # a failed experiment leaves its row without figures
            fig = lambda name: recorder.figure("slow_clients", row, model, name)
            name = f"{model}" + ("" if defence == "defended" else " (defence off)")
            normal_rows.append([ATTACK_NAMES[attack], name, f"{figures.get('attackers', 0):,}",
                                *(cell(fig(f"{w}_rps")) for w in ("before", "during", "after")),
                                change_text(figures, "during"),
                                cell(fig("during_errors")),
                                *(cell(fig(f"{w}_p99_us"), "us") for w in ("before", "during", "after")),
                                cell(fig("time_to_normal_ms"), "ms", 1) if fig("time_to_normal_ms") else
                                f"not within {plan.slow_recovery_limit_s:g} s"])
            server_rows.append([ATTACK_NAMES[attack], name, capacity(model),
                                cell(fig("timed_out_header")), cell(fig("timed_out_send")),
                                cell(fig("timed_out_idle")), cell(fig("answered_408")), cell(fig("rejected")),
                                cell(fig("workers_busy")), cell(fig("processes")), cell(fig("threads")),
                                cell(fig("rss_mib"), "mib", 1), cell(fig("rss_added_mib"), "mib", 1),
                                cell(fig("pss_mib"), "mib", 1), cell(fig("attack_connects")),
                                cell(fig("attack_held_p50_ms"), "ms", 0), cell(fig("attack_408"))])
    intro = (f"S attack connections beside {plan.slow_normal_connections} normal keep-alive clients "
             f"(echolab-load closed loop, `--timeout {plan.slow_client_timeout_s:g}s`). Worker capacity as "
             f"configured for this experiment: prefork `--max-workers {plan.slow_capacity}`, threads "
             f"`--max-threads {plan.slow_capacity}`, pool `--threads {plan.slow_pool_threads}`, hybrid "
             f"`--workers {plan.slow_pool_threads}`; S = "
             f"{plan.slow_attackers} (2x {plan.slow_capacity}). Defence: `--header-timeout {plan.slow_timeout_s:g}s "
             f"--send-timeout {plan.slow_timeout_s:g}s` (the rest at the defaults: `--min-rate 500`, "
             "`--idle-timeout 30s`); \"defence off\" sets both to 10 minutes. Slow headers: a header line every "
             f"{plan.slow_header_interval_s:g} s, never ending the head; never read: POSTs of 64 KiB echoed back "
             "and never read. Both reconnect when the server ends a connection. Windows: before "
             f"{plan.slow_window_s:g} s, during {plan.slow_attack_window_s:g} s (from {SETTLE_S:g} s into the attack), "
             f"after {plan.slow_window_s:g} s; the second attack's before window is the first one's after window. "
             "\"Change\" is during minus before, its spread the extremes of their per-second rates. \"Normal again "
             "after\" is the time from the attack's end until a new connection is answered within 5x the before "
             "window's p99 (20 ms at least). Run once (not repeated): see the per-second spread instead.\n\n")
    if peer_models:
        intro += (f"Peers run as Debian ships them (Apache: MaxRequestWorkers 150, `RequestReadTimeout "
                  "header=20-40,minrate=500 body=10,minrate=500`, Timeout 300, KeepAliveTimeout 5; nginx: "
                  "768 connections per worker, client_header_timeout/send_timeout 60 s), S = "
                  f"{plan.slow_peer_attackers} (2x MaxRequestWorkers); they have no /metrics.\n\n")
    if not normal_rows:
        return "## Slow clients\n\n" + intro + "Not measured.\n"
    return ("## Slow clients\n\n" + intro + "### Normal clients\n\n" +
            table(["attack", "model", "S", "req/s before", "req/s during", "req/s after", "change during",
                   "errors during", "p99 before", "p99 during", "p99 after",
                   "normal again after"], normal_rows) + "\n\n### Server and attackers\n\n"
            "Timeouts, 408 answers and rejections are counted over the attack and its after window; workers, "
            "processes, threads and memory are read half-way through the during window (added: RSS then minus "
            "RSS before the attack). Attack connects include reconnects; held p50 is how long the server held "
            "each attack connection it ended.\n\n" +
            table(["attack", "model", "capacity", "header timeouts", "send timeouts", "idle timeouts", "408s",
                   "rejected", "workers busy", "processes", "threads", "RSS during", "RSS added", "PSS during",
                   "attack connects", "attack held p50", "attack 408s"], server_rows) + "\n")


def probes_section(recorder: Recorder) -> str:
    fig = lambda probe, name: recorder.figure("probe", (probe,), "machine", name)
    spawn_rows = []
    for label, key in (("fork (until the child runs)", "fork"), ("fork + exec /bin/true (until exit)", "fork_exec"),
                       ("posix_spawn /bin/true (until exit)", "posix_spawn"), ("thread (until it runs)", "thread")):
        spawn_rows.append([label, cell(fig("spawn", f"{key}_p50_us"), "us"), cell(fig("spawn", f"{key}_p99_us"), "us"),
                           cell(fig("spawn", f"large_parent_{key}_p50_us"), "us")])
    large_rss = fig("spawn", "large_parent_parent_rss_kib")
    large = f"median from a {large_rss['median'] / 1024:,.0f} MiB parent" if large_rss else "large parent"
    switch_rows = []
    for label, prefix in (("plain ping-pong", ""), ("each side touches its working set", "touching_")):
        process, thread = fig("context-switch", f"{prefix}process_ns"), fig("context-switch", f"{prefix}thread_ns")
        extra = recorder.difference("probe", ("context-switch",), "machine", f"{prefix}extra_cycles", _cycles)
        switch_rows.append([label, cell(process, "ns"), cell(thread, "ns"), cell(ratio_figure(process, thread), "ratio"),
                            extra.text if extra else "-"])
    memory_rows = []
    for label, stack in (("thread, default stack", "default_stack"), ("thread, small stack", "small_stack")):
        size = fig("thread-memory", f"{stack}_kib")
        memory_rows.append([f"{label} ({size['median']:,.0f} KiB)" if size else label,
                            cell(fig("thread-memory", f"{stack}_virtual_kib"), "kib"),
                            cell(fig("thread-memory", f"{stack}_rss_kib"), "kib", 1),
                            cell(fig("thread-memory", f"{stack}_pss_kib"), "kib", 1),
                            cell(fig("thread-memory", f"{stack}_page_tables_kib"), "kib", 1),
                            cell(fig("thread-memory", f"{stack}_kernel_stack_kib"), "kib", 1)])
    for label, parent in (("forked process, small parent", "small_parent"), ("forked process, large parent", "large_parent")):
        rss = fig("process-memory", f"{parent}_rss_kib")
        memory_rows.append([f"{label} ({rss['median'] / 1024:,.0f} MiB)" if rss else label, "-",
                            cell(fig("process-memory", f"{parent}_rss_per_process_kib"), "kib", 1),
                            cell(fig("process-memory", f"{parent}_pss_added_per_process_kib"), "kib", 1),
                            cell(fig("process-memory", f"{parent}_page_tables_per_process_kib"), "kib", 1),
                            cell(fig("process-memory", f"{parent}_kernel_stack_per_process_kib"), "kib", 1)])
    return ("## Raw costs (echolab-probe)\n\n"
            "### Creation\n\n" + table(["", "median", "p99", large], spawn_rows) + "\n\n"
            "### Context switch (both sides pinned to one CPU, pipe ping-pong)\n\n" +
            table(["", "process", "thread", "process/thread", "extra cycles per process switch"], switch_rows) + "\n\n"
            "### Memory per idle thread and per idle forked process\n\n"
            "For a forked child, the PSS column is what the child adds to the machine's total (PSS "
            "of parent and children after, minus before): pages shared copy-on-write count once.\n\n" +
            table(["", "reserved (virtual)", "RSS", "PSS", "page tables", "kernel stack"], memory_rows) + "\n\n" +
            rmap_table(recorder) + "\n\n" + communication_probe_tables(recorder))


def _cycles(value: float) -> str:
    return f"{value:,.0f} cycles"



def rmap_table(recorder: Recorder) -> str:
    """The reverse-map walk per page at each count of processes and of threads."""
    runs = recorder.runs("probe", ("rmap",), "machine")
    text = ("### Reverse-map walk per page (N processes vs N threads)\n\n"
            "Time per page for the kernel to find and write-protect a page everywhere it is mapped (the "
            "write-back of a file mapped shared, docs/probes.md): a walk visits one mapping per address space, "
            "as DAMON, kswapd, compaction and migration do. The difference is each sample's process figure "
            "minus the thread figure, with the spread of those differences.\n\n")
    if not runs:
        return text + "Not measured.\n"
    rows = []
    for count in rmap_counts(runs):
        fig = lambda name: recorder.figure("probe", ("rmap",), "machine", f"{name}_at_{count}")
        gap = recorder.difference("probe", ("rmap",), "machine", f"difference_ns_at_{count}", ns_per_page)
        rows.append([f"{count:,}", cell(fig("process_ns"), "ns_page"), cell(fig("thread_ns"), "ns_page"),
                     cell(ratio_figure(fig("process_ns"), fig("thread_ns")), "ratio"), gap.text if gap else "-"])
    return text + table(["N", "N processes", "N threads", "process/thread", "process minus thread"], rows) + "\n"


# --- tables of the communication, thread-exhaustion and fork-descriptors probes ---

def communication_probe_tables(recorder: Recorder) -> str:
    return "\n\n".join([communication_table(recorder), exhaustion_table(recorder), fork_descriptors_table(recorder)])


def communication_table(recorder: Recorder) -> str:
    fig = lambda name: recorder.figure("probe", ("communication",), "machine", name)
    rows = []
    for size in ("small", "large"):
        size_bytes = fig(f"{size}_bytes")
        label = f"{size_bytes['median']:,.0f} B" if size_bytes else size
        for pair in COMMUNICATION_PAIRS:
            row = [label, pair.replace("_", " ")]
            for placement in COMMUNICATION_PLACEMENTS:
                row += [cell(fig(f"{placement}_{size}_{pair}_us"), "us"),
                        cell(fig(f"{placement}_{size}_{pair}_mib_s"), "number", 1)]
            rows.append(row)
        gaps = [recorder.difference("probe", ("communication",), "machine", f"{p}_{size}_process_minus_thread_us",
                                    duration_us) for p in COMMUNICATION_PLACEMENTS]
        rows.append([label, "processes minus threads, shared memory"] +
                    [text for gap in gaps for text in ((gap.text if gap else "-"), "")])
    header = ["message", "pair"] + [f"{p.replace('_', ' ')}: {what}" for p in COMMUNICATION_PLACEMENTS
                                    for what in ("round trip", "MiB/s")]
    return ("### Communication: a message there and back (docs/probes.md)\n\n"
            "Both shared-memory pairs use the same mapping and the same futex wake-up: only thread against "
            "process differs. Round trip median, MiB/s counts the message both ways. Unpinned, the scheduler "
            "puts the two sides on one CPU or on two from one sample to the next, so the medians of two pairs can "
            "come from different placements; the paired difference (processes minus threads) compares like "
            "with like.\n\n" + table(header, rows))


def exhaustion_table(recorder: Recorder) -> str:
    fig = lambda name: recorder.figure("probe", ("thread-exhaustion",), "machine", name)
    rows = []
    for stack in ("default", "small"):
        size = fig(f"{stack}_stack_kib")
        rows.append([f"{stack} stack ({size['median']:,.0f} KiB)" if size else stack,
                     cell(fig(f"{stack}_threads")), cell(_scaled(fig(f"{stack}_rss_kib"), 1 / 1024), "mib"),
                     cell(_scaled(fig(f"{stack}_virtual_kib"), 1 / 1024), "mib"),
                     cell(_scaled(fig(f"{stack}_kernel_stack_kib_added"), 1 / 1024), "mib"),
                     cell(fig(f"{stack}_creation_seconds"), "number", 2),
                     cell(_scaled(fig(f"{stack}_hold_cpu_share"), 100), "percent1")])
    notes = recorder.notes.get(("probe", ("thread-exhaustion",), "machine")) or []
    return ("### Thread exhaustion: idle threads until creation fails or the cap\n\n" +
            ("What ended each run: " + " / ".join(notes) + "\n\n" if notes else "") +
            table(["", "threads", "resident", "reserved (virtual)", "kernel stacks (machine)", "creation (s)",
                   "CPU while idle"], rows))


def _scaled(figure: dict | None, factor: float) -> dict | None:
    if figure is None:
        return None
    return {**figure, "median": figure["median"] * factor, "min": figure["min"] * factor,
            "max": figure["max"] * factor}


def fork_descriptors_table(recorder: Recorder) -> str:
    fig = lambda name: recorder.figure("probe", ("fork-descriptors",), "machine", name)
    rows = [[f"{level:,} descriptors", cell(fig(f"fork_at_{level}_us"), "us"), cell(fig(f"fork_exit_at_{level}_us"), "us")]
            for level in descriptor_levels(recorder.runs("probe", ("fork-descriptors",), "machine"))]
    large_rss = recorder.figure("probe", ("spawn",), "machine", "large_parent_parent_rss_kib")
    if large_rss:
        rows.append([f"spawn probe: a {large_rss['median'] / 1024:,.0f} MiB parent",
                     cell(recorder.figure("probe", ("spawn",), "machine", "large_parent_fork_p50_us"), "us"), "-"])
    extra = recorder.difference("probe", ("fork-descriptors",), "machine", "extra_us", duration_us)
    return ("### fork() from a parent holding open descriptors (medians)\n\n" +
            table(["parent", "fork until the child runs", "fork until the child has exited"], rows) +
            (f"\n\nMost descriptors minus fewest: {extra.text}." if extra else ""))

# --- end of those tables ---


def claims_section(claims: list[Claim], plan: Plan) -> str:
    rows = [[c.claim, c.measured, f"**{c.verdict}**", c.why] for c in claims]
    one_run = ("**One run per figure:** a verdict that turns on whether a difference is beyond the noise "
               "is \"not measured\" (the noise band is the spread of the runs); the others compare one run "
               "with the article's range.\n\n" if plan.repetitions < 2 else "")
    return ("## Claims\n\n"
            "Each claim of the article beside what this machine measured; the verdict is computed "
            "from the figures above.\n\n" + one_run + table(["claim (article)", "measured here", "verdict", "why"], rows) + "\n")


def peers_section(peers: Peers | None, recorder: Recorder) -> str:
    if peers is None:
        return ""
    text = ("## Peers (production servers, same load)\n\n"
            "Each production server that implements a model, under the closed-loop matrix above "
            "(GET /hello, answered with the same \"Hello, World!\" body). The echolab column repeats the model's "
            "figure from the closed-loop table of this run, measured before the peers.\n\n")
    if not peers.available:
        return text + (peers.message or "Peers unavailable.") + "\n"
    rows = []
    for row in recorder.rows("peers"):
        tool, connections = row
        for name in recorder.models("peers", row):
            fig = lambda n: recorder.figure("peers", row, name, n)
            model = peers.models.get(name, "")
            ours = recorder.figure("closed_loop", row, model, "requests_per_second")
            rows.append([tool, f"{connections:,}", f"{name} ({model})", cell(fig("requests_per_second")),
                         cell(ours), cell(fig("p50_us"), "us"), cell(fig("p99_us"), "us"), cell(fig("errors"))])
    return text + (peers.message + "\n\n" if peers.message else "") + table(
        ["tool", "connections", "peer (model)", "peer requests/s", "echolab requests/s", "peer p50", "peer p99",
         "peer errors"], rows) + "\n"


def charts_section(charts: list[str]) -> str:
    if not charts:
        return "## Charts\n\nNo charts: gnuplot is not installed (Debian package gnuplot-nox).\n"
    return "## Charts\n\n" + "\n\n".join(f"![{Path(c).stem}]({c})" for c in charts) + "\n"


def failures_section(failures: list[str]) -> str:
    if not failures:
        return ""
    return "## Failures\n\n" + "\n".join(f"- {f}" for f in failures) + "\n"


@dataclass
class Results:
    """What one comparison run found; results.json is its JSON, report.md its rendering."""

    started_utc: str
    quick: bool
    runtime_s: float
    machine: Machine
    capacity: Capacity
    plan: Plan
    open_loop_rate: float | None
    servers: dict[str, list[str]]  # name -> command line
    recorder: Recorder
    claims: list[Claim]
    charts: list[str]
    peers: Peers | None
    failures: list[str]

    def to_json(self) -> dict:
        return {
            "tool": "echolab compare",
            "format": RESULTS_FORMAT,
            "started_utc": self.started_utc,
            "mode": "quick" if self.quick else "full",
            "runtime_s": self.runtime_s,
            "machine": self.machine.to_json(),
            "capacity": asdict(self.capacity),
            "plan": self.plan.to_json(),
            "open_loop_rate": self.open_loop_rate,
            "servers": self.servers,
            "scenarios": self.recorder.to_json(),
            "series": self.recorder.series_json(),
            "claims": [claim.to_json() for claim in self.claims],
            "charts": self.charts,
            "peers": self.peers.to_json() if self.peers is not None else None,
            "failures": self.failures,
        }


def _section(title: str, render_section, failures: list[str]) -> str:
    """One section, or in its place the one line of what it raised (listed under Failures)."""
    return guarded(f"report section \"{title}\"", render_section, failures,
                   lambda error: f"## {title}\n\nNot rendered: {one_line(error)} (see Failures).\n")


def render(results: Results) -> str:
    """report.md. A section that raises is replaced by its error and listed under Failures,
    which come last so that they include those."""
    machine, plan, recorder = results.machine, results.plan, results.recorder
    header = (f"# echolab compare: processes vs threads, measured\n\n"
              f"{results.started_utc}, {'quick' if plan.quick else 'full'} run, "
              f"{results.runtime_s / 60:.1f} minutes, on {machine.cpu_model} "
              f"({machine.cores_usable} cores), {machine.kernel}. "
              "How to read each figure: docs/reading-the-report.md.\n")
    sections = [
        ("Machine and limits", lambda: machine_section(machine, results.capacity, plan, results.servers)),
        ("Throughput and latency", lambda: closed_loop_section(recorder)),
        ("Open loop", lambda: open_loop_section(recorder, plan)),
        ("Connection churn", lambda: churn_section(recorder)),
        ("10,000 connections", lambda: hold_section(recorder, plan)),
        ("Blocking work", lambda: blocking_section(recorder, plan)),
        ("Crash containment", lambda: crash_section(recorder, plan)),
        ("Blast radius", lambda: blast_radius_section(recorder, plan)),
        ("Slow clients", lambda: slow_clients_section(recorder, plan, results.peers)),
        ("Memory isolation", lambda: isolation.section(recorder)),
        ("Raw costs", lambda: probes_section(recorder)),
        ("Claims", lambda: claims_section(results.claims, plan)),
        ("Peers", lambda: peers_section(results.peers, recorder)),
        ("Charts", lambda: charts_section(results.charts)),
    ]
    parts = [header] + [_section(title, section, results.failures) for title, section in sections]
    parts.append(failures_section(results.failures))
    return join_sections(parts)


def join_sections(parts: list[str]) -> str:
    """The sections, a blank line between each and the next (a section may end with its last
    table row or sentence, and a heading glued to it reads as part of that paragraph)."""
    return "\n".join(part if part.endswith("\n") else part + "\n" for part in parts if part)


def terminal_summary(recorder: Recorder, plan: Plan, claims: list[Claim]) -> str:
    """The tables a user wants to see when the run ends, in the markdown they are written in.
    A section that raises is shown by its error; report.md lists it among the failures."""
    already_listed: list[str] = []
    sections = [("Throughput and latency", lambda: closed_loop_section(recorder)),
                ("10,000 connections", lambda: hold_section(recorder, plan)),
                ("Crash containment", lambda: crash_section(recorder, plan)),
                ("Slow clients", lambda: slow_clients_section(recorder, plan, None).split("### Server")[0]),
                ("Claims", lambda: claims_section(claims, plan))]
    return join_sections([_section(title, section, already_listed) for title, section in sections])


def write(out_dir: Path, results: Results) -> None:
    """report.md, report.html and results.json, each whatever a section or the page raised:
    results.json is written last, so its failures include what could not be rendered. The page
    is rendered from results.json's content before report.md, which then lists its failure."""
    data = guarded("results.json", results.to_json, results.failures,
                   lambda error: {"tool": "echolab compare", "started_utc": results.started_utc})
    # The run's own list, so that what fails from here on is listed in results.json too.
    data["failures"] = results.failures
    # The page first, so that report.md and results.json list it when it cannot be written.
    guarded(html_report.PAGE, lambda: html_report.write(out_dir, data), results.failures, lambda error: None)
    text = render(results)
    (out_dir / "results.json").write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    (out_dir / "report.md").write_text(text)
