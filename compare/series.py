"""Each recorded run over time: echolab-load's second-by-second series and, for the hold, the
server's connections, CPU and memory at each scrape, on the load's clock.

A run's medians hide a stall, a ramp or a warm-up; its series shows them. results.json keeps
one entry per recorded run under "series" (not per figure), each as columns (one list per
key, a value per second) so that a key is written once per run rather than once per second."""

LOAD_COLUMNS = ("duration_s", "requests", "errors", "p50_us", "p90_us", "p99_us", "max_us", "connections_open")
SERVER_COLUMNS = ("at_s", "connections", "cpu_cores", "pss_mib")


def load_columns(series: list[dict] | None) -> dict | None:
    """echolab-load's "series" (a list of per-second objects) as columns; None for a result
    without one (wrk, or an echolab-load that wrote none)."""
    if not series:
        return None
    return {key: [entry.get(key) for entry in series] for key in LOAD_COLUMNS}


def server_columns(readings: list[tuple], load_start_unix_s: float | None, wall_minus_monotonic: float) -> dict:
    """The server at each scrape of the hold: `readings` are (scrape, monotonic time, the server's
    CPU seconds so far). `at_s` is the scrape's time in seconds from the load's start (the
    second k of the load's series spans at_s k to k + 1); `cpu_cores` the cores the server used
    since the scrape before (None for the first)."""
    columns: dict[str, list] = {key: [] for key in SERVER_COLUMNS}
    previous = None
    for scrape, at, cpu_seconds in readings:
        columns["at_s"].append(round(at + wall_minus_monotonic - load_start_unix_s, 3)
                               if load_start_unix_s is not None else None)
        columns["connections"].append(scrape.total("echolab_connections_active"))
        pss = scrape.total("echolab_memory_pss_bytes")
        columns["pss_mib"].append(round(pss / 2**20, 2) if pss is not None else None)
        cores = None
        if previous is not None and at > previous[0]:
            cores = round((cpu_seconds - previous[1]) / (at - previous[0]), 3)
        columns["cpu_cores"].append(cores)
        previous = (at, cpu_seconds)
    return columns


# A last second shorter than this is left out of the charts: a rate or a p99 over a few
# milliseconds (the run's end a hair after its last full second) says nothing.
SHORTEST_SECOND_DRAWN_S = 0.5


def rates(columns: dict) -> list[tuple[float, float]]:
    """(second, requests per second) of a load series."""
    return [(second, requests / duration)
            for second, (requests, duration) in enumerate(zip(columns["requests"], columns["duration_s"]))
            if duration and duration >= SHORTEST_SECOND_DRAWN_S]


def points(columns: dict, key: str, x_key: str | None = None) -> list[tuple[float, float]]:
    """(x, value) of one column without the missing values: x the second of a load series, or
    the column `x_key` (the server's at_s)."""
    if x_key:
        return [(x, value) for x, value in zip(columns[x_key], columns[key]) if x is not None and value is not None]
    return [(second, value) for second, (value, duration) in enumerate(zip(columns[key], columns["duration_s"]))
            if value is not None and duration and duration >= SHORTEST_SECOND_DRAWN_S]
