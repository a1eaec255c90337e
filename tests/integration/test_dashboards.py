"""The Grafana dashboards: their JSON is sound, they use the provisioned data source and the
metric names of the metrics contract correctly, and every PromQL expression they hold returns
data from a real Prometheus scraping the real servers under load."""

import json
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from dashboard_queries import (DASHBOARD_DIR, all_panels, dashboard_files, dashboard_queries, load_dashboards,
                               open_idle_connections, provoke_a_bad_request_and_a_raw_echo,
                               scrape_health, start_an_unfinished_header, start_load, stop_traffic, substitute,
                               targets_up, wait_for_dashboard_data)
from harness import LOOPBACK, MODELS, SOURCE_DIR, Server, free_port, run
from scraping import scrape

PROVISIONING_DIR = DASHBOARD_DIR / "provisioning"
COMPOSE_FILE = SOURCE_DIR / "docker-compose.yml"

# The metrics contract (docs/metrics.md, "The series"): name -> type.
CONTRACT = {
    "echolab_connections_accepted_total": "counter",
    "echolab_connections_active": "gauge",
    "echolab_connections_rejected_total": "counter",
    "echolab_connections_lost_total": "counter",
    "echolab_connections_timed_out_total": "counter",
    "echolab_requests_total": "counter",
    "echolab_request_errors_total": "counter",
    "echolab_bytes_received_total": "counter",
    "echolab_bytes_sent_total": "counter",
    "echolab_request_duration_seconds": "histogram",
    "echolab_worker_spawn_seconds": "histogram",
    "echolab_workers": "gauge",
    "echolab_worker_crashes_total": "counter",
    "echolab_memory_rss_bytes": "gauge",
    "echolab_memory_pss_bytes": "gauge",
    "echolab_context_switches_total": "counter",
    "echolab_processes": "gauge",
    "echolab_threads": "gauge",
}
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")
RATE_FUNCTIONS = {"rate", "irate", "increase"}
# Panels that draw text or links rather than series carry no unit.
UNITLESS_PANEL_TYPES = {"row", "text", "dashlist", "news"}
# What every dashboard shows, however it is laid out: the rate of each of these counters summed
# by at least these labels (the clients cut for being too slow, by timeout; the connections
# refused over a limit).
EVERY_DASHBOARD_RATES = {
    "echolab_connections_timed_out_total": {"model", "kind"},
    "echolab_connections_rejected_total": {"model"},
}
TIMED_OUT = "echolab_connections_timed_out_total"

METRIC = re.compile(r"\becholab_[a-z_]+\b")
RANGE = re.compile(r"\[([^\]]+)\]")


def provisioned_datasource_uid() -> str:
    text = (PROVISIONING_DIR / "datasources" / "echolab.yml").read_text()
    match = re.search(r"^\s+uid:\s*(\S+)\s*$", text, re.MULTILINE)
    assert match, "the data source provisioning file names no uid"
    return match.group(1)


