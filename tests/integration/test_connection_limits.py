"""--max-requests-per-connection and --max-connection-lifetime: a client that keeps one
connection busy (requests one after another, or raw echo trickling a byte before every idle
timeout) no longer holds a prefork child or a thread for ever (docs/slow-clients.md)."""

import socket
import time

import pytest

from compare import metrics as server_metrics  # the compare runner's exposition parser
from harness import LOOPBACK, MODELS, Server, recv_http_response, run, trickle_header_lines

TIMED_OUT = "echolab_connections_timed_out_total"
HUNG = 15.0  # seconds: only a server that never closes takes this long
# The server's clock for a connection starts at its accept, which can come a moment before the
# client, back from connect(), reads its own: a close is "after D" within this much.
CLOCKS_APART = 0.1


def timeouts(server: Server, kind: str) -> float:
    return server_metrics.scrape(server.metrics_url()).total(TIMED_OUT, kind=kind) or 0.0


def wait_for_timeouts(server: Server, kind: str, at_least: float) -> float:
    """The count of `kind` once it reaches `at_least`, or what it is after HUNG s."""
    deadline = time.monotonic() + HUNG
    while (count := timeouts(server, kind)) < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


def closed_by_server(conn: socket.socket) -> bool:
    """True when the server ends the connection (end of stream) before HUNG s."""
    conn.settimeout(HUNG)
    try:
        return conn.recv(65536) == b""
    except socket.timeout:
        return False


def post(body: bytes) -> bytes:
    return b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.mark.parametrize("model", MODELS)
def test_the_nth_request_is_answered_with_connection_close_then_the_connection_closes(model):
    with Server(model, "--max-requests-per-connection", "5") as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=HUNG) as conn:
            heads = []
            for index in range(1, 6):
                body = b"request %d" % index
                conn.sendall(post(body))
                head, _, echoed = recv_http_response(conn).partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200") and echoed == body
                heads.append(head)
            assert [b"Connection: close" in head for head in heads] == [False] * 4 + [True]
            assert closed_by_server(conn)


@pytest.mark.parametrize("model", MODELS)
def test_a_request_read_after_the_lifetime_is_the_last_and_says_so(model):
    """A request in flight when the lifetime ends is finished, and its answer says close."""
    with Server(model, "--max-connection-lifetime", "1s") as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=HUNG) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\n")
            time.sleep(1.5)
            conn.sendall(b"Host: x\r\n\r\n")
            head, _, body = recv_http_response(conn).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and body == b"Hello, World!"
            assert b"Connection: close" in head
            assert closed_by_server(conn)


def trickle_raw(port: int, every: float) -> tuple[float, int, bytes]:
    """Sends a byte every `every` s, reading the echoes, until the server closes; returns
    when it closed (s from the connect), the bytes sent, and the bytes echoed."""
    with socket.create_connection((LOOPBACK, port), timeout=HUNG) as conn:
        started = time.monotonic()
        sent = 0
        echoed = b""
        while time.monotonic() - started < HUNG:
            try:
                conn.sendall(b"x")
                sent += 1
                conn.settimeout(every)
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break  # the server closed while a byte was on its way
            if not data:
                break
            echoed += data
            time.sleep(every)
        return time.monotonic() - started, sent, echoed


@pytest.mark.parametrize("model", MODELS)
def test_a_raw_client_trickling_within_the_idle_timeout_is_cut_at_the_lifetime(model):
    with Server(model, "--protocol", "raw", "--idle-timeout", "30s",
                "--max-connection-lifetime", "1s") as server:
        closed_after, sent, echoed = trickle_raw(server.port, every=0.2)
        assert 1.0 - CLOCKS_APART <= closed_after < HUNG
        # A byte every 0.4 s at best (a 0.2 s wait for its echo, then 0.2 s): 3 fit in the 1 s
        # lifetime on a quiet machine, 2 on a busy one. Two already make a trickle.
        assert sent >= 2 and echoed == b"x" * len(echoed) and len(echoed) >= sent - 1
        assert wait_for_timeouts(server, "lifetime", 1) == 1
        assert timeouts(server, "idle") == 0


@pytest.mark.parametrize("model", MODELS)
def test_an_http_trickler_past_the_lifetime_is_cut_by_its_header_timeout(model):
    """The lifetime never cuts a request in flight: a header section that trickles past it
    is ended by --header-timeout, with a 408, as before."""
    with Server(model, "--header-timeout", "2s", "--max-connection-lifetime", "1s") as server:
        answer, closed_after = trickle_header_lines(server.port, every=0.2, limit_s=HUNG)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
        assert 2.0 - CLOCKS_APART <= closed_after < HUNG
        assert wait_for_timeouts(server, "header", 1) == 1
        assert timeouts(server, "lifetime") == 0


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("flag, value", [
    ("--max-connection-lifetime", "0"),
    ("--max-requests-per-connection", "-1"),
    ("--max-requests-per-connection", "abc"),
])
def test_a_bad_limit_is_refused_on_one_line_naming_the_flag(model, flag, value):
    server = Server(model, flag, value, metrics=False)
    got = run(*server.args)
    assert got.returncode == 2
    assert flag in got.stderr and len(got.stderr.strip().splitlines()) == 1, got.stderr
