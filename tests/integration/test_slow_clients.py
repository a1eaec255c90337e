"""Slow, stalled and hostile clients against every real server: slowhttptest in slowloris and
slow-read modes while curl keeps being served, a header section that never ends answered 408
within --header-timeout, a client that never reads freed within --send-timeout, buffers given
back after large requests, and an allocation failure that costs one connection only.

Every attack targets 127.0.0.1, is bounded in connections and seconds, and stops by itself."""

import re
import resource
import socket
import threading
import time

import pytest

from compare import metrics as server_metrics  # the compare runner's exposition parser
from harness import LOOPBACK, MODELS, Server, run, trickle_header_lines

SLOWHTTPTEST = "/usr/bin/slowhttptest"
TIMED_OUT = "echolab_connections_timed_out_total"


def timeouts(server: Server, kind: str) -> float:
    return server_metrics.scrape(server.metrics_url()).total(TIMED_OUT, kind=kind) or 0.0


def wait_for_timeouts(server: Server, kind: str, at_least: float, within: float) -> float:
    """The count of `kind` timeouts once it reaches `at_least`, or what it was at `within` s."""
    deadline = time.monotonic() + within
    while (count := timeouts(server, kind)) < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


class CurlProbe:
    """Fetches the server's page every `every` seconds on a thread, recording each outcome."""

    def __init__(self, server: Server, every: float = 0.5):
        self.url = server.url()
        self.every = every
        self.outcomes: list[tuple[str, float]] = []  # (HTTP code or curl's failure, seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            # 5 s: a busy machine took 1.5 s to serve a fetch beside the attack; a server the
            # attack blocks keeps it waiting for the attack's whole 8-10 s.
            result = run("curl", "-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", self.url,
                         timeout=10)
            self.outcomes.append((result.stdout.strip() or f"exit {result.returncode}",
                                  time.monotonic() - started))
            self._stop.wait(self.every)

    def __enter__(self) -> "CurlProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def failures(self) -> list[tuple[str, float]]:
        return [outcome for outcome in self.outcomes if outcome[0] != "200"]


def slowhttptest(server: Server, *mode: str, connections: int, seconds: int) -> str:
    """Runs the attack to its end; returns its report without terminal colours."""
    result = run(SLOWHTTPTEST, *mode, "-c", str(connections), "-r", str(connections), "-l", str(seconds),
                 "-u", server.url(), "-p", "3", timeout=seconds + 30)
    report = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert "Exit status:" in report, report  # it ran (a bad flag also exits 0)
    return report


# slowloris: a header line every second, never the blank line that ends the section.
SLOWLORIS = ("header", ("--header-timeout", "2s"), ("-H", "-i", "1"), 200, 10)
# R-U-Dead-Yet: a POST announcing 8 KiB, then a few bytes a second, under --min-rate.
SLOW_BODY = ("body", ("--body-timeout", "1s"), ("-B", "-i", "1", "-s", "8192", "-x", "10"), 100, 8)


@pytest.mark.parametrize("attack", [SLOWLORIS, SLOW_BODY], ids=["slowloris", "slow-body"])
@pytest.mark.parametrize("model", MODELS)
def test_a_slow_request_is_cut_by_its_timeout_while_curl_is_served(model, attack):
    kind, server_flags, attack_flags, connections, seconds = attack
    with Server(model, *server_flags) as server:
        with CurlProbe(server) as probe:
            report = slowhttptest(server, *attack_flags, connections=connections, seconds=seconds)
        # Every connection kept sending, and still every one was cut.
        assert "No open connections left" in report, report
        assert len(probe.outcomes) >= 2
        assert probe.failures() == [], probe.outcomes
        assert wait_for_timeouts(server, kind, at_least=connections, within=5) == connections
        assert server.alive()


@pytest.mark.parametrize("model", MODELS)
def test_slow_read_clients_do_not_stop_the_others(model):
    with Server(model, "--send-timeout", "2s") as server:
        with CurlProbe(server) as probe:
            # A tiny receive window, 16 bytes read every 2 s, the request repeated 10 times.
            report = slowhttptest(server, "-X", "-w", "1", "-y", "16", "-n", "2", "-z", "16", "-k",
                                  "10", connections=100, seconds=8)
        assert "connected:   100" in report or "closed:" in report, report
        # Served all along: how many fetches fit in the attack is the machine's speed (a busy
        # one took 0.7-1.5 s a fetch, 7 in the 8 s), a failure is not.
        assert len(probe.outcomes) >= 2
        assert probe.failures() == [], probe.outcomes
        assert server.alive()


