"""The production servers that implement each of echolab's models, started on loopback
ports of their own: Apache httpd with mpm_prefork (prefork), with mpm_worker (threads), and
nginx (worker processes that each run an event loop: hybrid). Installed by `scripts/install-deps.sh --peers`."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..servers import free_port, release_port

HERE = Path(__file__).resolve().parent
GREETING = "Hello, World!"

# nginx's worker processes in the benchmark, and echolab-hybrid's --workers beside it: the same
# model with the same number of event loops, one per CPU (nginx's `auto`, hybrid's default).
NGINX_WORKERS = os.cpu_count() or 1

# peer name -> (the echolab model it implements, how to start it)
PEERS = {
    "apache-prefork": "prefork",
    "apache-worker": "threads",
    "nginx": "hybrid",
}


def available() -> list[str]:
    """The peers whose binaries are installed."""
    names = []
    if shutil.which("apache2") or Path("/usr/sbin/apache2").exists():
        names += ["apache-prefork", "apache-worker"]
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        names.append("nginx")
    return names


def _fill(template: str, values: dict) -> str:
    text = (HERE / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


class Peer:
    """One running peer server; a context manager that always stops what it started."""

    def __init__(self, name: str, port: int | None = None, max_spare: int = 256, defaults: str = "benchmark"):
        """max_spare: Apache prefork's MaxSpareServers, echolab-prefork's --max-spare.
        defaults: "benchmark" (sized for 10,000 connections) or "debian" (as Debian ships it,
        for the slow-clients experiment; max_spare is then Debian's)."""
        if defaults not in ("benchmark", "debian"):
            raise ValueError(f"unknown defaults '{defaults}' (benchmark or debian)")
        if name not in PEERS:
            raise ValueError(f"unknown peer '{name}' (known: {', '.join(PEERS)})")
        self.name = name
        self.model = PEERS[name]
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"echolab-{name}-"))
        self.process: subprocess.Popen | None = None
        self.max_spare = max_spare
        self.suffix = "" if defaults == "benchmark" else "-debian"

    def url(self, path: str = "/hello") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _command(self) -> list[str]:
        root = os.geteuid() == 0
        if self.name.startswith("apache"):
            htdocs = self.workdir / "htdocs"
            htdocs.mkdir()
            (htdocs / "hello").write_text(GREETING)
            for path in (self.workdir, htdocs):
                path.chmod(0o755)
            conf = _fill(f"apache{self.suffix}.conf.in", {
                "PORT": str(self.port), "WORKDIR": str(self.workdir),
                "MPM": self.name.split("-")[1], "MAX_SPARE": str(self.max_spare),
                "USER_LINES": "User www-data\nGroup www-data" if root else "",
            })
            (self.workdir / "httpd.conf").write_text(conf)
            return ["/usr/sbin/apache2", "-f", str(self.workdir / "httpd.conf"), "-DFOREGROUND"]
        conf = _fill(f"nginx{self.suffix}.conf.in", {
            "PORT": str(self.port), "WORKDIR": str(self.workdir), "WORKERS": str(NGINX_WORKERS),
            "USER_LINE": "user www-data;" if root else "",
        })
        (self.workdir / "nginx.conf").write_text(conf)
        return ["/usr/sbin/nginx", "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir)]

    def start(self, timeout: float = 20.0) -> "Peer":
        self.process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL,
                                        stderr=open(self.workdir / "stderr.log", "wb"),
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if GREETING.encode() in conn.recv(4096):
                        release_port(self.port)
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer on port {self.port}: {self.log()}")

    def log(self) -> str:
        logs = [self.workdir / "stderr.log", self.workdir / "error.log"]
        return " | ".join(p.read_text(errors="replace")[-500:] for p in logs if p.exists())

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        # Apache's children leave their own process group's leader behind them: make sure.
        subprocess.run(["pkill", "-KILL", "-f", str(self.workdir)], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Peer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
