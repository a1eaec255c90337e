"""The CPU time a server's processes spend during a load run, read from the scheduler's own
count (processes.group_cpu_seconds: /proc/PID/task/TID/schedstat), and that time per request.
Used by make peers and by make compare's closed loop alike."""

import threading
import time

from . import processes

# The window read inside a run of `seconds`: from 10 % of it until a tail before its end, when
# every connection (and every worker thread or process serving one) is up and none has left
# yet. The tail is a fifth of the run, and a second at least (a quarter of a run under four):
# the second reading must end before the run does, and a busy machine wakes the reader late
# (0.4 s late once, beside three test files, in a 2 s run whose tail was a fifth). The window
# runs from this object's start, not the load's: a short run keeps most of itself inside.
WINDOW_START = 0.1
TAIL_SHARE, TAIL_MIN_S = 0.2, 1.0


def window_end(seconds: float) -> float:
    """When, into a run of `seconds`, the window's second reading is taken."""
    return seconds - max(TAIL_SHARE * seconds, min(TAIL_MIN_S, seconds / 4))


def cpu_reading_at(pgid: int, moment: float) -> tuple[float, float]:
    """The group's CPU seconds read at `moment` (time.monotonic()), and when the reading was
    taken: the middle of it, as reading 10,000 processes takes a while."""
    time.sleep(max(moment - time.monotonic(), 0))
    begun = time.monotonic()
    cpu = processes.group_cpu_seconds(pgid)
    return cpu, (begun + time.monotonic()) / 2


class CpuWindow:
    """Reads the CPU time of process group `pgid` at 10 % of a run of `seconds` that starts
    now and again before its tail (window_end), in a thread of its own. finish(), called when
    the run is over, gives the CPU seconds and the wall seconds between the two readings, or
    None when the second reading ended after the run did (threads that served it may have
    exited with their time): such a window is dropped, not reported."""

    def __init__(self, pgid: int, seconds: float):
        self._run_over = threading.Event()
        self._window: tuple[float, float] | None = None
        started = time.monotonic()
        self._reader = threading.Thread(target=self._read, args=(pgid, started, seconds), daemon=True)
        self._reader.start()

    def _read(self, pgid: int, started: float, seconds: float) -> None:
        cpu_before, at_before = cpu_reading_at(pgid, started + WINDOW_START * seconds)
        cpu_after, at_after = cpu_reading_at(pgid, started + window_end(seconds))
        if not self._run_over.is_set():
            self._window = (cpu_after - cpu_before, at_after - at_before)

    def finish(self) -> tuple[float, float] | None:
        self._run_over.set()
        self._reader.join()
        return self._window


def cpu_us_per_request(window: tuple[float, float] | None, requests_per_second: float | None) -> float | None:
    """The window's CPU time divided by the requests served in it at the run's rate."""
    if window is None or not requests_per_second:
        return None
    cpu_seconds, wall_seconds = window
    return cpu_seconds * 1e6 / max(requests_per_second * wall_seconds, 1)
