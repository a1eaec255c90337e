"""Starts echolab's real binaries on loopback for integration tests, and stops them after."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from compare import servers
from compare.processes import proc_stat_fields
from compare.servers import LOOPBACK, MODELS, free_port, listening, release_port

BIN_DIR = Path(os.environ.get("ECHOLAB_BIN_DIR", Path(__file__).resolve().parents[2] / "build" / "bin"))
SOURCE_DIR = Path(os.environ.get("ECHOLAB_SOURCE_DIR", Path(__file__).resolve().parents[2]))
LOG_DIR = Path(os.environ.get("ECHOLAB_TEST_LOGS", "/tmp/echolab-test-logs"))
# What every server answers a GET with.
GREETING = b"Hello, World!"
__all__ = ["BIN_DIR", "GREETING", "SOURCE_DIR", "LOOPBACK", "MODELS", "Server", "children", "eventually",
           "free_port", "release_port", "group_processes", "http_exchange", "metrics_pid", "process_table",
           "recv_http_response", "run", "run_wrk", "spawned_children", "wait_for_port"]


def wait_for_port(port: int, timeout: float = 10.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        if listening(port):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout}s")


def process_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state letter, process group, session) of every process now in /proc."""
    return {pid: (fields[0], int(fields[2]), int(fields[3])) for pid, fields in proc_stat_fields()}


def eventually(read, done, timeout: float = 5.0):
    """Reads until done(value) or the timeout, and returns the last value read: a server
    updates a counter just after the client got its bytes, not before."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


class Server:
    """The compare runner's server launcher (compare.servers.Server: ready once the log has this
    start's event=start line), with the tests' conveniences: flags as arguments, a log per
    server under ECHOLAB_TEST_LOGS, url(path), the log's text and SIGTERM with a deadline."""

    def __init__(self, model: str, *flags: str, metrics: bool = True, preexec_fn=None,
                 env: dict | None = None):
        self.model = model
        self.launcher = servers.Server(model, model, BIN_DIR / f"echolab-{model}", list(flags), LOG_DIR,
                                       metrics=metrics, env=env, preexec_fn=preexec_fn)
        self.launcher.choose_ports()
        self.launcher.name = f"{model}-{self.launcher.port}"
        self.port = self.launcher.port
        self.metrics_port = self.launcher.metrics_port if metrics else None
        self.process: subprocess.Popen | None = None  # kept after stop(), for its exit status

    @property
    def args(self) -> list[str]:
        """The command line; a test may wrap it (prlimit, env) before start()."""
        return self.launcher.command

    @args.setter
    def args(self, command: list[str]) -> None:
        self.launcher.command = command

    @property
    def log_path(self) -> Path:
        return self.launcher.log_path

    def start(self) -> "Server":
        try:
            self.launcher.start()
        finally:
            self.process = self.launcher.process
        return self

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def metrics_url(self) -> str:
        return self.launcher.metrics_url

    def log(self) -> str:
        return self.launcher.log_text()

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The log once it contains `text`; raises if it does not appear within `timeout`."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not in the {self.model} log after {timeout}s:\n{log}")
            time.sleep(0.02)
        return log

    def alive(self) -> bool:
        return self.launcher.alive()

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then the exit code (the graceful shutdown must finish within `timeout`)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, up to 15 s for the graceful exit, then SIGKILL to the whole group."""
        self.launcher.stop()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def http_exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Sends raw bytes and reads until the server closes the connection."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while True:
            data = conn.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def recv_http_response(conn: socket.socket) -> bytes:
    """Reads exactly one Content-Length-framed response from a keep-alive connection: its head,
    the blank line and its body (split them with .partition(b"\\r\\n\\r\\n"))."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before a full response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "connection closed inside a response body"
        body += chunk
    return head + b"\r\n\r\n" + body


def group_processes(server: Server) -> dict[int, str]:
    """pid -> state letter of every process in the server's process group (the harness
    starts it as a session leader, so the group id is the master's pid)."""
    return {pid: state for pid, (state, group, _) in process_table().items()
            if group == server.process.pid}


def children(server: Server) -> set[int]:
    """The master's live child processes (the metrics process among them)."""
    return {pid for pid, state in group_processes(server).items()
            if pid != server.process.pid and state != "Z"}


def metrics_pid(server: Server) -> int:
    """The pid of a master's current metrics process, from its latest metrics_started line."""
    return int(re.findall(r"pid=(\d+) event=metrics_started", server.log())[-1])


def spawned_children(server: Server) -> int:
    """Children the prefork master says it forked (its workers_spawned log lines)."""
    return sum(int(count) for count in
               re.findall(r"event=workers_spawned\b.*?\bcount=(\d+)", server.log()))


def run(*cmd: str, timeout: float = 60.0, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs a client (curl, ab, wrk, echolab-load) and returns its captured output."""
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)


def run_wrk(*args: str, seconds: int, attempts: int = 2) -> str:
    """Runs `wrk -d{seconds}s *args` and returns its report, checked for a clean exit.

    wrk stops at its first timer tick after the duration, so a report whose run lasted more than
    a second past it means wrk itself was not scheduled (a stall of the machine, seen once as an
    11 s gap on a shared CI host): its latencies and "timeout" errors then measure the stall, not
    the server, and the run is repeated. A server that stalls neither lengthens wrk's run nor
    counts as an error (wrk counts only answers that come late), so callers check the number of
    requests served as well as the errors."""
    for attempt in range(1, attempts + 1):
        got = run("wrk", f"-d{seconds}s", *args, timeout=seconds + 60)
        assert got.returncode == 0, got.stderr
        value, unit = re.search(r"requests in ([\d.]+)(ms|s|m)\b", got.stdout).groups()
        lasted_s = float(value) * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
        if lasted_s <= seconds + 1.0:
            return got.stdout
        print(f"wrk was not scheduled for {lasted_s - seconds:.1f} s (attempt {attempt}): "
              f"its report measures the stall, not the server\n{got.stdout}")
    raise AssertionError(f"wrk stalled in each of {attempts} runs")


def trickle_header_lines(port: int, every: float, most_lines: int = 1_000,
                         limit_s: float = 15.0) -> tuple[bytes, float]:
    """A slow-headers client: begins a request and adds a header line every `every` s (at most
    `most_lines`, for at most `limit_s`) until the server answers and closes. Returns what the
    server answered and when the connection closed, in seconds from the start of the connect:
    the server's clock starts at its accept, which can come before a client that lost the CPU
    after its connect reads the time (a 1.5 s header timeout measured 1.39 s)."""
    started = time.monotonic()
    with socket.create_connection((LOOPBACK, port), timeout=limit_s) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        lines = 0
        while lines < most_lines and time.monotonic() - started < limit_s:
            conn.settimeout(every)
            try:
                data = conn.recv(65536)
            except socket.timeout:
                conn.sendall(b"X-a: b\r\n")
                lines += 1
                continue
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
        return answer, time.monotonic() - started
