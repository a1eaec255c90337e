"""make compare QUICK=1, for real: every server under real load, the probes, and a report
whose structure, figures and verdicts are checked; python3 -m compare diff of that run against
itself and against a slowed copy. Also: Ctrl-C in the middle of a run leaves no process
behind."""

import json
import os
import re
import signal
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from compare import diff
from harness import BIN_DIR, MODELS, SOURCE_DIR, free_port, release_port

PYTHON = "/usr/bin/python3"
VERDICTS = {"holds", "does not hold", "partly", "not measured"}
SECTIONS = ("## Machine and limits", "## Throughput and latency", "## Open loop", "## Connection churn",
            "## 10,000 connections", "## Blocking work", "## Crash containment", "## Blast radius",
            "## Slow clients", "## Memory isolation",
            "## Raw costs", "## Claims", "## Charts")
CLAIM_KEYS = ("process_creation", "thread_creation", "creation_ratio", "crash_containment",
              "switch_ratio", "tlb_flush", "stack_size", "ten_thousand", "address_spaces",
              "slow_connection_cost", "hybrid_tradeoff", "communication", "thread_exhaustion",
              "fork_descriptors", "memory_disclosure", "heap_corruption")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Only "it hung": the quick run takes minutes, longer on a slow or busy machine.
HUNG_S = 15 * 60
# Debian's chromium, headless, with every name unresolvable and a proxy to nowhere: a page that
# reached out could not load anything, and its attempt is in the NetLog all the same.
BROWSER = ["chromium", "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
           "--disable-background-networking", "--enable-logging=stderr", "--v=0",
           '--host-resolver-rules=MAP * ~NOTFOUND', "--proxy-server=127.0.0.1:9"]
# The charts report.html draws from a quick run's results.json and raw/ (compare/html_report.py).
HTML_CHARTS = {"chart-throughput", "chart-latency", "chart-memory", "chart-spawn", "chart-slow-clients",
               "chart-blast-lost", "chart-blast-rate", "chart-percentiles-0", "chart-percentiles-1",
               "chart-percentiles-2", "chart-percentiles-3"}


