"""Starts echolab's real binaries on loopback for integration tests, and stops them after."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN_DIR = Path(os.environ.get("ECHOLAB_BIN_DIR", Path(__file__).resolve().parents[2] / "build" / "bin"))
SOURCE_DIR = Path(os.environ.get("ECHOLAB_SOURCE_DIR", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(SOURCE_DIR / "loadgen" / "compare"))
from processes import proc_stat_fields  # noqa: E402  (the runner's own helpers)
from servers import MODELS, free_port, listening  # noqa: E402
LOOPBACK = "127.0.0.1"


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


class Server:
    """One echolab server process on free loopback ports; a context manager."""

    def __init__(self, model: str, *args: str, metrics: bool = True, preexec_fn=None,
                 env: dict | None = None):
        self.model = model
        self.preexec_fn = preexec_fn  # run in the child before exec, e.g. a resource limit
        self.env = env
        self.port = free_port()
        self.metrics_port = free_port() if metrics else None
        self.args = [str(BIN_DIR / f"echolab-{model}"), "--listen", f"{LOOPBACK}:{self.port}"]
        if metrics:
            self.args += ["--metrics-listen", f"{LOOPBACK}:{self.metrics_port}"]
        self.args += list(args)
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def start(self) -> "Server":
        log_dir = Path(os.environ.get("ECHOLAB_TEST_LOGS", "/tmp/echolab-test-logs"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.model}-{self.port}.log"
        self._log = open(self.log_path, "wb")
        # A process group of its own, so the prefork children are reachable and can be
        # cleaned up even if the master dies.
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=self.preexec_fn,
                                        env=self.env)
        wait_for_port(self.port, process=self.process)
        if self.metrics_port:
            wait_for_port(self.metrics_port, process=self.process)
        # The socket listens before the start line is written: tests that read the log
        # need the line, so "started" means both.
        self.wait_for_log("event=start")
        return self

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The log once it contains `text`; raises if it does not appear within `timeout`."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not in the {self.model} log after {timeout}s:\n{log}")
            time.sleep(0.02)
        return log

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then the exit code (the graceful shutdown must finish within `timeout`)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            if self.process.poll() is None:
                self.terminate()
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self._log.close()

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


def run(*cmd: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Runs a client (curl, ab, wrk, echolab-load) and returns its captured output."""
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