def dashboard_expressions() -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL) for every query of every dashboard."""
    return [(title, panel, expr) for title, panel, expr, _ in dashboard_queries()]


def innermost_call(expr: str, position: int) -> str | None:
    """The name of the innermost function call whose parentheses enclose `position`."""
    depth = 0
    for index in range(position - 1, -1, -1):
        char = expr[index]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                name = re.search(r"([a-z_]+)\s*(?:(?:by|without)\s*\([^)]*\)\s*)?$", expr[:index])
                return name.group(1) if name else None
            depth -= 1
    return None


# --- the JSON, without any server ---------------------------------------------------------

def test_the_overview_dashboard_exists():
    titles = {board["title"] for board in load_dashboards().values()}
    assert "Processes vs threads" in titles


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_is_valid_json_with_a_unique_uid(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"]
    others = [b["uid"] for name, b in load_dashboards().items() if name != path.name]
    assert dashboard["uid"] not in others


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_panel_ids_are_unique(path):
    ids = [panel["id"] for panel in all_panels(json.loads(path.read_text()))]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}: {sorted(ids)}"


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_panels_fit_the_grid_without_overlapping(path):
    cells = {}
    for panel in all_panels(json.loads(path.read_text())):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_panel_and_query_uses_the_provisioned_data_source(path):
    uid = provisioned_datasource_uid()
    for panel in all_panels(json.loads(path.read_text())):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == uid, panel["title"]


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_panel_has_a_unit(path):
    for panel in all_panels(json.loads(path.read_text())):
        if panel["type"] in UNITLESS_PANEL_TYPES:
            continue
        assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), panel["title"]


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_has_a_model_variable_with_every_model(path):
    variables = {v["name"]: v for v in json.loads(path.read_text())["templating"]["list"]}
    assert "model" in variables
    values = {option["value"] for option in variables["model"]["options"]}
    assert set(MODELS) <= values


def test_every_counter_is_inside_rate_or_increase():
    for dashboard, panel, expr in dashboard_expressions():
        for match in METRIC.finditer(expr):
            name = match.group(0)
            if name.endswith("_total") or name.endswith(HISTOGRAM_SERIES):
                call = innermost_call(expr, match.start())
                assert call in RATE_FUNCTIONS, f"{dashboard} / {panel}: {name} inside {call}() in {expr}"


def test_every_range_is_grafanas_interval_not_a_fixed_window():
    for dashboard, panel, expr in dashboard_expressions():
        for window in RANGE.findall(expr):
            assert window in ("$__rate_interval", "$__range"), f"{dashboard} / {panel}: [{window}]"


def test_every_selector_filters_by_the_model_variable():
    for dashboard, panel, expr in dashboard_expressions():
        for match in METRIC.finditer(expr):
            assert expr[match.end():].startswith('{model=~"$model"'), \
                f"{dashboard} / {panel}: {match.group(0)} is not filtered by $model in {expr}"


def test_dashboards_use_exactly_the_metrics_contract():
    used = set()
    for dashboard, panel, expr in dashboard_expressions():
        for name in METRIC.findall(expr):
            base = name
            for suffix in HISTOGRAM_SERIES:
                if name.endswith(suffix) and name[: -len(suffix)] in CONTRACT:
                    base = name[: -len(suffix)]
            assert base in CONTRACT, f"{dashboard} / {panel}: {name} is not in the metrics contract"
            if base != name:
                assert CONTRACT[base] == "histogram", f"{name}: {base} is not a histogram"
            used.add(base)
    assert used == set(CONTRACT), f"contract metrics on no dashboard: {sorted(set(CONTRACT) - used)}"


def rated_by(expr: str, metric: str) -> set[str] | None:
    """The labels of `sum by (...) (rate(metric...))` in expr, or None where it has none."""
    match = re.search(rf"sum by \(([^)]*)\) \(rate\({metric}\{{", expr)
    return {label.strip() for label in match.group(1).split(",")} if match else None


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_every_dashboard_shows_slow_client_cuts_by_kind_and_rejections(path):
    dashboard = json.loads(path.read_text())
    expressions = [target["expr"] for panel in all_panels(dashboard)
                   for target in panel.get("targets", [])]
    for metric, labels in EVERY_DASHBOARD_RATES.items():
        shown = [rated_by(expr, metric) for expr in expressions]
        assert any(by is not None and labels <= by for by in shown), \
            f"{path.name}: no panel shows the rate of {metric} by {sorted(labels)}"


def test_the_slow_client_check_catches_a_panel_without_the_kind():
    summed = 'sum by (model) (rate(echolab_connections_timed_out_total{model=~"$model"}[1s]))'
    by_kind = 'sum by (model, kind) (rate(echolab_connections_timed_out_total{model=~"$model"}[1s]))'
    assert rated_by(summed, TIMED_OUT) == {"model"}
    assert rated_by(by_kind, TIMED_OUT) == {"model", "kind"}
    assert rated_by(summed, "echolab_connections_rejected_total") is None


def test_provisioning_points_grafana_at_the_compose_prometheus_and_dashboards():
    datasource = (PROVISIONING_DIR / "datasources" / "echolab.yml").read_text()
    assert re.search(r"^\s+url:\s*http://prometheus:9090\s*$", datasource, re.MULTILINE)
    prometheus_config = (SOURCE_DIR / "deploy/prometheus/prometheus.yml").read_text()
    scrape = re.search(r"scrape_interval:\s*(\S+)", prometheus_config)
    assert re.search(rf"timeInterval:\s*{re.escape(scrape.group(1))}\s*$", datasource, re.MULTILINE), \
        "the data source's timeInterval must equal Prometheus's scrape_interval"
    provider = (PROVISIONING_DIR / "dashboards" / "echolab.yml").read_text()
    path = re.search(r"^\s+path:\s*(\S+)\s*$", provider, re.MULTILINE).group(1)
    compose = COMPOSE_FILE.read_text()
    assert f"./dashboards:{path}:ro" in compose, f"docker-compose.yml mounts no dashboards/ at {path}"
    assert "./dashboards/provisioning:/etc/grafana/provisioning:ro" in compose
    home = re.search(r"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH:\s*(\S+)", compose).group(1)
    assert home.startswith(path + "/") and (DASHBOARD_DIR / Path(home).name).is_file(), home


def test_every_expression_is_valid_promql(tmp_path):
    """promtool parses each query, with Grafana's variables filled in, as a recording rule."""
    rules = "".join(f"      - record: echolab_dashboard_query_{index}\n"
                    f"        expr: {json.dumps(substitute(expr, '8s', '15m'))}\n"
                    for index, (_, _, expr) in enumerate(dashboard_expressions()))
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(f"groups:\n  - name: dashboards\n    rules:\n{rules}")
    result = run("promtool", "check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(dashboard_expressions())} rules found" in result.stdout


def test_the_counter_check_catches_a_bare_counter():
    """The scanner above must fail on the mistakes it is there to catch."""
    bare = 'sum by (model) (echolab_requests_total{model=~"$model"})'
    rated = 'sum by (model) (rate(echolab_requests_total{model=~"$model"}[$__rate_interval]))'
    quantile = ('histogram_quantile(0.5, sum by (model, le) (rate('
                'echolab_request_duration_seconds_bucket{model=~"$model"}[$__rate_interval])))')
    assert innermost_call(bare, bare.index("echolab")) == "sum"
    assert innermost_call(rated, rated.index("echolab")) == "rate"
    assert innermost_call(quantile, quantile.index("echolab")) == "rate"


# --- every expression against a real Prometheus scraping the real servers -------------------

SCRAPE_INTERVAL_S = 1
# What Grafana makes of $__rate_interval with this scrape interval: four scrapes.
RATE_INTERVAL = f"{4 * SCRAPE_INTERVAL_S}s"
LOAD_SECONDS = 20
# Short enough that a header section left unfinished is cut early in the load.
HEADER_TIMEOUT_S = 2


def start_prometheus(scrape_targets: dict[str, str], workdir: Path) -> tuple[subprocess.Popen, str]:
    """Debian's prometheus on a free loopback port, scraping {job: host:port} every second."""
    jobs = "".join(f"  - job_name: {job}\n    static_configs:\n      - targets: ['{address}']\n"
                   for job, address in scrape_targets.items())
    config = workdir / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
                      f"  scrape_timeout: {SCRAPE_INTERVAL_S}s\nscrape_configs:\n{jobs}")
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address={LOOPBACK}:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, (workdir / "prometheus.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise TimeoutError(f"prometheus not ready on {url}")


def wait_until_scraped(prometheus_url: str, timeout: float = 30) -> None:
    """Until every target has been scraped, so that the load starts after the first samples
    (a rate cannot see what happened before a series' first sample)."""
    deadline = time.monotonic() + timeout
    while set(targets_up(prometheus_url).values()) != {"up"}:
        assert time.monotonic() < deadline, targets_up(prometheus_url)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def loaded_servers_and_prometheus():
    servers = [Server(model, "--header-timeout", f"{HEADER_TIMEOUT_S}s").start() for model in MODELS]
    held, loads = [], []
    prometheus = None
    try:
        with tempfile.TemporaryDirectory(prefix="echolab-prometheus-") as workdir:
            prometheus, url = start_prometheus(
                {s.model: f"{LOOPBACK}:{s.metrics_port}" for s in servers}, Path(workdir))
            wait_until_scraped(url)
            started = time.monotonic()
            for server in servers:
                provoke_a_bad_request_and_a_raw_echo(server.port)
                held += open_idle_connections(server.port, 5)
                held.append(start_an_unfinished_header(server.port))
                loads += start_load(server.port, LOAD_SECONDS)
            yield url, started, servers
    finally:
        stop_traffic(loads, held)
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=15)
        for server in servers:
            server.stop()


