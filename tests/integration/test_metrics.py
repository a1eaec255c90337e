"""The metrics contract on every real server: exact counts for the test's own traffic,
promtool on every endpoint idle and under load, and a real Prometheus scraping all four.

Each test starts the servers it needs (harness.Server) and stops them after."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from harness import (LOOPBACK, MODELS, Server, eventually, free_port, http_exchange, metrics_pid,
                     spawned_children, wait_for_port)
from scraping import Scrape, promtool_check, scrape

PROMETHEUS = "/usr/bin/prometheus"

# Small worker counts, so that spawn counts stay exact and cheap to check.
SMALL = {
    "prefork": ("--start-servers", "3", "--min-spare", "2", "--max-spare", "6"),
    "threads": (),
    "pool": ("--threads", "3"),
    "hybrid": ("--workers", "3"),
}


class HttpClient:
    """A keep-alive HTTP/1.1 client that counts every byte it sends and receives."""

    def __init__(self, port: int):
        self.conn = socket.create_connection((LOOPBACK, port), timeout=10)
        self.sent = 0
        self.received = 0
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: echolab\r\n"
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        message = head.encode() + b"\r\n" + body
        self.conn.sendall(message)
        self.sent += len(message)
        return self._response()

    def _fill(self) -> None:
        chunk = self.conn.recv(65536)
        assert chunk, "the server closed the connection"
        self.received += len(chunk)
        self.buffer += chunk

    def _response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(rest) < length:
            self._fill()
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        self.buffer = rest[length:]
        return int(head.split(b" ", 2)[1]), rest[:length]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ab_load(server: Server, seconds: int, concurrency: int = 4) -> subprocess.Popen:
    """ApacheBench keep-alive load for `seconds`, in the background."""
    return subprocess.Popen(["ab", "-q", "-k", "-c", str(concurrency), "-t", str(seconds),
                             "-n", "10000000", server.url("/")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def check_workers(model: str, metrics: Scrape, open_connections: int) -> None:
    idle = metrics.value("echolab_workers", model=model, state="idle")
    busy = metrics.value("echolab_workers", model=model, state="busy")
    if model in ("pool", "hybrid"):  # the N threads or processes, busy only while they handle bytes
        assert idle + busy == 3, metrics.text
    else:  # a process or thread per open connection
        assert busy == open_connections, metrics.text


def bucket_upper_bound(metrics: Scrape, histogram: str, model: str, quantile: float) -> str:
    """The upper bound of the bucket holding the quantile (what the buckets can tell)."""
    buckets = sorted(((float(labels["le"]), value) for labels, value in
                      metrics.series(f"{histogram}_bucket", model=model)))
    total = buckets[-1][1]
    for bound, cumulative in buckets:
        if total and cumulative >= quantile * total:
            return f"<= {bound * 1e6:g} us"
    return "none yet"


def summary(model: str, metrics: Scrape) -> str:
    def value(name, **labels):
        return metrics.value(name, model=model, **labels)

    return (f"{value('echolab_requests_total', protocol='http'):.0f} requests, "
            f"workers {value('echolab_workers', state='busy'):.0f} busy / "
            f"{value('echolab_workers', state='idle'):.0f} idle, "
            f"{value('echolab_processes'):.0f} processes, {value('echolab_threads'):.0f} threads, "
            f"RSS {value('echolab_memory_rss_bytes') / 2**20:.1f} MiB, "
            f"PSS {value('echolab_memory_pss_bytes') / 2**20:.1f} MiB, "
            f"context switches {value('echolab_context_switches_total', kind='voluntary'):.0f} "
            f"voluntary / {value('echolab_context_switches_total', kind='involuntary'):.0f} "
            f"involuntary, spawn p50 "
            f"{bucket_upper_bound(metrics, 'echolab_worker_spawn_seconds', model, 0.5)}")


@pytest.mark.parametrize("model", MODELS)
def test_counters_follow_the_clients_own_traffic(model):
    with Server(model, *SMALL[model]) as server:
        before = scrape(server)
        promtool_check(before.text)
        requests, sent, received = 0, 0, 0
        for connection in range(3):
            with HttpClient(server.port) as client:
                for index in range(40):
                    status, body = client.request("GET", f"/c{connection}/r{index}")
                    assert status == 200
                status, body = client.request("POST", "/echo", b"x" * (1000 + connection))
                assert body == b"x" * (1000 + connection)
                requests += 41
                sent += client.sent
                received += client.received
        with HttpClient(server.port) as client:  # fault injection is off: a 404
            assert client.request("GET", "/crash")[0] == 404
            requests += 1
            sent += client.sent
            received += client.received

        def grown(name, **labels):
            return lambda metrics: (metrics.value(name, model=model, **labels)
                                    - before.value(name, model=model, **labels))

        requests_grown = grown("echolab_requests_total", protocol="http")
        after = eventually(lambda: scrape(server),
                           lambda metrics: requests_grown(metrics) >= requests
                           and grown("echolab_bytes_sent_total")(metrics) >= received
                           and metrics.value("echolab_connections_active", model=model) == 0)
        assert requests_grown(after) == requests
        assert grown("echolab_requests_total", protocol="raw")(after) == 0
        assert grown("echolab_bytes_received_total")(after) == sent
        assert grown("echolab_bytes_sent_total")(after) == received
        assert grown("echolab_request_duration_seconds_count")(after) == requests
        assert grown("echolab_request_duration_seconds_bucket", le="+Inf")(after) == requests
        assert grown("echolab_request_errors_total", status="404")(after) == 1
        assert grown("echolab_connections_accepted_total")(after) == 4
        assert after.value("echolab_connections_active", model=model) == 0
        promtool_check(after.text)


@pytest.mark.parametrize("model", MODELS)
def test_active_connections_go_up_and_back_down(model):
    with Server(model, *SMALL[model]) as server:
        clients = [HttpClient(server.port) for _ in range(4)]
        try:
            for client in clients:  # answered, so surely accepted by a worker
                assert client.request("GET", "/")[0] == 200
            opened = eventually(lambda: scrape(server), lambda metrics: metrics.value(
                "echolab_connections_active", model=model) == 4)
            assert opened.value("echolab_connections_active", model=model) == 4
            check_workers(model, opened, 4)
        finally:
            for client in clients:
                client.close()
        closed = eventually(lambda: scrape(server), lambda metrics: metrics.value(
            "echolab_connections_active", model=model) == 0)
        assert closed.value("echolab_connections_active", model=model) == 0
        check_workers(model, closed, 0)


@pytest.mark.parametrize("model", MODELS)
def test_promtool_passes_under_load_and_proc_stats_add_up(model):
    with Server(model, *SMALL[model]) as server:
        load = ab_load(server, seconds=3)
        scrapes, scrape_seconds = [], []
        try:
            time.sleep(0.5)
            for _ in range(4):
                started = time.monotonic()
                scrapes.append(scrape(server))
                scrape_seconds.append(time.monotonic() - started)
                time.sleep(0.4)
        finally:
            output = load.communicate(timeout=30)[0]
        assert load.returncode == 0, output
        for metrics in scrapes:
            promtool_check(metrics.text)
        assert max(scrape_seconds) < 1.0, scrape_seconds
        loaded = scrapes[-1]
        assert loaded.value("echolab_requests_total", model=model, protocol="http") > 100
        rss = loaded.value("echolab_memory_rss_bytes", model=model)
        pss = loaded.value("echolab_memory_pss_bytes", model=model)
        assert 0 < pss <= rss
        processes = loaded.value("echolab_processes", model=model)
        threads = loaded.value("echolab_threads", model=model)
        if model == "prefork":  # master, metrics process, children
            assert processes >= 2 + 2
        elif model == "hybrid":  # master, metrics process, the 3 workers
            assert processes == 2 + 3
        else:
            assert processes == 1
            assert threads >= (4 if model == "threads" else 3)  # a thread per connection, or N
        for kind in ("voluntary", "involuntary"):
            first = scrapes[0].value("echolab_context_switches_total", model=model, kind=kind)
            assert loaded.value("echolab_context_switches_total", model=model, kind=kind) >= first
        assert loaded.value("echolab_context_switches_total", model=model, kind="voluntary") > 0
        print(f"\n{model} under load: {summary(model, loaded)}, "
              f"slowest scrape {max(scrape_seconds) * 1000:.1f} ms")


def test_prefork_spawns_crashes_and_recycles_without_going_backwards():
    with Server("prefork", *SMALL["prefork"], "--fault-injection",
                "--max-connections-per-child", "5") as server:
        def spawn_count(metrics):
            return metrics.value("echolab_worker_spawn_seconds_count", model="prefork")

        # Every child forked so far has reported its spawn time.
        settled = eventually(lambda: scrape(server),
                             lambda metrics: spawn_count(metrics) == spawned_children(server))
        assert spawn_count(settled) == spawned_children(server) >= 3

        # Two crashes, each losing the connection that asked for it.
        before = scrape(server)
        for _ in range(2):
            with socket.create_connection((LOOPBACK, server.port), timeout=10) as conn:
                conn.sendall(b"GET /crash HTTP/1.1\r\nHost: echolab\r\n\r\n")
                try:
                    assert conn.recv(65536) == b""  # closed by the crash, no answer
                except ConnectionResetError:
                    pass
        crashed = eventually(lambda: scrape(server), lambda metrics: metrics.value(
            "echolab_worker_crashes_total", model="prefork") >= 2 + before.value(
            "echolab_worker_crashes_total", model="prefork"))
        for name in ("echolab_worker_crashes_total", "echolab_connections_lost_total"):
            assert crashed.value(name, model="prefork") - before.value(name, model="prefork") == 2

        # Thirty connections of two requests each: six children recycled, and not one
        # counter or bucket of any scrape lower than in the scrape before it.
        previous = scrape(server)
        for connection in range(30):
            with HttpClient(server.port) as client:
                for _ in range(2):
                    assert client.request("GET", "/")[0] == 200
            if connection % 3 == 2:
                current = scrape(server)
                went_back = {key: (previous.counters()[key], value)
                             for key, value in current.counters().items()
                             if value < previous.counters().get(key, 0)}
                assert not went_back, went_back
                previous = current
        final = eventually(lambda: scrape(server), lambda metrics: metrics.value(
            "echolab_requests_total", model="prefork", protocol="http") >= 60 + before.value(
            "echolab_requests_total", model="prefork", protocol="http"))
        assert final.value("echolab_requests_total", model="prefork", protocol="http") - \
            before.value("echolab_requests_total", model="prefork", protocol="http") == 60
        settled = eventually(lambda: scrape(server),
                             lambda metrics: spawn_count(metrics) == spawned_children(server))
        assert spawn_count(settled) == spawned_children(server) > spawn_count(before)
        promtool_check(settled.text)


def test_threads_spawns_one_thread_per_connection():
    with Server("threads") as server:
        before = scrape(server)
        for _ in range(10):
            with HttpClient(server.port) as client:
                assert client.request("GET", "/")[0] == 200
        after = eventually(lambda: scrape(server), lambda metrics: metrics.value(
            "echolab_connections_active", model="threads") == 0)
        accepted = (after.value("echolab_connections_accepted_total", model="threads")
                    - before.value("echolab_connections_accepted_total", model="threads"))
        spawned = (after.value("echolab_worker_spawn_seconds_count", model="threads")
                   - before.value("echolab_worker_spawn_seconds_count", model="threads"))
        assert accepted == spawned == 10


def test_pool_spawns_its_threads_once():
    with Server("pool", "--threads", "3") as server:
        metrics = eventually(lambda: scrape(server), lambda m: m.value(
            "echolab_worker_spawn_seconds_count", model="pool") == 3)
        assert metrics.value("echolab_worker_spawn_seconds_count", model="pool") == 3
        with HttpClient(server.port) as client:
            assert client.request("GET", "/")[0] == 200
        assert scrape(server).value("echolab_worker_spawn_seconds_count", model="pool") == 3


def prometheus_api(port: int, path: str, **query: str) -> dict:
    url = f"http://{LOOPBACK}:{port}/api/v1/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


def prometheus_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/-/ready", timeout=5) as response:
            return response.status == 200
    except urllib.error.HTTPError:  # 503 while it starts
        return False


def test_a_real_prometheus_scrapes_every_server():
    servers = [Server(model, *SMALL[model]) for model in MODELS]
    prometheus = None
    with tempfile.TemporaryDirectory(prefix="echolab-prometheus-") as workdir:
        try:
            for server in servers:
                server.start()
            targets = ", ".join(f"'{LOOPBACK}:{server.metrics_port}'" for server in servers)
            config = Path(workdir) / "prometheus.yml"
            config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                              "scrape_configs:\n  - job_name: echolab\n"
                              f"    static_configs:\n      - targets: [{targets}]\n")
            port = free_port()
            prometheus = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir}/data",
                 f"--web.listen-address={LOOPBACK}:{port}", "--log.level=warn"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            wait_for_port(port, timeout=20, process=prometheus)
            # Its port listens before its storage is open; until then the API answers 503.
            assert eventually(lambda: prometheus_ready(port), bool, timeout=60), "never ready"
            loads = [ab_load(server, seconds=20, concurrency=2) for server in servers]
            try:
                def rates():
                    result = prometheus_api(
                        port, "query", query="sum by (model) (rate(echolab_requests_total[15s]))")
                    return {entry["metric"]["model"]: float(entry["value"][1])
                            for entry in result["result"]}

                measured = eventually(rates, lambda found: len(found) == len(MODELS) and all(
                    rate > 0 for rate in found.values()), timeout=15)
                health = {target["labels"]["instance"]: target["health"] for target in
                          prometheus_api(port, "targets")["activeTargets"]}
            finally:
                for load in loads:  # enough load seen: stop it early
                    load.terminate()
                    load.communicate(timeout=30)
            assert health == {f"{LOOPBACK}:{server.metrics_port}": "up" for server in servers}
            assert set(measured) == set(MODELS), measured
            assert all(rate > 0 for rate in measured.values()), measured
        finally:
            if prometheus is not None:
                prometheus.terminate()
                prometheus.wait(timeout=20)
            for server in servers:
                server.stop()


def trickle(port: int, outcome: dict, started_trickling: threading.Event) -> None:
    """A slow client: a scrape request one byte every 50 ms (about 10 s in all); records
    whether, and when, the endpoint cut it."""
    request = b"GET /metrics HTTP/1.1\r\nHost: echolab\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    started = time.monotonic()
    with socket.create_connection((LOOPBACK, port), timeout=10) as conn:
        try:
            for index, byte in enumerate(request):
                conn.send(bytes([byte]))
                if index == 0:
                    started_trickling.set()
                time.sleep(0.05)
        except OSError:
            outcome["cut_after"] = time.monotonic() - started
        started_trickling.set()


def still_open(conn: socket.socket) -> bool:
    """True while the server has neither closed `conn` nor sent anything on it."""
    readable, _, _ = select.select([conn], [], [], 0)
    return not readable


@pytest.mark.parametrize("model", MODELS)
def test_idle_and_slow_connections_do_not_stall_the_metrics_endpoint(model):
    """civetweb serves a connection on one worker thread until its request has arrived:
    idle connections and a client that trickles its request must not hold every worker.
    A scrape that waited for a worker would be answered only once the endpoint dropped a
    stalled connection (its request timeout, 1 s), so each scrape must come back while every
    stalled connection opened before it is still held."""
    with Server(model) as server:
        outcome = {}
        started_trickling = threading.Event()
        slow = threading.Thread(target=trickle, args=(server.metrics_port, outcome, started_trickling))
        slow.start()
        try:
            assert started_trickling.wait(timeout=30)
            for _ in range(3):  # the first while the trickling client holds a worker too
                # civetweb accepts in order and its workers take connections in order: these
                # 8 are taken before the scrape that follows them.
                idle = [socket.create_connection((LOOPBACK, server.metrics_port), timeout=5)
                        for _ in range(8)]
                scrape(server)
                held = sum(still_open(conn) for conn in idle)
                for conn in idle:
                    conn.close()
                assert held == len(idle), "the scrape waited for the endpoint to drop a stalled connection"
        finally:
            slow.join(timeout=30)
        # The slow request was dropped, not served: cut before its last byte, and not before
        # the endpoint's request timeout (1 s; a slower machine only cuts it later).
        assert outcome.get("cut_after", 0) > 0.5, outcome


@pytest.mark.parametrize("model", MODELS)
def test_an_answer_the_client_never_took_is_not_counted_as_served(model):
    """A client sends a 32 MiB POST and leaves without reading its echo: the write fails, and
    the request is counted nowhere (neither served nor as a send timeout)."""
    with Server(model, "--max-body-bytes", str(64 * 1024 * 1024)) as server:
        body = b"x" * (32 * 1024 * 1024)
        with socket.create_connection((LOOPBACK, server.port), timeout=10) as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            conn.sendall(body)
            time.sleep(0.2)  # the server has begun its answer
        # Closed with unread bytes: a reset for the server's write.
        final = eventually(lambda: scrape(server),
                           lambda now: now.value("echolab_connections_active") == 0
                           and now.value("echolab_connections_accepted_total") == 1)
        assert final.value("echolab_requests_total", protocol="http") == 0, final.text
        timed_out = final.series("echolab_connections_timed_out_total", kind="send")
        assert all(value == 0 for _, value in timed_out), final.text


@pytest.mark.parametrize("model", ["prefork", "hybrid"])
def test_a_killed_metrics_process_is_started_again_and_counts_go_on(model):
    """The masters' supervisor starts a new metrics process when the old one dies; the counters
    live in the scoreboard, so the new one reports them from where the old one left off."""
    with Server(model, *SMALL[model]) as server:
        for _ in range(3):
            assert http_exchange(server.port, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")
        before = scrape(server).value("echolab_requests_total", model=model, protocol="http")
        os.kill(metrics_pid(server), signal.SIGKILL)
        server.wait_for_log("event=metrics_exited")
        assert "signal=KILL" in server.log()
        after = eventually(lambda: scrape_or_none(server), lambda found: found is not None)
        assert after is not None, server.log()
        assert after.value("echolab_requests_total", model=model, protocol="http") >= before
        assert server.log().count("event=metrics_started") == 2
        assert server.alive()


def scrape_or_none(server: Server) -> Scrape | None:
    try:
        return scrape(server)
    except OSError:
        return None


@pytest.mark.parametrize("model", MODELS)
def test_a_408_is_counted_and_kept_out_of_the_duration_histogram(model):
    """A request the client never finished is answered 408 and counted, but it was never
    handled: a 0-second sample would pull the quantiles down during a slow-client attack."""
    with Server(model, *SMALL[model], "--header-timeout", "300ms") as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # one handled request
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        with socket.create_connection((LOOPBACK, server.port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost:")  # never finished
            assert client.recv(4096).startswith(b"HTTP/1.1 408")
        after = eventually(lambda: scrape(server),
                           lambda s: s.value("echolab_request_errors_total", status="408") == 1)
    assert after.value("echolab_request_errors_total", status="408") == 1
    assert after.value("echolab_requests_total", protocol="http") == 2
    assert after.value("echolab_request_duration_seconds_count") == 1


@pytest.mark.parametrize("model", MODELS)
def test_the_duration_ends_when_the_answer_is_ready_not_when_a_slow_reader_took_it(model):
    """60,000 pipelined requests from a client that reads nothing for a while: their answers
    (about 6 MB) outgrow the socket buffers (4 MB at most on loopback), so the server waits
    that long to send them, and a histogram that ran until the send completed would put
    requests past 1 s. Handling them takes milliseconds, however slow the machine: every
    sample is at most 1 s."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    count = 60_000
    reader_pause_s = 3.0
    with Server(model, *SMALL[model], "--send-timeout", "30s") as server:
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
            client.settimeout(30)
            client.connect((LOOPBACK, server.port))
            client.sendall(request)
            answer_bytes = len(client.recv(4096))  # one answer, alone: its size
            sender = threading.Thread(target=client.sendall, args=(request * count,))
            sender.start()
            time.sleep(reader_pause_s)
            received = 0
            while received < count * answer_bytes:
                chunk = client.recv(1 << 16)
                assert chunk, "the server closed before the last answer"
                received += len(chunk)
            sender.join(timeout=30)
        answered = count + 1
        after = eventually(lambda: scrape(server),
                           lambda s: s.value("echolab_request_duration_seconds_count") == answered)
    assert after.value("echolab_request_duration_seconds_count") == answered
    assert after.value("echolab_request_duration_seconds_bucket", le="1") == answered
