"""The concurrency models, written once: what the runner, the tests and the scripts know of
each. A new model is a new entry here (docs/architecture.md lists the other files it touches).

The per-connection costs are what a held connection really takes from the limits a machine
sets, measured on the servers (tests/integration/test_capacity.py holds every model near them):
the descriptors that one process of the model holds for it (ulimit -n is per process), and the
tasks (processes or threads) it adds under kernel.pid_max, threads-max and ulimit -u."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    name: str
    kind: str                  # how it serves connections: "processes", "threads", "event loop"
    port: int                  # default ports: serving and metrics
    metrics_port: int
    worker_cap_flag: str | None  # the flag that caps its workers, set at least to the hold
    # Descriptors one of its processes holds per connection: 0 where each connection has a
    # process of its own (a prefork child holds its one socket under its own ulimit -n).
    descriptors_per_connection: int
    tasks_per_connection: int  # processes or threads per connection
    # What a held connection may cost in memory at most, to refuse a hold that cannot fit:
    # about ten times what the hold measures (docs/reading-the-report.md, "Memory per connection").
    memory_bound_bytes: int
    colour: str                # in charts and dashboards
    # Flags that start the workers for `{n}` connections before the hold's load arrives, where
    # starting them on demand is itself the bottleneck of the ramp (prefork: a fork costs about
    # 1 ms on a VM, and the spawner competes for the CPU with the children it forked). Apache's
    # advice for a known peak is the same: StartServers and MaxSpareServers at that peak.
    hold_prestart_flags: tuple[str, ...] = ()

    def prestart_flags(self, connections: int) -> list[str]:
        return [flag.replace("{n}", str(connections)) for flag in self.hold_prestart_flags]

    @property
    def binary(self) -> str:
        return f"echolab-{self.name}"


REGISTRY = (
    Model("prefork", "processes", 8081, 9101, "--max-workers", descriptors_per_connection=0,
          tasks_per_connection=1, memory_bound_bytes=1 << 20, colour="#d95f02",
          hold_prestart_flags=("--start-servers", "{n}", "--max-spare", "{n}")),
    Model("threads", "threads", 8082, 9102, "--max-threads", descriptors_per_connection=1,
          tasks_per_connection=1, memory_bound_bytes=256 << 10, colour="#1b9e77"),
    Model("pool", "event loop", 8083, 9103, None, descriptors_per_connection=1,
          tasks_per_connection=0, memory_bound_bytes=256 << 10, colour="#7570b3"),
    # SO_REUSEPORT spreads connections by a hash, not evenly: one worker may hold them all.
    Model("hybrid", "event loop", 8084, 9104, None, descriptors_per_connection=1,
          tasks_per_connection=0, memory_bound_bytes=256 << 10, colour="#e7298a"),
)
BY_NAME = {model.name: model for model in REGISTRY}
NAMES = tuple(model.name for model in REGISTRY)
