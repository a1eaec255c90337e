"""What sets the hybrid server apart: a master that never reads a client byte and N worker
processes, each one event loop serving many connections.

The behaviour every server shares is checked for hybrid too in test_servers.py,
test_slow_clients.py and test_metrics.py. Each test starts the server it needs and stops it
after."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import (BIN_DIR, GREETING, LOG_DIR, LOOPBACK, Server, children, eventually, free_port,
                     metrics_pid, recv_http_response, run)
from scraping import promtool_check, scrape, wait_until_read


def served(conn: socket.socket) -> bool:
    """True when a keep-alive request on `conn` is answered; False when the connection is gone."""
    try:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return recv_http_response(conn).endswith(GREETING)
    except (ConnectionResetError, BrokenPipeError):
        return False
    except AssertionError:  # closed before a full response
        return False


def worker_pids(server: Server) -> set[int]:
    """The workers: the master's children but the metrics process (known by the pid of its
    metrics_started line)."""
    return children(server) - {metrics_pid(server)}


def client_sockets(pid: int) -> int:
    """How many sockets a process holds, its listening socket among them."""
    links = (_readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
    return sum(1 for link in links if link.startswith("socket:"))


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def value(server: Server, name: str, **labels) -> float:
    return scrape(server).value(name, model="hybrid", **labels)


def test_a_crash_loses_only_that_workers_connections_and_the_master_respawns_it():
    with Server("hybrid", "--workers", "2", "--fault-injection") as server:
        clients = [socket.create_connection((LOOPBACK, server.port), timeout=5) for _ in range(50)]
        try:
            for conn in clients:
                assert served(conn)
            before_workers = worker_pids(server)
            assert len(before_workers) == 2
            requests_before = value(server, "echolab_requests_total", protocol="http")
            assert requests_before >= 50
            clients[0].sendall(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                assert clients[0].recv(1) == b""
            except ConnectionResetError:
                pass
            alive = [conn for conn in clients[1:] if served(conn)]
            lost = 50 - len(alive)
            # The crashed worker held about half (the kernel hashes connections over the two
            # sockets): never all of them, and the rest keep being served.
            assert 1 <= lost <= 40, lost
            for _ in range(3):
                for conn in alive:
                    assert served(conn)
            assert server.alive()
            metrics = eventually(lambda: scrape(server), lambda m: m.value(
                "echolab_worker_crashes_total", model="hybrid") == 1)
            assert metrics.value("echolab_worker_crashes_total", model="hybrid") == 1
            assert metrics.value("echolab_connections_lost_total", model="hybrid") == lost
            # The dead worker's requests were folded into the totals, not dropped.
            assert metrics.value("echolab_requests_total", model="hybrid",
                                 protocol="http") >= requests_before + 3 * len(alive)
            log = server.log()
            assert re.search(rf"event=worker_crashed worker_pid=\d+ signal=SEGV connections_lost={lost}\b",
                             log), log
            assert "event=worker_respawned" in log
            after_workers = eventually(lambda: worker_pids(server), lambda now: len(now) == 2)
            assert len(after_workers) == 2 and len(after_workers & before_workers) == 1
            # The new worker serves on the crashed worker's socket: new connections all get answers.
            fresh = [socket.create_connection((LOOPBACK, server.port), timeout=5) for _ in range(20)]
            try:
                assert all(served(conn) for conn in fresh)
            finally:
                for conn in fresh:
                    conn.close()
            promtool_check(scrape(server).text)
        finally:
            for conn in clients:
                conn.close()


def test_sigterm_answers_the_request_in_flight_and_every_process_exits():
    with Server("hybrid", "--workers", "2", "--fault-injection") as server:
        idle = socket.create_connection((LOOPBACK, server.port), timeout=5)
        busy = socket.create_connection((LOOPBACK, server.port), timeout=5)
        assert served(idle)
        processes = children(server)
        sleep_request = b"GET /sleep?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n"
        busy.sendall(sleep_request)
        wait_until_read(server, len(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") + len(sleep_request))
        server.process.send_signal(signal.SIGTERM)
        reply = recv_http_response(busy)
        assert reply.startswith(b"HTTP/1.1 200 OK")
        assert busy.recv(1) == b""  # then closed: the server is stopping
        assert idle.recv(1) == b""  # the idle one was closed at once
        assert server.process.wait(timeout=10) == 0
        log = server.log()
        assert re.search(r"event=shutdown phase=done duration_ms=\d+ killed=0 crashes=0", log), log
        assert not children(server), "a worker or the metrics process outlived the master"
        assert len(processes) == 3
        busy.close()
        idle.close()


def test_a_stop_sent_while_the_workers_start_is_not_lost():
    """SIGTERM to the master before its workers are ready stops it as any graceful stop does.
    strace holds each process in its first signalfd() (a worker's, before it can be ready) for
    a few seconds, so the stop lands in the start, however fast the machine."""
    port, metrics_port = free_port(), free_port()
    log_path = LOG_DIR / f"hybrid-starting-{port}.log"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        tracer = subprocess.Popen(["strace", "-f", "-o", "/dev/null", "-e", "trace=signalfd4",
                                   "-e", "inject=signalfd4:delay_enter=3000000",
                                   str(BIN_DIR / "echolab-hybrid"), "--workers", "2",
                                   "--listen", f"{LOOPBACK}:{port}",
                                   "--metrics-listen", f"{LOOPBACK}:{metrics_port}"],
                                  stdout=log, stderr=log, start_new_session=True)
    try:
        # Logged by the metrics process, forked after the master blocked its signals.
        deadline = time.monotonic() + 60  # only "it hung"
        while "event=metrics_started" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        text = log_path.read_text()
        assert "event=metrics_started" in text and "event=start " not in text, text
        master = int(Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()[0])
        os.kill(master, signal.SIGTERM)
        assert tracer.wait(timeout=60) == 0  # strace exits with its tracee's status
    finally:
        if tracer.poll() is None:
            os.killpg(tracer.pid, signal.SIGKILL)
            tracer.wait()
    text = log_path.read_text()
    assert "event=start " not in text, text  # it never reported ready
    assert "phase=draining signal=TERM" in text, text
    assert re.search(r"event=shutdown phase=done duration_ms=\d+ killed=0 crashes=0", text), text


def test_a_worker_stuck_past_the_shutdown_timeout_is_killed_and_the_master_exits_0():
    with Server("hybrid", "--workers", "1", "--fault-injection", "--shutdown-timeout", "1s") as server:
        stuck = socket.create_connection((LOOPBACK, server.port), timeout=10)
        request = b"GET /sleep?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n"  # outlasts any stall
        stuck.sendall(request)
        wait_until_read(server, len(request))
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0  # only "it hung": far inside the sleep
        assert stuck.recv(1) == b""  # killed in its sleep, unanswered
        assert re.search(r"event=shutdown phase=done duration_ms=\d+ killed=1 crashes=0", server.log())
        stuck.close()


@pytest.mark.parametrize("bad", ["-1", "1025", "many"])
def test_workers_out_of_range_is_refused_in_one_line_naming_the_flag(bad):
    got = run(str(BIN_DIR / "echolab-hybrid"), "--workers", bad, timeout=10)
    assert got.returncode == 2
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and "--workers" in lines[0], got.stderr


@pytest.mark.parametrize("flags, sharing", [((), "reuseport"), (("--shared-listener",), "shared_listener")],
                         ids=["reuseport", "shared-listener"])
def test_both_port_sharing_modes_serve_on_every_worker(flags, sharing):
    with Server("hybrid", "--workers", "2", *flags) as server:
        assert f"port_sharing={sharing}" in server.log()
        clients = [socket.create_connection((LOOPBACK, server.port), timeout=5) for _ in range(40)]
        try:
            for _ in range(2):
                for conn in clients:
                    assert served(conn)
            metrics = scrape(server)
            assert metrics.value("echolab_connections_active", model="hybrid") == 40
            assert metrics.value("echolab_requests_total", model="hybrid", protocol="http") == 80
            assert metrics.value("echolab_processes", model="hybrid") == 2 + 2
            held = [client_sockets(pid) - 1 for pid in worker_pids(server)]
            assert sum(held) == 40, held
            if sharing == "reuseport":  # hashed over the two sockets: both get some
                assert min(held) > 0, held
            promtool_check(metrics.text)
        finally:
            for conn in clients:
                conn.close()
        assert server.terminate() == 0


def test_workers_and_the_metrics_process_die_with_a_killed_master():
    with Server("hybrid", "--workers", "2") as server:
        processes = children(server)
        assert len(processes) == 3
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=5)
        left = eventually(lambda: children(server), lambda now: not now)
        assert not left, f"outlived the master: {left}"


def test_max_connections_holds_across_the_workers():
    with Server("hybrid", "--workers", "2", "--max-connections", "10") as server:
        held = [socket.create_connection((LOOPBACK, server.port), timeout=5) for _ in range(10)]
        try:
            for conn in held:  # one by one: each is counted in its worker's slot before the next
                assert served(conn)
            over = socket.create_connection((LOOPBACK, server.port), timeout=5)
            assert not served(over)  # closed unanswered, whichever worker took it
            over.close()
            metrics = eventually(lambda: scrape(server), lambda m: m.value(
                "echolab_connections_rejected_total", model="hybrid") == 1)
            assert metrics.value("echolab_connections_rejected_total", model="hybrid") == 1
            assert metrics.value("echolab_connections_active", model="hybrid") == 10
            held.pop().close()
            eventually(lambda: scrape(server), lambda m: m.value(
                "echolab_connections_active", model="hybrid") == 9)
            again = socket.create_connection((LOOPBACK, server.port), timeout=5)
            assert served(again)
            again.close()
        finally:
            for conn in held:
                conn.close()