def test_prometheus_scrapes_every_server(loaded_servers_and_prometheus):
    url, _, _ = loaded_servers_and_prometheus
    deadline = time.monotonic() + 15
    while set(targets_up(url).values()) != {"up"} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert targets_up(url) == {model: "up" for model in MODELS}


def test_every_dashboard_expression_returns_data_under_load(loaded_servers_and_prometheus):
    url, started, servers = loaded_servers_and_prometheus
    # A few scrapes under load first, so that every rate has samples to work with.
    time.sleep(3 * 4 * SCRAPE_INTERVAL_S / 2)
    time_range = f"{int(time.monotonic() - started) + 60}s"
    problems = wait_for_dashboard_data(url, RATE_INTERVAL, time_range, timeout=LOAD_SECONDS / 2)
    assert not problems, "\n".join(problems)
    assert all(server.alive() for server in servers)


def query_range(prometheus_url: str, expr: str, start: float, end: float) -> list[dict]:
    """What a time-series panel draws: expr at every second from start to end."""
    params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1s"}
    url = f"{prometheus_url}/api/v1/query_range?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def header_cuts_missing(prometheus_url: str, start: float) -> dict[str, set[str]]:
    """The slow-client panels in which some model draws no header timeout above zero, with
    those models."""
    missing = {}
    for dashboard, panel, expr, model_values in dashboard_queries():
        if TIMED_OUT not in expr or "$__rate_interval" not in expr:
            continue
        cut = set()
        for model in model_values:
            promql = substitute(expr, RATE_INTERVAL, "1h", model)
            for series in query_range(prometheus_url, promql, start, time.time()):
                labels = series["metric"]
                if labels.get("kind") == "header" and any(float(v) > 0 for _, v in series["values"]):
                    cut.add(labels.get("model", model))
        if cut != set(MODELS):
            missing[f"{dashboard} / {panel}"] = set(MODELS) - cut
    return missing