def processes_of_run(out_dir: Path) -> list[str]:
    """Every live process whose environment names this run (the runner marks its children)."""
    marker = f"ECHOLAB_COMPARE_RUN={out_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name}: {command}")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def wait_for_no_processes(out_dir: Path, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = processes_of_run(out_dir)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def runner(out_dir: Path, *extra: str) -> list[str]:
    return [PYTHON, "-m", "compare", "--bin-dir", str(BIN_DIR), "--quick", "--out", str(out_dir), *extra]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("compare-quick")
    completed = subprocess.run(runner(out_dir), capture_output=True, text=True, timeout=HUNG_S, check=False,
                               cwd=SOURCE_DIR)
    return out_dir, completed


class PageContents(HTMLParser):
    """What the browser's DOM holds: every src/href, the marks inside each chart, the table
    cells that name their figure, and the claims' links."""

    def __init__(self):
        super().__init__()
        self.links, self.marks, self.cells, self.elements, self.ids = [], {}, {}, set(), set()
        self.chart, self.cell = None, None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.add(tag)
        self.ids |= {attributes["id"]} if "id" in attributes else set()
        self.links += [value for name, value in attrs if name in ("src", "href", "xlink:href")]
        if tag == "svg" and "chart" in (attributes.get("class") or "").split():
            self.chart = attributes["id"]
            self.marks[self.chart] = 0
        elif self.chart and ((tag == "rect" and attributes.get("class") == "bar" and "data-value" in attributes)
                             or (tag == "polyline" and attributes.get("class") == "curve"
                                 and len((attributes.get("points") or "").split()) >= 2)):
            self.marks[self.chart] += 1
        elif tag == "td" and "data-figure" in attributes:
            self.cell = attributes["data-figure"]
            self.cells[self.cell] = {"median": float(attributes["data-median"]), "text": ""}

    def handle_endtag(self, tag):
        if tag == "svg" and self.chart:
            self.chart = None
        elif tag == "td":
            self.cell = None

    def handle_data(self, data):
        if self.cell and not self.chart:
            self.cells[self.cell]["text"] += data


def net_log_page_requests(net_log: Path) -> list[str]:
    """The URLs chromium fetched on behalf of a file:// page (its own background traffic, the
    updater's, is keyed to other sites)."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [event["params"]["url"] for event in log["events"] if event["type"] == start_job and
            "file://" in event["params"].get("network_isolation_key", "")]


def figure(results: dict, scenario: str, model: str, name: str, row: list | None = None) -> float | None:
    for entry in results["scenarios"].get(scenario, []):
        if entry["model"] == model and (row is None or entry["row"] == row):
            summary = entry["figures"].get(name)
            return summary["median"] if summary else None
    return None


@pytest.fixture(scope="module")
def page_in_browser(quick_run, tmp_path_factory):
    """report.html of the quick run as a headless chromium loaded it: its DOM, what it wrote on
    the console, and the requests it made."""
    out_dir, _ = quick_run
    scratch = tmp_path_factory.mktemp("chromium")
    net_log = scratch / "net-log.json"
    completed = subprocess.run([*BROWSER, f"--user-data-dir={scratch / 'profile'}", f"--log-net-log={net_log}",
                                "--dump-dom", (out_dir / "report.html").as_uri()],
                               capture_output=True, text=True, timeout=300, check=False)  # only "it hung"
    assert completed.returncode == 0, completed.stderr[-2000:]
    contents = PageContents()
    contents.feed(completed.stdout)
    console = [line for line in completed.stderr.splitlines() if ":CONSOLE" in line]
    return contents, console, net_log_page_requests(net_log)


def test_quick_run_succeeds(quick_run):
    out_dir, completed = quick_run
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    # Progress lines while it runs, the summary tables at the end.
    assert "] run 1/1  closed loop c=100 echolab-load" in completed.stdout
    assert "| claim (article) | measured here | verdict | why |" in completed.stdout


def test_report_has_every_section_and_the_claims_table(quick_run):
    out_dir, _ = quick_run
    report = (out_dir / "report.md").read_text()
    for section in SECTIONS:
        assert section in report, f"report.md lacks '{section}'"
    claims_table = report.split("## Claims", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in claims_table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(CLAIM_KEYS)
    for row in rows:
        verdict = row.split(" | ")[2].strip("* ")
        assert verdict in VERDICTS, row
    assert "PCID" in report
    # A Python expression left unformatted (a string without its f): the full run's Plan line
    # read "{plan.duration_s:g} s per load run".
    assert not re.findall(r"\{[a-z_][a-z_.]*(?::[^}]*)?\}", report)
    # Every heading stands apart from the text before it ("## Claims" followed a sentence).
    lines = report.splitlines()
    assert all(lines[i - 1] == "" for i, line in enumerate(lines) if line.startswith("#") and i > 0)


def test_results_hold_every_figure_and_they_are_plausible(quick_run):
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    assert results["failures"] == []
    machine = results["machine"]
    assert machine["cpu_model"] and machine["cores_usable"] >= 1 and machine["kernel"]
    assert machine["open_files_soft"] >= 1024 and machine["pid_max"] > 0
    plan = results["plan"]
    tools = ["echolab-load", "wrk"]
    for model in MODELS:
        for tool in tools:
            for connections in plan["concurrency"]:
                row = [tool, connections]
                rps = figure(results, "closed_loop", model, "requests_per_second", row)
                p50, p99 = (figure(results, "closed_loop", model, k, row) for k in ("p50_us", "p99_us"))
                assert rps and rps > 100, (model, row, rps)
                assert 0 < p50 <= p99, (model, row, p50, p99)
                assert figure(results, "closed_loop", model, "errors", row) == 0, (model, row)
            p999 = figure(results, "closed_loop", model, "p99_9_us", ["echolab-load", plan["concurrency"][0]])
            assert p999 >= figure(results, "closed_loop", model, "p99_us", ["echolab-load", plan["concurrency"][0]])
        # An open loop never sends faster than its schedule; how close it gets depends on the
        # machine, which is what the report is for.
        achieved = figure(results, "open_loop", model, "requests_per_second")
        assert 0 < achieved <= results["open_loop_rate"] * 1.05, (model, achieved)
        assert figure(results, "churn", model, "requests_per_second") > 0
        # Every connection opened; how many the server had accepted when it was scraped depends
        # on how fast it starts workers on this machine (a prefork master forks at the pace the
        # CPU allows). test_capacity.py waits for the whole hold, event by event.
        assert figure(results, "hold", model, "connections_open_peak") == plan["hold_connections"], model
        assert figure(results, "hold", model, "connections_held") > 0, model
        for name in ("rss_per_connection_kib", "pss_per_connection_kib", "context_switches_per_s",
                     "hold_p50_us", "hold_p99_us"):
            value = figure(results, "hold", model, name)
            assert value is not None and value > 0, (model, name, value)
        assert figure(results, "hold", model, "hold_p50_us") <= figure(results, "hold", model, "hold_p99_us")
        assert figure(results, "blocking", model, "sleep_requests_per_second") > 0
    # One process per held connection in prefork, one process in threads and pool.
    assert figure(results, "hold", "prefork", "processes") >= figure(results, "hold", "prefork", "connections_held")
    assert figure(results, "hold", "threads", "processes") == 1
    assert figure(results, "hold", "threads", "threads") >= figure(results, "hold", "threads", "connections_held")
    # Every connection makes a thread in threads, and a fork in the recycling prefork.
    assert figure(results, "churn", "threads", "spawns") > 0
    assert figure(results, "churn", "prefork-recycle", "spawns") > 0
    for name in ("fork_p50_us", "thread_p50_us", "fork_exec_p50_us"):
        assert figure(results, "probe", "machine", name, ["spawn"]) > 0
    for name in ("process_ns", "thread_ns"):
        assert figure(results, "probe", "machine", name, ["context-switch"]) > 0
    assert figure(results, "probe", "machine", "default_stack_virtual_kib", ["thread-memory"]) > \
        figure(results, "probe", "machine", "default_stack_rss_kib", ["thread-memory"]) > 0


def series_of(results: dict, scenario: str, model: str, row: list | None = None) -> list[dict]:
    return [run for entry in results["series"].get(scenario, [])
            if entry["model"] == model and (row is None or entry["row"] == row) for run in entry["runs"]]


def recorded_runs(results: dict, scenario: str, model: str, name: str, row: list | None = None) -> list[float]:
    """The value of figure `name` in each run that was recorded (a failed run has none)."""
    for entry in results["scenarios"].get(scenario, []):
        if entry["model"] == model and (row is None or entry["row"] == row):
            return (entry["figures"].get(name) or {}).get("runs", [])
    return []


def test_every_echolab_load_run_has_its_series_in_the_results(quick_run):
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    row = ["echolab-load", results["plan"]["concurrency"][0]]
    for model in MODELS:
        for scenario, row_wanted in (("closed_loop", row), ("open_loop", None), ("hold", None)):
            runs = series_of(results, scenario, model, row_wanted)
            requests = recorded_runs(results, scenario, model,
                                     "requests" if scenario != "hold" else "hold_requests", row_wanted)
            # One series per recorded run (a run that failed has neither figures nor series),
            # named by its raw/ file, whose seconds sum to its requests.
            assert len(runs) == len(requests), (scenario, model, runs, requests)
            for run, run_requests in zip(runs, requests):
                assert (out_dir / "raw" / f"{run['run']}.json").is_file(), run["run"]
                load = run["load"]
                assert len(load["requests"]) >= 2 and all(d == 1.0 for d in load["duration_s"][:-1]), load
                if scenario != "hold":
                    assert sum(load["requests"]) == run_requests, (scenario, model, load["requests"], run_requests)
                else:  # the hold's figure counts the requests due in the hold, the series every one
                    assert sum(load["requests"]) >= run_requests, (model, load["requests"], run_requests)
        # The hold: the server at each scrape, on the load's clock, inside the run.
        (hold,) = series_of(results, "hold", model)
        server = hold["server"]
        assert len(server["at_s"]) >= 2, server
        # Scraped from a moment after the ramp, on the load's clock (its second 0 is its start).
        assert server["at_s"] == sorted(server["at_s"]) and results["plan"]["ramp_s"] <= server["at_s"][0], server
        assert all(c is not None and 0 < c <= results["plan"]["hold_connections"] for c in server["connections"])
        assert all(p is not None and p > 0 for p in server["pss_mib"]), server
        assert server["cpu_cores"][0] is None and all(c is not None and c >= 0 for c in server["cpu_cores"][1:])
        assert max(hold["load"]["connections_open"]) == results["plan"]["hold_connections"], hold["load"]
    assert (out_dir / "results.json").stat().st_size < 2 * 2**20


def test_the_floor_is_measured_beside_the_models_and_each_model_is_stated_as_its_multiple(quick_run,
                                                                                         page_in_browser):
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    plan = results["plan"]
    assert plan["floor_concurrency"] == plan["concurrency"][:1]  # QUICK: the lowest level only
    row = ["echolab-load", plan["floor_concurrency"][0]]
    for floor in ("floor-epoll", "floor-io_uring"):
        for tool in ("echolab-load", "wrk"):
            assert figure(results, "closed_loop", floor, "requests_per_second", [tool, row[1]]) > 100, (floor, tool)
            assert figure(results, "closed_loop", floor, "errors", [tool, row[1]]) == 0, (floor, tool)
    # The CPU per request of every server, read from the scheduler: microseconds, not zero (the
    # reading found the server's processes) and not a millisecond (not the load generator's).
    floor_cpu_us = figure(results, "closed_loop", "floor-epoll", "cpu_per_request_us", row)
    assert 0.5 < floor_cpu_us < 1000
    for server in (*MODELS, "floor-io_uring"):
        cpu_us = figure(results, "closed_loop", server, "cpu_per_request_us", row)
        assert 0.5 < cpu_us < 1000, (server, cpu_us)
        # One run: the multiple is that run's CPU over the floor's run.
        assert figure(results, "closed_loop", server, "cpu_vs_floor_ratio", row) == pytest.approx(
            cpu_us / floor_cpu_us), server
    # Measured and shown, never a model: no other experiment, no verdict.
    for scenario, entries in results["scenarios"].items():
        if scenario != "closed_loop":
            assert not [e for e in entries if e["model"].startswith("floor")], scenario
    report = (out_dir / "report.md").read_text()
    table = report.split("### CPU per request, as a multiple of the epoll floor", 1)[1].split("\n#", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["connections", "floor (epoll): CPU per request", *MODELS, "floor (io_uring)"]
    assert len(lines) == 2 and lines[1].startswith(f"| {row[1]:,} | "), table  # header, one level
    assert all(cell.strip().endswith("x (one run: no spread to judge the noise)")
               for cell in lines[1].strip("|").split("|")[2:]), lines[1]
    contents, _, _ = page_in_browser
    assert "floor-multiples" in contents.ids
    assert "floor (io_uring)" in (out_dir / "report.html").read_text()


def test_kernel_cost_of_address_spaces_is_reported(quick_run):
    """The hold's kernel mm threads and CPU split, the rmap probe's walk per page, and the
    claim built on them, whose differences say when they are inside the noise."""
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    for model in MODELS:
        for name in ("mm_threads_cpu_percent", "machine_user_percent", "machine_system_percent"):
            value = figure(results, "hold", model, name)
            assert value is not None and 0 <= value <= 100 * os.cpu_count(), (model, name, value)
    counts = sorted(int(name.rsplit("_", 1)[1]) for entry in results["scenarios"]["probe"]
                    if entry["row"] == ["rmap"] for name in entry["figures"] if name.startswith("process_ns_at_"))
    assert counts[0] == 1 and counts[-1] == results["plan"]["rmap_max_tasks"]
    largest = counts[-1]
    assert figure(results, "probe", "machine", f"process_ns_at_{largest}", ["rmap"]) > \
        2 * figure(results, "probe", "machine", "process_ns_at_1", ["rmap"])
    claim = {c["key"]: c for c in results["claims"]}["address_spaces"]
    walk = claim["differences"]["rmap_process_minus_thread_ns_per_page"]
    assert walk["low"] <= walk["median"] <= walk["high"]
    if results["plan"]["repetitions"] == 1:  # no spread of runs: no verdict on the noise
        assert walk["within_noise"] is None and claim["verdict"] == "not measured"
    else:
        assert ("no difference within" in walk["text"]) == walk["within_noise"]
    assert walk["text"] in claim["measured"] and "kernel mm threads" in claim["measured"]
    tlb = {c["key"]: c for c in results["claims"]}["tlb_flush"]["differences"]["extra_cycles"]
    assert tlb["text"] in {c["key"]: c for c in results["claims"]}["tlb_flush"]["measured"]
    report = (out_dir / "report.md").read_text()
    for row in ("| kernel mm threads CPU (% of one CPU) |", "| machine CPU: system |",
                "### Reverse-map walk per page"):
        assert row in report, row


def test_crash_outcomes_are_the_ones_measured(quick_run):
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    clients = results["plan"]["crash_clients"]
    assert figure(results, "crash", "prefork", "process_died") == 0
    assert figure(results, "crash", "prefork", "connections_lost") == 0
    assert figure(results, "crash", "prefork", "crashes_counted") == 1
    for model in ("threads", "pool"):
        assert figure(results, "crash", model, "process_died") == 1
        assert figure(results, "crash", model, "connections_lost") == clients
    # hybrid's master lives; the dead worker's share goes with it, and the rest are served.
    assert figure(results, "crash", "hybrid", "process_died") == 0
    assert figure(results, "crash", "hybrid", "crashes_counted") == 1
    workers = figure(results, "crash", "hybrid", "workers")
    assert workers == os.cpu_count()
    if workers > 1:
        assert figure(results, "crash", "hybrid", "connections_lost") < clients
    for model in MODELS:
        assert figure(results, "crash", model, "time_to_serve_ms") > 0


def test_blast_radius_shrinks_with_the_workers(quick_run):
    """One worker loses every client to a crash, as the pool does; with more workers the
    master lives and the survivors are served; each row has its throughput."""
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    plan = results["plan"]
    clients = plan["crash_clients"]
    lost = {w: figure(results, "blast_radius", "hybrid", "connections_lost", [w]) for w in plan["blast_workers"]}
    assert plan["blast_workers"] == [1, 2, 4]
    assert lost[1] == clients
    assert lost[4] < clients and lost[2] < clients
    for workers in plan["blast_workers"]:
        assert figure(results, "blast_radius", "hybrid", "process_died", [workers]) == 0
        assert figure(results, "blast_radius", "hybrid", "requests_per_second", [workers]) > 100
    section = (out_dir / "report.md").read_text().split("## Blast radius", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # below the header
    assert len(rows) == len(plan["blast_workers"]) + len(MODELS) - 1, section


def test_verdicts_follow_from_the_measured_numbers(quick_run):
    """A process spawn slower than a thread spawn is reported, not assumed: each verdict must be
    the one the figures in results.json give."""
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    claims = {c["key"]: c for c in results["claims"]}
    assert sorted(claims) == sorted(CLAIM_KEYS)

    fork = figure(results, "probe", "machine", "fork_p50_us", ["spawn"])
    thread = figure(results, "probe", "machine", "thread_p50_us", ["spawn"])
    ratio = fork / thread
    creation = claims["creation_ratio"]
    assert f"fork/thread {ratio:.1f}x" in creation["measured"]
    if 10 <= ratio <= 100:
        assert creation["verdict"] == "holds"
    elif ratio < 1:
        assert creation["verdict"] == "does not hold"
    else:
        assert creation["verdict"] in ("does not hold", "partly")

    thread_claim = claims["thread_creation"]
    assert thread_claim["verdict"] == ("holds" if 10 <= thread <= 100 else "does not hold")
    process_claim = claims["process_creation"]
    if 1000 <= fork <= 10000:
        assert process_claim["verdict"] == "holds"
    else:
        assert process_claim["verdict"] in ("does not hold", "partly")

    switch = (figure(results, "probe", "machine", "process_ns", ["context-switch"]) /
              figure(results, "probe", "machine", "thread_ns", ["context-switch"]))
    assert f"{switch:.1f}x" in claims["switch_ratio"]["measured"]
    if 2 <= switch <= 5:
        assert claims["switch_ratio"]["verdict"] == "holds"
    else:
        assert claims["switch_ratio"]["verdict"] in ("does not hold", "partly")
    assert claims["crash_containment"]["verdict"] == "holds"
    assert ("PCID present" if results["machine"]["pcid"] else "no PCID") in claims["tlb_flush"]["measured"]


def test_charts_are_png(quick_run):
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    names = {Path(c).stem for c in results["charts"]}
    assert names == {"throughput", "latency", "memory", "spawn", "slow_clients"}
    for chart in results["charts"]:
        data = (out_dir / chart).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, chart
        assert f"]({chart})" in (out_dir / "report.md").read_text()


def test_slow_clients_are_cut_by_the_timeouts_and_the_pool_keeps_serving(quick_run):
    """S slow clients, more than each model's worker capacity, beside normal keep-alive
    clients: every model's header timeout cuts them, the never-reading ones are cut by the
    send timeout, and the pool serves its normal clients throughout."""
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    plan = results["plan"]
    slow = lambda attack, model, name: figure(results, "slow_clients", model, name, [attack, "defended"])
    assert plan["slow_attackers"] > plan["slow_capacity"]
    for model in MODELS:
        assert slow("slow_headers", model, "timed_out_header") > 0, model
        assert slow("slow_headers", model, "attack_408") > 0, model
        # Held about the header timeout: not cut at once, not left for ever.
        held = slow("slow_headers", model, "attack_held_p50_ms")
        assert 0.5 * plan["slow_timeout_s"] * 1000 <= held <= 3 * plan["slow_timeout_s"] * 1000, (model, held)
        for attack in ("slow_headers", "never_read"):
            assert slow(attack, model, "before_rps") > 100, (model, attack)
            assert slow(attack, model, "after_rps") > 100, (model, attack)
            assert slow(attack, model, "time_to_normal_ms") is not None, (model, attack)
            assert slow(attack, model, "rss_mib") > 0, (model, attack)
    # A worker blocked on a client that never reads is freed by the send timeout.
    for model in ("prefork", "threads"):
        assert slow("never_read", model, "timed_out_send") > 0, model
    # The event loops (the pool's two threads, hybrid's workers) are never held by a slow head:
    # their normal clients are served during the attack, and none of their requests fails.
    for model in ("pool", "hybrid"):
        assert slow("slow_headers", model, "during_rps") > 0, model
        assert slow("slow_headers", model, "during_errors") == 0, model
    assert slow("slow_headers", "prefork", "processes") > 1
    report = (out_dir / "report.md").read_text()
    section = report.split("## Slow clients", 1)[1].split("\n## ", 1)[0]
    assert "### Normal clients" in section and "### Server and attackers" in section
    assert f"--max-workers {plan['slow_capacity']}" in section and f"S = {plan['slow_attackers']}" in section
    rows = [line for line in section.splitlines() if line.startswith("| slow headers |")]
    assert len(rows) == 2 * len(MODELS)  # one in each table
    claim = {c["key"]: c for c in results["claims"]}["slow_connection_cost"]
    assert claim["verdict"] in VERDICTS - {"not measured"}
    for model in MODELS:
        assert f"{model}: normal clients" in claim["measured"]


def test_memory_isolation_walls_off_processes_and_not_threads(quick_run):
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    for model in MODELS:
        fig = lambda scenario, name: figure(results, scenario, model, name, [])  # noqa: E731
        assert fig("disclosure", "live_found_other_processes") == 0, model
        assert fig("disclosure", "live_found_own_process") == fig("disclosure", "live_own_process"), model
        assert fig("corruption", "corrupted_other_processes") == 0, model
        assert fig("corruption", "corrupted_own_process") == fig("corruption", "clients_own_process"), model
    for model in ("threads", "pool"):
        assert figure(results, "disclosure", model, "live_other_processes", []) == 0
        assert figure(results, "corruption", model, "clients_other_processes", []) == 0


def test_no_process_outlives_the_run(quick_run):
    out_dir, _ = quick_run
    assert wait_for_no_processes(out_dir) == []


def test_ctrl_c_mid_run_stops_every_process(tmp_path):
    out_dir = tmp_path / "interrupted"
    process = subprocess.Popen(runner(out_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=SOURCE_DIR)
    try:
        # Interrupt during the closed-loop load, when servers and a load generator all run.
        for line in process.stdout:
            if "closed loop c=100 echolab-load" in line:
                break
        assert processes_of_run(out_dir.resolve()), "the runner had started nothing yet"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    assert wait_for_no_processes(out_dir.resolve()) == []


def test_free_port_never_hands_out_a_port_twice():
    # A server takes its listening and metrics ports before binding either: the same port
    # twice made a server fail to start ("cannot bind ... Address already in use").
    ports = [free_port() for _ in range(3000)]
    for port in ports:
        release_port(port)
    assert len(set(ports)) == len(ports)
    assert all(20000 <= port < 32000 for port in ports)


def test_a_port_handed_out_is_not_handed_out_by_another_process_until_released():
    # Four test files at once each start servers: one took a port another had just chosen and
    # not yet bound, and failed with "cannot bind ... Address already in use".
    port = free_port()
    other = [PYTHON, "-c", "import sys; from compare.servers import claim_port; "
             f"sys.exit(0 if claim_port({port}) else 3)"]
    assert subprocess.run(other, cwd=SOURCE_DIR, timeout=60).returncode == 3
    release_port(port)
    assert subprocess.run(other, cwd=SOURCE_DIR, timeout=60).returncode == 0


def test_the_ramp_shows_workers_started_against_connections_arriving(quick_run):
    """prefork forks a child per held connection before the ramp, threads start one per
    connection, the pool none; the longest wait for an accept is reported beside the p99."""
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    plan = results["plan"]
    for model in MODELS:
        arriving = figure(results, "hold", model, "connections_arriving_per_s")
        assert arriving == pytest.approx(plan["hold_connections"] / plan["ramp_s"]), model
        assert figure(results, "hold", model, "connect_max_us") >= \
            figure(results, "hold", model, "connect_p99_us") > 0, model
    assert figure(results, "hold", "prefork", "workers_prestarted") >= plan["hold_connections"]
    assert figure(results, "hold", "prefork", "workers_started_per_s") > 0
    assert figure(results, "hold", "threads", "workers_prestarted") is None
    assert figure(results, "hold", "threads", "workers_started") >= 0.9 * plan["hold_connections"]
    assert figure(results, "hold", "pool", "workers_started") == 0
    report = (out_dir / "report.md").read_text()
    assert "workers started/s (ramp to hold)" in report


def diff_runs(old: Path, new: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "compare", "diff", str(old), str(new), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=SOURCE_DIR)


def test_a_run_against_itself_shows_no_difference_in_any_figure(quick_run, tmp_path):
    out_dir, _ = quick_run
    completed = diff_runs(out_dir, out_dir, tmp_path)
    assert completed.returncode == 0, completed.stderr
    compared = diff.diff_directories(out_dir, out_dir)
    assert len(compared.figures) > 100 and not compared.only_old and not compared.only_new
    assert {figure.verdict for figure in compared.figures} == {"no difference"}
    count = len(compared.figures)
    assert f"{count} figures compared (1 vs 1 run(s) per figure): {count} no difference" in completed.stdout
    assert (tmp_path / "diff.md").is_file() and (tmp_path / "diff.html").is_file()


def test_a_slowed_server_is_flagged_worse_and_one_run_claims_nothing(quick_run, tmp_path):
    """The slowed run is constructed, not measured: the real run's results.json with every
    requests/s of the threads server at 60% of what it measured and its p99 latencies at 1.5x,
    the rest as measured (a second real run under a slowed server would cost minutes). The
    diff must read each throughput drop and latency rise as worse, and, with one run a side,
    judge none of them."""
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    scale = {"requests_per_second": 0.6, "p99_us": 1.5}
    for entries in results["scenarios"].values():
        for entry in entries:
            for name, factor in scale.items():
                summary = entry["figures"].get(name)
                if entry["model"] == "threads" and summary:
                    summary["runs"] = [value * factor for value in summary["runs"]]
                    summary.update(median=summary["median"] * factor, min=summary["min"] * factor,
                                   max=summary["max"] * factor)
    slowed = tmp_path / "slowed"
    slowed.mkdir()
    (slowed / "results.json").write_text(json.dumps(results))
    completed = diff_runs(out_dir, slowed, slowed)
    assert completed.returncode == 0, completed.stderr
    assert "One run per figure on a side: no difference can be told" in completed.stdout
    changed = [f for f in diff.diff_directories(out_dir, slowed).figures if f.verdict != "no difference"]
    assert changed and {(f.model, f.name) for f in changed} <= {("threads", name) for name in scale}
    assert {f.change for f in changed} == {"worse"} and {f.verdict for f in changed} == {"cannot tell"}
    assert sum(f.name == "requests_per_second" for f in changed) >= len(results["plan"]["concurrency"]) * 2
    assert "-40.0% (worse), one run on a side: cannot tell beyond a single run's noise" in \
        (slowed / "diff.md").read_text()


def test_the_html_report_opens_offline_with_no_console_error_and_no_request(page_in_browser):
    contents, console, requests = page_in_browser
    assert console == []
    assert requests == []
    assert not {"script", "link", "img", "iframe", "object", "embed"} & contents.elements
    assert all(link.startswith("#") for link in contents.links), [l for l in contents.links if not l.startswith("#")]


def test_every_chart_of_the_html_report_has_marks_drawn_from_the_figures(page_in_browser):
    contents, _, _ = page_in_browser
    assert {chart for chart in contents.marks if not chart.startswith("series-")} == HTML_CHARTS
    assert all(count > 0 for count in contents.marks.values()), contents.marks


def test_the_html_report_draws_each_run_over_time(quick_run, page_in_browser):
    out_dir, _ = quick_run
    contents, _, _ = page_in_browser
    results = json.loads((out_dir / "results.json").read_text())
    series_charts = {chart: marks for chart, marks in contents.marks.items() if chart.startswith("series-")}
    # A line per run of every server (a line needs two points): the closed loop's first row (the
    # models and the floors), and the hold with the server's scrapes (its CPU is a difference:
    # one point fewer than scrapes).
    def lines(scenario: str, column: str, part: str = "load", row: list | None = None) -> int:
        servers = {entry["model"] for entry in results["series"][scenario]}
        return sum(sum(v is not None for v in run[part][column]) >= 2
                   for m in servers for run in series_of(results, scenario, m, row))

    rows = []
    for entry in results["series"]["closed_loop"]:
        rows += [entry["row"]] if entry["row"] not in rows else []
    first_row = ["echolab-load", results["plan"]["concurrency"][0]]
    index = rows.index(first_row)
    assert series_charts.get(f"series-closed_loop-{index}-rate") == lines("closed_loop", "requests", row=first_row) > 0
    assert series_charts.get(f"series-closed_loop-{index}-p99") == lines("closed_loop", "p99_us", row=first_row) > 0
    for name, part, column in (("rate", "load", "requests"), ("p99", "load", "p99_us"),
                               ("held", "server", "connections"), ("cpu", "server", "cpu_cores"),
                               ("pss", "server", "pss_mib")):
        assert series_charts.get(f"series-hold-0-{name}") == lines("hold", column, part) > 0, (name, series_charts)
    assert "details" in contents.elements


def test_the_html_reports_figures_are_results_json_s_and_its_claims_link_to_their_experiment(quick_run,
                                                                                               page_in_browser):
    out_dir, _ = quick_run
    contents, _, _ = page_in_browser
    results = json.loads((out_dir / "results.json").read_text())
    sample = [("closed_loop", ["echolab-load", 100], "requests_per_second"), ("hold", None, "pss_per_connection_kib"),
              ("crash", None, "connections_lost"), ("probe", ["spawn"], "fork_p50_us")]
    checked = 0
    for scenario, row, name in sample:
        for entry in results["scenarios"][scenario]:
            if row is not None and entry["row"] != row:
                continue
            key = f"{scenario}/{','.join(str(p) for p in entry['row'])}/{entry['model']}/{name}"
            if name not in entry["figures"]:  # every run of the row failed: no figure to show
                assert entry["failed_runs"] and key not in contents.cells, key
                continue
            median = entry["figures"][name]["median"]
            cell = contents.cells[key]
            assert cell["median"] == median
            number, unit = re.match(r"([\d,.]+) ?(ms|us|s|KiB)?", cell["text"]).groups()
            shown = float(number.replace(",", "")) * {"ms": 1e3, "s": 1e6}.get(unit, 1)
            assert abs(shown - median) <= 0.01 * abs(median) + 0.05, (name, cell, median)
            checked += 1
    assert checked >= 8
    # Each claim's row links to the section of its experiment, and every link lands.
    assert {"#probe", "#crash", "#hold", "#slow_clients", "#blast_radius"} <= set(contents.links)
    assert {link[1:] for link in contents.links} <= contents.ids
    assert {f"claim-{claim['key']}" for claim in results["claims"]} <= contents.ids


def hgrm_lines(path: Path) -> tuple[list[tuple[float, float, int]], dict]:
    """The (value, percentile, total count) rows of an .hgrm file and its footer's figures."""
    text = path.read_text()
    assert text.startswith("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"), path
    rows = []
    for line in text.splitlines()[2:]:
        if line.startswith("#"):
            continue
        fields = line.split()
        assert len(fields) == (3 if float(fields[1]) == 1.0 else 4), line
        if len(fields) == 4:
            assert abs(float(fields[3]) - 1 / (1 - float(fields[1]))) <= 0.01 * float(fields[3]), line
        rows.append((float(fields[0]), float(fields[1]), int(fields[2])))
    footer = dict(re.findall(r"(Mean|Max|Total count)\s+=\s+([\d.]+)", text))
    return rows, footer


def test_every_latency_histogram_is_written_as_hgrm_and_its_percentiles_are_results_json_s(quick_run):
    out_dir, _ = quick_run
    results = json.loads((out_dir / "results.json").read_text())
    raw = out_dir / "raw"
    load_results = [p for p in raw.glob("*.json") if json.loads(p.read_text()).get("tool") == "echolab-load"]
    assert load_results and all((raw / f"{p.stem}.latency.hgrm").exists() for p in load_results
                                if json.loads(p.read_text())["requests"] > 0)
    for connections in results["plan"]["concurrency"]:
        for model in MODELS:
            data = json.loads((raw / f"closed-{connections}-{model}-0.json").read_text())
            rows, footer = hgrm_lines(raw / f"closed-{connections}-{model}-0.latency.hgrm")
            assert int(footer["Total count"]) == rows[-1][2] == data["latency_us"]["count"]
            assert abs(float(footer["Max"]) - data["latency_us"]["max"]) <= 0.1
            for column in (0, 2):  # values and counts only grow
                assert [r[column] for r in rows] == sorted(r[column] for r in rows)
            for key, level in (("p50_us", 0.5), ("p99_us", 0.99)):
                wanted = figure(results, "closed_loop", model, key, ["echolab-load", connections])
                first = next(i for i, row in enumerate(rows) if row[1] >= level)
                # The percentile lies between the rows around its level, to the histogram's 1/128.
                assert rows[first - 1][0] * (1 - 1 / 128) - 0.1 <= wanted <= rows[first][0] + 0.1, (model, key)
                if rows[first][1] == level:  # 50 % is one of HdrHistogram's levels: the value itself
                    assert abs(rows[first][0] - wanted) <= max(0.1, wanted / 128), (model, key)
