"""Every process the comparison starts, and the guarantee that none outlives it.

Each child runs in a process group of its own (so a prefork master's children, or a load
generator's threads, go with it) and asks the kernel to kill it if this runner dies
(PR_SET_PDEATHSIG). On a normal exit, Ctrl-C, SIGTERM or an exception, every group still alive
is sent SIGTERM, then SIGKILL."""

import atexit
import ctypes
import os
import signal
import subprocess
import time

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_started: list[subprocess.Popen] = []


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. A runner killed with SIGKILL gets no chance to
    # clean up; this makes the kernel send SIGTERM to the direct child then.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: list[str], log_path=None, env=None, stdout=None, preexec_fn=None) -> subprocess.Popen:
    """Starts a child in its own process group, stderr (and stdout unless given) into
    `log_path`; `preexec_fn` runs in the child before exec, after the death signal is set.
    Call from the main thread only: the death signal follows the thread that forked."""

    def child_setup() -> None:
        _die_with_parent()
        if preexec_fn is not None:
            preexec_fn()

    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(args, stdout=stdout if stdout is not None else log, stderr=log,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                   preexec_fn=child_setup)
    finally:
        if log_path:
            log.close()
    _started.append(process)
    return process


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop(process: subprocess.Popen, grace_s: float = 15.0) -> int | None:
    """SIGTERM to the child, the time it needs for a graceful exit, then SIGKILL to its whole
    group (children a master failed to reap included). Returns the child's exit status."""
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    status = process.poll()
    _signal_group(process, signal.SIGKILL)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process in _started:
        _started.remove(process)
    return status


def proc_stat_fields():
    """(pid, fields) of every process now in /proc: the fields of /proc/PID/stat after the
    command in parentheses (which may hold spaces), so state is 0, ppid 1, pgrp 2, session 3
    and num_threads 17. A process that exits while it is read is skipped."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            yield int(entry), fields


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat as proc_stat_fields gives them; None once it has exited."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _tasks(pid: int, fields: list[str]) -> list[str]:
    """The process's thread ids: a single-threaded process's is its own."""
    return os.listdir(f"/proc/{pid}/task") if int(fields[17]) > 1 else [str(pid)]


def group_processes(pgid: int):
    """(pid, fields) of every process in group `pgid`, found from its leader down through
    /proc/PID/task/TID/children: at the cost of the group's size, not the machine's. (A scan of
    all of /proc, beside test runs holding thousands of processes, took longer than the CPU
    window of a 2 s load run.) Where the kernel has no such files, or the leader is gone, every
    process is read. A process that exits while it is read is skipped."""
    if not os.path.exists(f"/proc/{pgid}/task/{pgid}/children"):
        yield from ((pid, fields) for pid, fields in proc_stat_fields() if int(fields[2]) == pgid)
        return
    pending = [pgid]
    while pending:
        pid = pending.pop()
        fields = _stat_fields(pid)
        if fields is None or int(fields[2]) != pgid:
            continue  # exited, or left the group (and took its own children with it)
        try:
            for task in _tasks(pid, fields):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except OSError:
            continue  # exited meanwhile
        yield pid, fields


def group_cpu_seconds(pgid: int) -> float:
    """CPU time used so far by the live threads of every process in group `pgid`, from the
    scheduler's own nanosecond count (/proc/PID/task/TID/schedstat). Not utime and stime of
    /proc/PID/stat: those are sampled at clock ticks, and for 5,000 prefork children each
    running a few milliseconds a second they came out 200 times too low. A thread that has
    exited is no longer counted, so take both readings of a difference while the workers are
    all alive (in the middle of a load run, not around it)."""
    nanoseconds = 0
    for pid, fields in group_processes(pgid):
        try:
            for task in _tasks(pid, fields):
                with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                    nanoseconds += int(schedstat.read().split()[0])
        except OSError:
            continue  # exited meanwhile
    return nanoseconds / 1e9


def stop_all() -> None:
    for process in list(_started):
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in list(_started):
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pass
    for process in list(_started):
        _signal_group(process, signal.SIGKILL)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _started.remove(process)


def _exit_on_signal(signum, _frame) -> None:
    # Unwinds through every `finally`, then atexit stops what is left.
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    atexit.register(stop_all)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
