"""echolab-floor, the minimal responder of the floor (docs/floor.md), on both backends: it
answers curl and wrk, one answer per request however the requests are cut into sends, refuses
a bad backend on one line, and leaves no process behind after SIGTERM."""

import socket

import pytest

from harness import BIN_DIR, GREETING, LOOPBACK, Server, eventually, process_table, run, run_wrk

BACKENDS = ("epoll", "io_uring")
REQUEST = b"GET / HTTP/1.1\r\nHost: floor\r\n\r\n"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\n" + GREETING


def floor(backend: str, workers: int = 2) -> Server:
    return Server("floor", "--backend", backend, "--workers", str(workers), metrics=False)


def receive_answers(conn: socket.socket, count: int) -> bytes:
    """Exactly `count` answers' bytes (the answer is fixed, so its length is known)."""
    data = b""
    while len(data) < count * len(ANSWER):
        chunk = conn.recv(count * len(ANSWER) - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def unanswered_after(conn: socket.socket, seconds: float = 0.3) -> bytes:
    """Whatever arrives within `seconds` more (nothing is owed): an extra answer would show."""
    conn.settimeout(seconds)
    try:
        return conn.recv(65536)
    except TimeoutError:
        return b""


@pytest.mark.parametrize("backend", BACKENDS)
def test_curl_gets_the_exact_greeting(backend):
    with floor(backend) as server:
        got = run("curl", "-s", "-i", server.url("/anything"), timeout=30)
    assert got.returncode == 0, got.stderr
    head, _, body = got.stdout.partition("\n\n")  # text mode: "\r\n" reads as "\n"
    assert head.splitlines()[0] == "HTTP/1.1 200 OK"
    assert "Content-Length: 13" in head
    assert body == GREETING.decode()


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrk_is_answered_without_errors(backend):
    with floor(backend) as server:
        report = run_wrk("-t1", "-c20", "--timeout=10s", server.url(), seconds=1)
    served = int(report.split(" requests in ")[0].split()[-1])
    assert served > 0, report
    assert "Socket errors" not in report and "Non-2xx" not in report, report


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pipelined_pair_gets_two_answers_and_a_split_request_one(backend):
    with floor(backend) as server, socket.create_connection((LOOPBACK, server.port), timeout=10) as conn:
        conn.sendall(REQUEST + REQUEST)
        assert receive_answers(conn, 2) == ANSWER * 2
        assert unanswered_after(conn) == b""
        # The request end itself cut in two: "\r\n\r" now, "\n" after the first send arrived.
        conn.sendall(REQUEST[:-1])
        assert unanswered_after(conn) == b""
        conn.sendall(REQUEST[-1:])
        assert receive_answers(conn, 1) == ANSWER
        assert unanswered_after(conn) == b""


def test_an_unknown_backend_is_refused_on_one_line_naming_the_flag():
    got = run(str(BIN_DIR / "echolab-floor"), "--backend", "nope", timeout=30)
    assert got.returncode == 2
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and "--backend" in lines[0] and "nope" in lines[0], got.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_stops_the_master_and_every_worker(backend):
    server = floor(backend, workers=3).start()
    try:
        group = server.process.pid
        workers = eventually(lambda: [pid for pid, (_, pgid, _) in process_table().items()
                                      if pgid == group and pid != group], lambda pids: len(pids) == 3)
        assert len(workers) == 3, workers
        assert server.terminate() == 0
        # Reaped by the master before it exited: none is left, not even a zombie.
        left = eventually(lambda: [pid for pid, (_, pgid, _) in process_table().items() if pgid == group],
                          lambda pids: not pids)
        assert left == [], left
    finally:
        server.stop()
    assert "event=stop" in server.log()
