"""The dashboards' queries as Grafana sends them, run against a real Prometheus, and the traffic
that gives every one of them data: for test_dashboards (Prometheus scraping servers on loopback)
and test_compose (the stack's Prometheus)."""

import json
import math
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from harness import LOOPBACK, MODELS, SOURCE_DIR, http_exchange

DASHBOARD_DIR = SOURCE_DIR / "dashboards"

# Spawn latency is shown only for the models that spawned a worker in the window; the pool
# creates its threads once, at start, before any window that follows the first scrape, and
# hybrid its worker processes.
SPAWN_LATENCY = re.compile(r"echolab_worker_spawn_seconds_bucket")
SPAWNS_ONLY_AT_START = {"pool", "hybrid"}

# Enough connections that prefork runs short of spare children and forks more.
LOAD_CONNECTIONS = 40


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def load_dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in dashboard_files()}


def all_panels(dashboard: dict) -> list[dict]:
    """Every panel, including those inside collapsed rows."""
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries() -> list[tuple[str, str, str, list[str]]]:
    """Every query with the values Grafana gives $model: all models at once where the variable
    is multi-valued (the default "All"), each model in turn where it is single-valued."""
    queries = []
    for dashboard in load_dashboards().values():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        models = ["|".join(MODELS)] if variables["model"]["multi"] else list(MODELS)
        for panel in all_panels(dashboard):
            for target in panel.get("targets", []):
                queries.append((dashboard["title"], panel["title"], target["expr"], models))
    return queries


def substitute(expr: str, rate_interval: str, time_range: str, model: str = "|".join(MODELS)) -> str:
    """What Grafana sends to Prometheus for the dashboard's variables."""
    return (expr.replace("$__rate_interval", rate_interval).replace("$__range", time_range)
            .replace("${model}", model).replace("$model", model))


def query(prometheus_url: str, expr: str) -> list[dict]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"Prometheus refused {expr}: {error.read().decode(errors='replace')}")
    assert body["status"] == "success", body
    return body["data"]["result"]


def missing_data(prometheus_url: str, rate_interval: str, time_range: str) -> list[str]:
    """The dashboard queries that return no finite value for some model (empty when all do)."""
    problems = []
    for dashboard, panel, expr, model_values in dashboard_queries():
        seen = set()
        for model in model_values:
            result = query(prometheus_url, substitute(expr, rate_interval, time_range, model))
            # A series summed over the model label stands for the models of the selector.
            seen |= {label for series in result if math.isfinite(float(series["value"][1]))
                     for label in series["metric"].get("model", model).split("|")}
        expected = set(MODELS) - (SPAWNS_ONLY_AT_START if SPAWN_LATENCY.search(expr) else set())
        if not expected <= seen:
            promql = substitute(expr, rate_interval, time_range)
            problems.append(f"{dashboard} / {panel}: no data for {sorted(expected - seen)} in {promql}")
    return problems


def wait_for_dashboard_data(prometheus_url: str, rate_interval: str, time_range: str,
                            timeout: float) -> list[str]:
    """The problems of missing_data once none are left or `timeout` has passed; then with what
    Prometheus last saw of each target, since a scrape that failed explains a missing model."""
    deadline = time.monotonic() + timeout
    while True:
        problems = missing_data(prometheus_url, rate_interval, time_range)
        if not problems:
            return problems
        if time.monotonic() > deadline:
            return problems + scrape_health(prometheus_url)
        time.sleep(1)


def active_targets(prometheus_url: str) -> list[dict]:
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/targets", timeout=5) as response:
        return json.load(response)["data"]["activeTargets"]


def targets_up(prometheus_url: str) -> dict[str, str]:
    return {target["labels"]["job"]: target["health"] for target in active_targets(prometheus_url)}


def scrape_health(prometheus_url: str) -> list[str]:
    """A line per target: its health, how long its last scrape took, and its error if any."""
    return [f"target {target['labels']['job']}: {target['health']}, last scrape "
            f"{target['lastScrapeDuration'] * 1000:.0f} ms {target['lastError']}".rstrip()
            for target in active_targets(prometheus_url)]


# --- traffic that gives every panel data ----------------------------------------------------

def open_idle_connections(port: int, count: int) -> list:
    """Keep-alive connections that each had one answer and then stay open, so that the servers
    have connections open (and memory per connection a value) whenever Prometheus looks."""
    connections = []
    for _ in range(count):
        conn = socket.create_connection((LOOPBACK, port), timeout=5)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: echolab\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        connections.append(conn)
    return connections


def provoke_a_bad_request_and_a_raw_echo(port: int) -> None:
    """One 400 and one raw echo, so that the error and protocol series exist."""
    assert http_exchange(port, b"GET / HTTP/1.1\r\nHost\r\n\r\n").startswith(b"HTTP/1.1 400")
    with socket.create_connection((LOOPBACK, port), timeout=5) as conn:
        conn.sendall(b"\x00\x01raw echo\n")
        assert conn.recv(64) == b"\x00\x01raw echo\n"


def start_an_unfinished_header(port: int) -> socket.socket:
    """A request whose header section never ends, which the server cuts after
    --header-timeout: one header timeout for the slow-client panels to show."""
    conn = socket.create_connection((LOOPBACK, port), timeout=5)
    conn.sendall(b"GET / HTTP/1.1\r\nHost: echolab\r\n")
    return conn


def start_load(port: int, seconds: int) -> list[subprocess.Popen]:
    """Keep-alive throughput, and a new connection per request all along (worker spawns)."""
    url = f"http://{LOOPBACK}:{port}/"
    return [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for command in (["wrk", "-t1", f"-c{LOAD_CONNECTIONS}", f"-d{seconds}s", url],
                            ["wrk", "-t1", "-c2", f"-d{seconds}s", "-H", "Connection: close", url])]


def stop_traffic(loads: list[subprocess.Popen], held: list) -> None:
    """Ends what start_load and open_idle_connections began."""
    for load in loads:
        load.kill()
        load.wait()
    for conn in held:
        conn.close()
