"""The planner's hold is what every model really holds: under a descriptor limit set low (so that
the test affords it), each model holds the connections the planner plans for it with no error,
and a hold one descriptor past what the limits allow is refused before anything starts. A model
whose real per-connection cost differs from its entry in compare/models.py fails here, as the
threads server did when it kept two descriptors per connection."""

import dataclasses
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest

from compare import machine as machine_info
from compare.metrics import scrape
from compare.models import BY_NAME
from compare.servers import settings_for
from harness import BIN_DIR, LOOPBACK, MODELS, SOURCE_DIR, Server, process_table

OPEN_FILES = 1500  # soft and hard: 1,200 connections planned, 2,400+ needed at two per connection
CONNECTIONS = 200
HUNG_S = 240


def limited_machine() -> machine_info.Machine:
    machine = machine_info.inspect_machine()
    return dataclasses.replace(machine, open_files_soft=OPEN_FILES, open_files_hard=OPEN_FILES)


def c10k(model: str, connections: int, tmp_path, timeout_s: float) -> subprocess.CompletedProcess:
    """`make c10k` for one model, in a process whose descriptor limit (soft and hard, so that
    nothing raises it) is OPEN_FILES; the servers and echolab-load it starts inherit it."""
    json_path = tmp_path / f"{model}.json"
    command = ["prlimit", f"--nofile={OPEN_FILES}:{OPEN_FILES}", sys.executable, "-m", "compare.c10k",
               "--bin-dir", str(BIN_DIR), "--model", model, "--connections", str(connections),
               "--ramp", "2", "--hold", "4", "--json", str(json_path)]
    return subprocess.run(command, cwd=SOURCE_DIR, capture_output=True, text=True, timeout=timeout_s)


def limit_open_files() -> None:
    """In the child before exec: the descriptor limit, soft and hard, so that nothing raises it."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


def wait_for(read, done, what: str, timeout_s: float = HUNG_S):
    """read() until done(value); `timeout_s` means "hung", not a speed limit."""
    deadline = time.monotonic() + timeout_s
    while not done(value := read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value} after {timeout_s:.0f} s")
        time.sleep(0.25)
    return value


@pytest.mark.parametrize("model", MODELS)
def test_every_model_holds_the_planned_hold_under_a_low_descriptor_limit(model, tmp_path):
    """The planner's hold, held: every connection accepted by the server and answered while all
    are open, and not one error at echolab-load, with the server and echolab-load both under the
    limit. The hold lasts until that is seen (a prefork master forks its children at the pace
    the machine allows, and a connection waits in the listen queue meanwhile: hence a timeout
    that means "hung"), then echolab-load is interrupted. A server out of descriptors never
    accepts them all."""
    planned = machine_info.connection_capacity(limited_machine(), 10_000).connections
    assert 1_000 <= planned < 10_000  # scaled down by ulimit -n, and still a real hold
    json_path = tmp_path / "hold.json"
    with Server(model, *settings_for(model, planned), preexec_fn=limit_open_files) as server:
        active = lambda: scrape(server.metrics_url()).total("echolab_connections_active") or 0
        answered = lambda: scrape(server.metrics_url()).total("echolab_requests_total") or 0
        load = subprocess.Popen(
            [BIN_DIR / "echolab-load", "--connections", str(planned), "--ramp", "5s", "--hold", f"{HUNG_S}s",
             "--interval", "1s", "--timeout", f"{HUNG_S}s", "--quiet", "--json", json_path,
             f"{LOOPBACK}:{server.port}"],
            preexec_fn=limit_open_files)
        try:
            wait_for(active, lambda held: held >= planned, f"{model} connections held of {planned}")
            at_full = answered()
            wait_for(answered, lambda count: count >= at_full + planned, "requests answered during the hold")
            assert active() == planned
        finally:
            load.send_signal(signal.SIGINT)
            load.wait(timeout=60)
    result = json.loads(json_path.read_text())
    assert result["errors"]["total"] == 0, result["first_errors"]
    assert result["connections_open_peak"] == planned


@pytest.mark.parametrize("model", MODELS)
def test_a_hold_past_the_limits_is_refused_before_it_starts(model, tmp_path):
    allowed = machine_info.connection_capacity(limited_machine(), 10_000).per_model[model]
    done = c10k(model, allowed.connections + 1, tmp_path, timeout_s=60)
    assert done.returncode != 0
    line = done.stderr.strip().splitlines()[-1]
    assert f"at most {allowed.connections:,} connections" in line
    assert "ulimit -n" in line
    assert not (tmp_path / f"{model}.json").exists()


def descriptors_by_process(session: int) -> dict[int, int]:
    """pid -> open descriptors of every process in the server's session."""
    counts = {}
    for pid, (_, _, sid) in process_table().items():
        if sid == session:
            try:
                counts[pid] = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue  # it exited meanwhile
    return counts


@pytest.mark.parametrize("model", MODELS)
def test_descriptors_per_connection_are_what_the_planner_counts(model):
    """CONNECTIONS held open: the process that holds the most descriptors gains exactly the
    registry's count per connection (a prefork child holds its one socket in a process of its
    own, under its own ulimit -n, so no process gains any)."""
    expected = BY_NAME[model].descriptors_per_connection
    flags = ["--workers", "1"] if model == "hybrid" else []  # every connection in one process
    with Server(model, "--idle-timeout", "60s", *flags) as server:
        session = os.getsid(server.process.pid)
        before = max(descriptors_by_process(session).values())
        clients = [socket.create_connection((LOOPBACK, server.port), timeout=10) for _ in range(CONNECTIONS)]
        try:
            for client in clients:  # served: a request answered on each
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            for client in clients:
                assert client.recv(4096).startswith(b"HTTP/1.1 200")
            during = max(descriptors_by_process(session).values())
        finally:
            for client in clients:
                client.close()
    assert (during - before) // CONNECTIONS == expected, (before, during)


def test_the_thread_cap_is_logged_once_per_episode_not_once_per_connection():
    """Two threads, two connections holding them and more waiting in the listen queue: each
    connection that closes lets one queued connection in, which fills the cap again at once.
    That is one episode of saturation, and one log line."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with Server("threads", "--max-threads", "2", "--idle-timeout", "60s") as server:
        connect = lambda: socket.create_connection((LOOPBACK, server.port), timeout=30)
        holding = [connect(), connect()]
        for client in holding:
            client.sendall(request)
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        queued = [connect() for _ in range(4)]
        for client in queued:
            client.sendall(request)
        try:
            server.wait_for_log("max-threads")
            for freed, let_in in zip(holding, queued):
                freed.close()
                assert let_in.recv(4096).startswith(b"HTTP/1.1 200")  # served once a thread is free
            log = server.log()
        finally:
            for client in queued:
                client.close()
    assert log.count("limit_reached") == 1, log
