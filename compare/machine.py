"""What this machine is and what its limits allow: the preflight of a comparison run.

The 10,000-connection hold needs, at once, 10,000 descriptors in the load generator and in
each server process that holds them (ulimit -n is per process), 10,000 processes (prefork) or
threads (threads) under pid_max and threads-max, and 10,000 ephemeral ports on loopback: each
model's own costs are in compare/models.py. Where a limit forbids that, the run is scaled down and the
report says so, rather than failing halfway through."""

import os
import platform
import resource
from dataclasses import dataclass, field
from pathlib import Path

from .models import REGISTRY, Model

# Descriptors a process needs beside its connections (listeners, logs, /proc reads, epoll).
SPARE_DESCRIPTORS = 256
# Tasks (processes and threads) left free for everything else running on the machine.
SPARE_TASKS = 1024
# Ephemeral ports left free for the churn scenario's TIME_WAIT sockets and other clients.
SPARE_PORTS = 2048


def _read(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read().strip()
    except OSError:
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _meminfo_bytes(key: str) -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def _running_tasks() -> int:
    """Tasks (threads of every process) alive now, from /proc/loadavg's 'running/total'."""
    loadavg = (_read("/proc/loadavg") or "0 0 0 0/0").split()
    return int(loadavg[3].split("/")[1])


def _cpu_mhz(cpu: dict[str, str]) -> float | None:
    khz = _read_int("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if khz:
        return khz / 1000.0
    try:
        return float(cpu["cpu MHz"])
    except (KeyError, ValueError):
        return None


@dataclass
class Machine:
    cpu_model: str
    cores_online: int
    cores_usable: int
    cpu_mhz: float | None
    pcid: bool
    invpcid: bool
    meltdown: str | None
    kernel: str
    memory_total_bytes: int | None
    memory_available_bytes: int | None
    open_files_soft_before: int
    open_files_soft: int
    open_files_hard: int
    processes_limit: int | None
    pid_max: int | None
    threads_max: int | None
    tasks_running: int
    ephemeral_ports: tuple[int, int] | None
    somaxconn: int | None
    tcp_tw_reuse: int | None
    # DAMON's monitors ("on: paddr", "off", "absent"): a kernel daemon that walks the reverse
    # map of sampled pages, so its cost grows with the processes that map them (prefork).
    damon: str = "absent"

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        data["ephemeral_ports"] = list(self.ephemeral_ports) if self.ephemeral_ports else None
        return data


def _unlimited(value: int) -> int | None:
    return None if value == resource.RLIM_INFINITY else value


def inspect_machine() -> Machine:
    """Reads the machine, raising the soft descriptor limit to the hard one on the way (every
    server and load generator started later inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft_before = soft
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cpu = _cpuinfo()
    flags = cpu.get("flags", "").split()
    port_range = (_read("/proc/sys/net/ipv4/ip_local_port_range") or "").split()
    return Machine(
        cpu_model=cpu.get("model name") or cpu.get("Model") or platform.processor() or "unknown",
        cores_online=os.cpu_count() or 1,
        cores_usable=len(os.sched_getaffinity(0)),
        cpu_mhz=_cpu_mhz(cpu),
        pcid="pcid" in flags,
        invpcid="invpcid" in flags,
        meltdown=_read("/sys/devices/system/cpu/vulnerabilities/meltdown"),
        kernel=f"{platform.system()} {platform.release()}",
        memory_total_bytes=_meminfo_bytes("MemTotal"),
        memory_available_bytes=_meminfo_bytes("MemAvailable"),
        open_files_soft_before=soft_before,
        open_files_soft=soft,
        open_files_hard=hard,
        processes_limit=_unlimited(resource.getrlimit(resource.RLIMIT_NPROC)[0]),
        pid_max=_read_int("/proc/sys/kernel/pid_max"),
        threads_max=_read_int("/proc/sys/kernel/threads-max"),
        tasks_running=_running_tasks(),
        ephemeral_ports=(int(port_range[0]), int(port_range[1])) if len(port_range) == 2 else None,
        somaxconn=_read_int("/proc/sys/net/core/somaxconn"),
        tcp_tw_reuse=_read_int("/proc/sys/net/ipv4/tcp_tw_reuse"),
        damon=_damon_state(),
    )


def _damon_state() -> str:
    """Whether DAMON monitors run, and what they monitor (its sysfs interface; absent when the
    kernel has none)."""
    kdamonds = Path("/sys/kernel/mm/damon/admin/kdamonds")
    running = []
    for kdamond in sorted(kdamonds.glob("[0-9]*")):
        if _read(str(kdamond / "state")) == "on":
            for context in sorted(kdamond.glob("contexts/[0-9]*")):
                running.append(_read(str(context / "operations")) or "unknown")
    if running:
        return "on: " + ", ".join(running)
    return "off" if kdamonds.is_dir() else "absent"


@dataclass
class ModelCapacity:
    """The most connections one model can hold here, exactly, and the limit that sets it."""

    connections: int
    binding_limit: str


@dataclass
class Capacity:
    """How many connections the run may hold at once (the same for every model, so that they
    are compared at one size), what each model alone would allow, and every reason the hold is
    fewer than asked."""

    connections: int
    limits: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    per_model: dict[str, ModelCapacity] = field(default_factory=dict)


@dataclass
class _Limit:
    connections: int
    hint: str


def _load_generator_limits(machine: Machine) -> dict[str, _Limit]:
    """What bounds echolab-load, whatever the model: a descriptor and a local port per
    connection, in one process."""
    limits = {"ulimit -n (echolab-load)": _Limit(
        machine.open_files_soft - SPARE_DESCRIPTORS,
        f"ulimit -n is {machine.open_files_soft} (hard limit {machine.open_files_hard}) and "
        "echolab-load holds a descriptor per connection; raise the hard limit in "
        "/etc/security/limits.conf or with `ulimit -Hn` as root")}
    if machine.ephemeral_ports:
        low, high = machine.ephemeral_ports
        limits["ephemeral ports"] = _Limit(
            high - low + 1 - SPARE_PORTS,
            f"net.ipv4.ip_local_port_range is {low}-{high}; widen it with "
            "`sysctl -w net.ipv4.ip_local_port_range='1024 65000'`")
    return limits


def _server_limits(machine: Machine, model: Model) -> dict[str, _Limit]:
    """What bounds one model's server, from its per-connection costs (compare/models.py)."""
    limits = {}
    if machine.memory_available_bytes:
        limits["memory"] = _Limit(
            machine.memory_available_bytes // 2 // model.memory_bound_bytes,
            f"{machine.memory_available_bytes / 2**30:.1f} GiB of memory is available, half of it "
            f"for the hold, and a connection may cost {model.name} up to "
            f"{model.memory_bound_bytes >> 10} KiB")
    if model.descriptors_per_connection:
        limits["ulimit -n (server)"] = _Limit(
            (machine.open_files_soft - SPARE_DESCRIPTORS) // model.descriptors_per_connection,
            f"ulimit -n is {machine.open_files_soft} (hard limit {machine.open_files_hard}) and "
            f"{model.name} holds {model.descriptors_per_connection} descriptor(s) per connection "
            "in one process; raise the hard limit in /etc/security/limits.conf or with "
            "`ulimit -Hn` as root")
    if not model.tasks_per_connection:
        return limits
    ceilings = [v for v in (machine.pid_max, machine.threads_max) if v]
    if ceilings:
        limits["pid_max/threads-max"] = _Limit(
            (min(ceilings) - machine.tasks_running - SPARE_TASKS) // model.tasks_per_connection,
            f"kernel.pid_max is {machine.pid_max} and kernel.threads-max {machine.threads_max}, "
            f"with {machine.tasks_running} tasks already running, and {model.name} takes a "
            f"{'process' if model.kind == 'processes' else 'thread'} per connection; raise them "
            "with `sysctl -w kernel.pid_max=...`")
    if machine.processes_limit is not None and os.geteuid() != 0:
        limits["ulimit -u"] = _Limit(
            (machine.processes_limit - machine.tasks_running - SPARE_TASKS) // model.tasks_per_connection,
            f"ulimit -u is {machine.processes_limit}; raise it with `ulimit -u`")
    return limits


def connection_capacity(machine: Machine, wanted: int) -> Capacity:
    """The most connections every model and the load generator can hold at once here: each
    model's own ceiling from its costs, and the hold, the smallest of them, rounded down to
    hundreds so that tables read "4,800" rather than "4,837"."""
    shared = _load_generator_limits(machine)
    per_model: dict[str, ModelCapacity] = {}
    limits: dict[str, int] = {name: limit.connections for name, limit in shared.items()}
    reasons = [f"{limit.hint}: at most {max(limit.connections, 0):,} connections"
               for limit in shared.values() if limit.connections < wanted]
    for model in REGISTRY:
        own = _server_limits(machine, model)
        limits.update({f"{name}, {model.name}": limit.connections for name, limit in own.items()})
        reasons += [f"{limit.hint}: at most {max(limit.connections, 0):,} {model.name} connections"
                    for limit in own.values() if limit.connections < wanted]
        name, limit = min({**shared, **own}.items(), key=lambda item: item[1].connections)
        per_model[model.name] = ModelCapacity(connections=max(limit.connections, 0), binding_limit=name)
    allowed = min([wanted] + [capacity.connections for capacity in per_model.values()])
    connections = max(allowed // 100 * 100 if allowed >= 200 else allowed, 0)
    return Capacity(connections=connections, limits=limits, reasons=reasons, per_model=per_model)


# -- what the kernel spends during a measurement ----------------------------------------------

# The kernel threads that walk the reverse map of pages (DAMON's access checks, reclaim,
# compaction, huge-page collapse): each visit of a page costs one step per address space that
# maps it, so a prefork server's thousands of children make them slower.
MM_THREAD_PREFIXES = ("kdamond", "kswapd", "kcompactd", "khugepaged")


def mm_thread_pids() -> dict[int, str]:
    """pid -> name of the kernel's memory-management threads (children of kthreadd, pid 2)."""
    threads = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if not stat or ")" not in stat:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        if fields[1] == "2" and name.startswith(MM_THREAD_PREFIXES):
            threads[int(entry)] = name
    return threads


@dataclass
class KernelCpu:
    """One reading: CPU seconds of each mm kernel thread (the scheduler's nanosecond count in
    /proc/PID/schedstat, exact where utime+stime are sampled at ticks), and the machine's CPU
    time by kind, in ticks, from the "cpu" line of /proc/stat."""

    mm_threads_s: dict[str, float]
    user_ticks: int
    system_ticks: int
    total_ticks: int


def kernel_cpu(threads: dict[int, str]) -> KernelCpu:
    seconds = {}
    for pid, name in threads.items():
        schedstat = _read(f"/proc/{pid}/schedstat")
        if schedstat:
            seconds[name] = int(schedstat.split()[0]) / 1e9
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
    # counted in user.
    ticks = [int(v) for v in (_read("/proc/stat") or "cpu 0").splitlines()[0].split()[1:]] + [0] * 10
    return KernelCpu(mm_threads_s=seconds, user_ticks=ticks[0] + ticks[1],
                     system_ticks=ticks[2] + ticks[5] + ticks[6], total_ticks=sum(ticks[:8]))


def kernel_cpu_figures(before: KernelCpu, after: KernelCpu, seconds: float) -> dict:
    """Between two readings `seconds` apart: the mm threads' CPU as a percentage of one CPU
    (kdamond apart, as it is on by default on some kernels), and the machine's user and
    system shares of all its CPUs."""
    used = {name: after.mm_threads_s[name] - before.mm_threads_s.get(name, after.mm_threads_s[name])
            for name in after.mm_threads_s}
    total = after.total_ticks - before.total_ticks
    percent = lambda value: value / seconds * 100 if seconds > 0 else None
    share = lambda ticks: ticks / total * 100 if total > 0 else None
    return {
        "mm_threads_cpu_percent": percent(sum(used.values())),
        "kdamond_cpu_percent": percent(sum(v for n, v in used.items() if n.startswith("kdamond"))),
        "machine_user_percent": share(after.user_ticks - before.user_ticks),
        "machine_system_percent": share(after.system_ticks - before.system_ticks),
    }
