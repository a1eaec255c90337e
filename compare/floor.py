"""The floor of the machine: echolab-floor (bench/floor/), the least an HTTP/1.1 keep-alive
responder can do per request, on epoll and on io_uring. Not a model (compare/models.py): it is
measured beside the models and the peers, and every server's CPU per request is stated as a
multiple of the epoll floor's; it is given no verdict and no memory figure (docs/floor.md)."""

from collections.abc import Callable
from pathlib import Path

from .cells import duration_us, rests_on
from .servers import MODELS, Server

# server name -> --backend
BACKENDS = {"floor-epoll": "epoll", "floor-io_uring": "io_uring"}
NAMES = tuple(BACKENDS)
REFERENCE = "floor-epoll"  # what "CPU per request vs floor" divides by
BINARY = "echolab-floor"
COLOURS = {"floor-epoll": "#666666", "floor-io_uring": "#a6761d"}


def display(name: str) -> str:
    """floor-epoll -> "floor (epoll)"."""
    return f"floor ({BACKENDS[name]})" if name in BACKENDS else name


def floor_server(name: str, bin_dir: Path, workers: int, log_dir: Path) -> Server:
    """An echolab-floor on a free loopback port (not started)."""
    return Server(name, "floor", bin_dir / BINARY, ["--backend", BACKENDS[name], "--workers", str(workers)],
                  log_dir, metrics=False)


def ratio_text(cpu_us: float | None, floor_cpu_us: float | None) -> str:
    """A server's CPU per request as a multiple of the floor's: "1.12x", or "-" when either
    was not measured."""
    if cpu_us is None or not floor_cpu_us:
        return "-"
    return f"{cpu_us / floor_cpu_us:.2f}x"


# The columns of the table of multiples: each model, and the other floor.
MULTIPLE_COLUMNS = (*MODELS, "floor-io_uring")
MULTIPLES_TITLE = "CPU per request, as a multiple of the epoll floor"


def multiple_cell(figure: dict | None) -> str:
    """A multiple of the floor over the runs (each run's CPU per request over the epoll floor's
    in the same repetition): the median with the runs' spread, or, when the spread reaches 1
    (the runs cannot tell the server from the floor), "no difference within ±X %" - never a
    multiple below 1 read as a saving."""
    if figure is None:
        return "-"
    median, low, high = figure["median"], figure["min"], figure["max"]
    if len(figure["runs"]) == 1:
        text = f"{median:.2f}x (one run: no spread to judge the noise)"
    elif low <= 1 <= high:
        text = f"no difference within ±{max(1 - low, high - 1) * 100:.0f} %"
    else:
        text = f"{median:.2f}x ({low:.2f}-{high:.2f}x)"
    return text + rests_on(figure)


def multiples_rows(levels: list[int], figure_of: Callable[[int, str, str], dict | None]) -> list[list[str]]:
    """The rows of the table of multiples, one per connection count: the epoll floor's own CPU
    per request, then each column's multiple. figure_of(connections, server, name) gives a
    closed-loop echolab-load figure (from the recorder, or from results.json)."""
    rows = []
    for connections in levels:
        reference = figure_of(connections, REFERENCE, "cpu_per_request_us")
        if reference is None:
            continue  # the floor was not measured at this level (the QUICK plan)
        rows.append([f"{connections:,}", duration_us(reference["median"]),
                     *(multiple_cell(figure_of(connections, name, "cpu_vs_floor_ratio"))
                       for name in MULTIPLE_COLUMNS)])
    return rows


MULTIPLES_HEADER = ["connections", "floor (epoll): CPU per request", *(display(n) for n in MULTIPLE_COLUMNS)]