@pytest.mark.parametrize("model", MODELS)
def test_a_header_section_that_never_ends_gets_408_within_the_header_timeout(model):
    with Server(model, "--header-timeout", "1500ms") as server:
        answer, closed_after = trickle_header_lines(server.port, every=0.3, most_lines=20)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
        assert 1.4 <= closed_after < 3.0
        assert timeouts(server, "header") == 1
        scrape = server_metrics.scrape(server.metrics_url())
        assert scrape.total("echolab_request_errors_total", status="408") == 1


def never_read(port: int, seconds: float) -> int:
    """Pipelines POSTs and reads nothing, until the server gives up on it or `seconds` pass;
    returns the bytes sent."""
    body = b"x" * 65536
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    sent = 0
    with socket.create_connection((LOOPBACK, port)) as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.settimeout(0.2)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                sent += conn.send(request)
            except socket.timeout:
                continue
            except OSError:  # reset or broken pipe: the server closed it
                break
    return sent


# One worker only (a child, a thread): while the never-reading client holds it, nobody else
# is served; the send timeout must free it.
ONE_WORKER = {
    "prefork": ("--start-servers", "1", "--min-spare", "1", "--max-spare", "1", "--max-workers", "1"),
    "threads": ("--max-threads", "1"),
    "pool": ("--threads", "1"),
    "hybrid": ("--workers", "1"),
}


@pytest.mark.parametrize("model", MODELS)
def test_a_client_that_never_reads_is_disconnected_within_the_send_timeout(model):
    with Server(model, "--send-timeout", "1s", "--min-rate", "0", *ONE_WORKER[model]) as server:
        attacker = threading.Thread(target=never_read, args=(server.port, 8.0), daemon=True)
        attacker.start()
        time.sleep(0.5)  # its requests fill both socket buffers: the worker blocks in send
        started = time.monotonic()
        result = run("curl", "-s", "-o", "/dev/null", "-m", "6", "-w", "%{http_code}", server.url())
        served_after = time.monotonic() - started
        attacker.join(timeout=15)
        assert result.stdout == "200"
        assert served_after < 3.0
        assert wait_for_timeouts(server, "send", at_least=1, within=3) == 1


def rss_bytes(server: Server) -> int:
    """Resident memory of the server process (threads and pool are one process)."""
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_after(port: int, count: int, request: bytes, answer_bytes: int) -> list[socket.socket]:
    """`count` keep-alive connections, each left idle after one request and its answer."""
    connections = []
    for _ in range(count):
        conn = socket.create_connection((LOOPBACK, port), timeout=10)
        conn.sendall(request)
        received = 0
        while received < answer_bytes:
            data = conn.recv(1 << 20)
            assert data, "closed before the answer was in"
            received += len(data)
        connections.append(conn)
    return connections


@pytest.mark.parametrize("model", ["threads", "pool"])
def test_idle_connections_give_back_the_buffers_of_a_large_request(model):
    body = b"m" * (1 << 20)
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    count = 200
    with Server(model, "--stack-size", "256KiB") if model == "threads" else Server(model) as server:
        small = open_after(server.port, count, get, answer_bytes=len(b"Hello, World!"))
        after_small = rss_bytes(server)
        large = open_after(server.port, count, post, answer_bytes=len(body))
        time.sleep(0.5)
        added = rss_bytes(server) - after_small
        for conn in small + large:
            conn.close()
        # A second set of idle connections costs its stacks and socket state (measured: 27 KiB
        # a connection for threads, 18 KiB for the pool, at 200 and at 1,000 connections alike),
        # not the 2 MiB each that a 1 MiB request and its echo once left behind (400 MiB here).
        assert added < count * (128 << 10), f"{added / (1 << 20):.0f} MiB more for {count} idle connections"


def limit_memory(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


@pytest.mark.parametrize("model", ["threads", "pool"])
def test_an_allocation_failure_costs_one_connection_not_the_server(model):
    extra = ("--stack-size", "256KiB") if model == "threads" else ("--threads", "2")
    # 768 MiB of address space: the first request body that grows past a few hundred MiB
    # cannot be had.
    with Server(model, "--max-body-bytes", "1000000000", *extra, preexec_fn=limit_memory(768 << 20),
                env={"MALLOC_ARENA_MAX": "2", "PATH": "/usr/bin:/bin"}) as server:
        body_size = 700 << 20
        with socket.create_connection((LOOPBACK, server.port), timeout=20) as conn:
            conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % body_size)
            chunk = b"z" * (1 << 20)
            try:
                for _ in range(body_size >> 20):
                    conn.sendall(chunk)
            except OSError:
                pass  # the server answered and stopped reading
            answer = read_until_closed(conn)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert server.alive()
        result = run("curl", "-s", "-m", "5", server.url())
        assert result.stdout == "Hello, World!"


def read_until_closed(conn: socket.socket) -> bytes:
    conn.settimeout(10)
    answer = b""
    try:
        while data := conn.recv(65536):
            answer += data
    except OSError:
        pass
    return answer
