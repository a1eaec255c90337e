"""The echolab servers under comparison: started on free loopback ports with the same
settings, watched, restarted after a crash, and stopped."""

import os
import random
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import processes
from .models import BY_NAME, NAMES, REGISTRY

LOOPBACK = "127.0.0.1"
MODELS = NAMES
# The models whose workers each run an event loop: a slow connection costs them a socket and a
# buffer, not a worker.
EVENT_LOOP_MODELS = tuple(model.name for model in REGISTRY if model.kind == "event loop")
# hybrid's default: one event-loop process per CPU.
HYBRID_WORKERS = os.cpu_count() or 1


# Every port this process handed out, with its claim while it holds one. The claim is an
# abstract Unix socket named after the port: the kernel lets one socket in the machine (in this
# network namespace) hold a name and drops it when its process ends, so echolab processes running
# side by side (CTest runs four test files at once, each starting servers and Docker stacks) never
# pick the same port in the moment between choosing it and binding it. A file lock would do the
# same, but leaves files behind and depends on who may write where.
_ports_handed_out: dict[int, socket.socket | None] = {}


def claim_port(port: int) -> socket.socket | None:
    """This process's claim on `port`, or None when another process holds it."""
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        claim.bind(f"\0echolab-port-{port}")
    except OSError:
        claim.close()
        return None
    return claim


def free_port() -> int:
    """A loopback port that was free a moment ago, below the ephemeral range (32768+), so the
    kernel cannot hand it to some client's outgoing connection before a server binds it.
    Claimed until release_port() (see _ports_handed_out), and never handed out twice in one
    process: a server's listening and metrics ports are both taken before it binds either, and
    a port that is free for one is free for the other."""
    while True:
        port = random.randrange(20000, 32000)
        if port in _ports_handed_out or (claim := claim_port(port)) is None:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                claim.close()
                continue
        _ports_handed_out[port] = claim
        return port


def release_port(port: int) -> None:
    """Drops the claim on `port` once something listens on it (the listener guards it from then
    on: a port someone listens on fails free_port's probe). The port is still never handed out
    again by this process."""
    if claim := _ports_handed_out.get(port):
        claim.close()
        _ports_handed_out[port] = None


def listening(port: int) -> bool:
    """True when a socket listens on `port`, seen in /proc/net/tcp: no connection is made, so
    a server's counters are not disturbed by the check."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            continue
    return False


def settings_for(model: str, connections: int) -> list[str]:
    """The flags that make the models comparable: the same connection cap everywhere
    (enough for the hold), and each model's worker cap at least that high. Everything else
    stays at the servers' defaults, which are what the docs describe."""
    cap = str(connections + 64)
    # Longer than the hold's interval between two requests of one connection (30 s).
    flags = ["--max-connections", cap, "--idle-timeout", "60s"]
    if worker_cap_flag := BY_NAME[model].worker_cap_flag:
        flags += [worker_cap_flag, cap]
    if model == "hybrid":
        flags += ["--workers", str(HYBRID_WORKERS)]  # said, so that the report can say it
    return flags


def with_flag(flags: list[str], name: str, value: str) -> list[str]:
    """`flags` with `name` set to `value`: replaced where it is given, added where it is not
    (a server refuses an option given twice)."""
    if name not in flags[:-1]:
        return [*flags, name, value]
    at = flags.index(name)
    return [*flags[:at + 1], value, *flags[at + 2:]]


def flag_value(flags: list[str], name: str) -> str | None:
    """The value that follows `name` in a server's flags (the last one, as CLI11 takes it)."""
    values = [flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag == name]
    return values[-1] if values else None


@dataclass
class Server:
    """One server process (its own process group, so a prefork master's children go with it),
    on loopback ports of its own. The one launcher of echolab's servers: the compare runner's,
    and, wrapped, the integration tests'."""

    name: str
    model: str
    binary: Path
    flags: list[str]
    log_dir: Path
    metrics: bool = True                 # False: no --metrics-listen
    env: dict[str, str] | None = None
    preexec_fn: Callable[[], None] | None = None  # run in the child before exec, e.g. a resource limit
    port: int = 0
    metrics_port: int = 0
    process: subprocess.Popen | None = None
    restarts: int = 0
    log_offset: int = 0
    command: list[str] = field(default_factory=list)

    def choose_ports(self) -> None:
        """Free loopback ports, and the command line that listens on them (which a caller may
        still wrap, e.g. in prlimit, before start())."""
        self.port = free_port()
        self.metrics_port = free_port() if self.metrics else 0
        self.command = [str(self.binary), "--listen", f"{LOOPBACK}:{self.port}"]
        if self.metrics:
            self.command += ["--metrics-listen", f"{LOOPBACK}:{self.metrics_port}"]
        self.command += self.flags

    def start(self, timeout: float = 30.0) -> "Server":
        if not self.command:
            self.choose_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = processes.spawn(self.command, log_path=self.log_path, env=self.env,
                                       preexec_fn=self.preexec_fn)
        deadline = time.monotonic() + timeout
        # The ports listen before /metrics has its handler (a scrape in between is a 404):
        # the start line, written once everything serves, is the readiness signal.
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode} before "
                                   f"listening; see {self.log_path}:\n{self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} is not ready on {self.port} after {timeout}s; "
                                   f"see {self.log_path}:\n{self.log_text()[-2000:]}")
            time.sleep(0.01)
        release_port(self.port)
        release_port(self.metrics_port)
        return self

    def ready(self) -> bool:
        return (listening(self.port) and (not self.metrics or listening(self.metrics_port))
                and self.started())

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def log_text(self) -> str:
        """What this start wrote to the log (a restart appends to the same log)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def started(self) -> bool:
        """True once this start's line is in the log."""
        return "event=start " in self.log_text()

    def restart(self) -> None:
        """Starts the server again after it died, as a supervisor (systemd, Kubernetes) would,
        on new ports."""
        if self.process is not None:
            processes.stop(self.process, grace_s=1)
        self.restarts += 1
        self.choose_ports()
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        if self.process is None:
            return None
        status = processes.stop(self.process)
        self.process = None
        return status

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics"