def header_timeouts_counted(servers: list[Server]) -> str:
    """What each server's own /metrics says of its header timeouts: tells, when a panel draws
    none, whether the server did not count one or Prometheus did not see it."""
    return ", ".join(f"{server.model} {scrape(server).value(TIMED_OUT, kind='header'):.0f}"
                     for server in servers)


def test_the_timeout_panels_draw_the_header_timeout_of_every_model(loaded_servers_and_prometheus):
    url, started, servers = loaded_servers_and_prometheus
    start = time.time() - (time.monotonic() - started) - 5
    deadline = time.monotonic() + HEADER_TIMEOUT_S + 8 * 4 * SCRAPE_INTERVAL_S
    # A rate over four scrapes draws a single cut only if no scrape around it was missed,
    # which a busy machine does not promise: a new unfinished header every round, for the
    # models not drawn yet, gives each panel one cut after another until it draws one.
    unfinished = []
    try:
        while (missing := header_cuts_missing(url, start)) and time.monotonic() < deadline:
            not_drawn = set().union(*missing.values())
            unfinished += [start_an_unfinished_header(server.port) for server in servers
                           if server.model in not_drawn]
            time.sleep(1)
        assert not missing, "\n".join(
            [f"{panel}: no header timeout drawn for {sorted(models)}" for panel, models in missing.items()]
            + [f"header timeouts counted: {header_timeouts_counted(servers)}"] + scrape_health(url))
    finally:
        for conn in unfinished:
            conn.close()
    assert all(server.alive() for server in servers)
