"""PNG charts of the comparison, drawn by gnuplot (Debian package gnuplot-nox): throughput by
model and concurrency, latency percentiles, memory per held connection, and creation cost.
Each chart's data is written beside it (.dat) so it can be redrawn or plotted elsewhere."""

import math
import shutil
import subprocess
from pathlib import Path

from . import floor
from .figures import Recorder
from .models import BY_NAME
from .plan import Plan
from .scenarios import MODELS

OTHER_COLORS = ("#4477aa", "#ccbb44", "#aa3377", "#66ccee")


def colour(series: str, index: int = 0) -> str:
    """A model's own colour (compare/models.py), the floor's (compare/floor.py); a peer or a
    variant gets one of OTHER_COLORS."""
    model = BY_NAME.get(series)
    if model:
        return model.colour
    return floor.COLOURS.get(series) or OTHER_COLORS[index % len(OTHER_COLORS)]


def gnuplot_available() -> str | None:
    return shutil.which("gnuplot")


def _value(value: float | None) -> str:
    return "?" if value is None else f"{value:.6g}"


def _write_data(path: Path, header: list[str], rows: list[list]) -> None:
    """Whitespace-separated columns, the label first; a comment line names the columns (no
    header row, so bars and value labels count rows alike)."""
    lines = ["# " + " ".join(f'"{h}"' for h in header)]
    for label, *values in rows:
        lines.append(f'"{label}" ' + " ".join(_value(v) for v in values))
    path.write_text("\n".join(lines) + "\n")


def _clustered(data: Path, png: Path, title: str, ylabel: str, series: list[str],
               log_floor: float | None) -> str:
    """A gnuplot script for clustered bars: one cluster per data row, one bar per series, each
    bar labelled with its value."""
    count = len(series)
    colors = [colour(s, i) for i, s in enumerate(series)]
    plots = []
    for i, color in enumerate(colors):
        column = i + 2
        plots.append(f"'{data}' using {column}:xtic(1) title '{series[i]}' lc rgb '{color}'")
    offset = lambda i: f"($0 + {(i - (count - 1) / 2) / (count + 1.5):.4f})"
    for i in range(count):
        column = i + 2
        label = f"(${column} >= 10 ? sprintf(\"%.0f\", ${column}) : sprintf(\"%.1f\", ${column}))"
        plots.append(f"'{data}' using {offset(i)}:{column}:{label} "
                     "with labels rotate by 90 left offset 0,0.3 font ',7' notitle")
    lines = [
        "set terminal pngcairo noenhanced size 1100,600 font 'sans,10'",
        f"set output '{png}'",
        f"set title '{title}'",
        f"set ylabel '{ylabel}'",
        "set datafile missing '?'",
        "set style data histograms",
        "set style histogram clustered gap 1.5",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set key outside top center horizontal",
        "set grid ytics",
        "set xtics nomirror rotate by 20 right",
    ]
    lines += ["set logscale y", f"set yrange [{log_floor:g}:*]"] if log_floor else ["set yrange [0:*]", "set offsets 0,0,graph 0.12,0"]
    lines.append("plot " + ", \\\n     ".join(plots))
    return "\n".join(lines) + "\n"


def _draw(directory: Path, name: str, title: str, ylabel: str, header: list[str], rows: list[list],
          log: bool) -> Path | None:
    if not rows or all(v is None for row in rows for v in row[1:]):
        return None
    data, png, script = directory / f"{name}.dat", directory / f"{name}.png", directory / f"{name}.gp"
    _write_data(data, header, rows)
    positive = [v for row in rows for v in row[1:] if v is not None and v > 0]
    # On a log scale the bars start at a power of ten below the smallest value, so none vanishes.
    log_floor = min(1.0, 10 ** math.floor(math.log10(min(positive)))) if log and positive else None
    script.write_text(_clustered(data, png, title, ylabel, header[1:], log_floor))
    completed = subprocess.run([gnuplot_available() or "gnuplot", str(script)], capture_output=True,
                               text=True, timeout=60, check=False)
    if completed.returncode != 0 or not png.exists():
        raise RuntimeError(f"gnuplot failed on {script}: {completed.stderr.strip()[:300]}")
    return png


def draw_all(out_dir: Path, recorder: Recorder, plan: Plan) -> list[str]:
    """The charts that have data, as paths relative to `out_dir`."""
    if not gnuplot_available():
        return []
    directory = out_dir / "charts"
    directory.mkdir(parents=True, exist_ok=True)
    median = recorder.median
    made = []

    # The floor beside the models: the most this machine serves (where the plan measured it).
    served = [*MODELS, *floor.NAMES]
    throughput = [[f"{tool} c={c:,}"] + [median("closed_loop", (tool, c), m, "requests_per_second") for m in served]
                  for tool, c in recorder.rows("closed_loop")]
    made.append(_draw(directory, "throughput", "Throughput, closed loop, HTTP keep-alive (median)",
                      "requests/s", ["scenario", *served], throughput, log=False))

    latency = []
    for tool, c in recorder.rows("closed_loop"):
        if tool != "echolab-load":
            continue
        for key, label in (("p50_us", "p50"), ("p99_us", "p99"), ("p99_9_us", "p99.9")):
            latency.append([f"c={c:,} {label}"] + [median("closed_loop", (tool, c), m, key) for m in MODELS])
    for row in recorder.rows("open_loop"):
        for key, label in (("p50_us", "p50"), ("p99_us", "p99"), ("p99_9_us", "p99.9")):
            latency.append([f"open {row[0]:,.0f}/s {label}"] + [median("open_loop", row, m, key) for m in MODELS])
    made.append(_draw(directory, "latency", "Latency percentiles, echolab-load (median of runs; log scale)",
                      "microseconds", ["percentile", *MODELS], latency, log=True))

    memory = []
    for row in recorder.rows("hold"):
        for key, label in (("rss_per_connection_kib", "RSS"), ("pss_per_connection_kib", "PSS")):
            memory.append([f"{label} per connection ({row[0]:,} held)"] + [median("hold", row, m, key) for m in MODELS])
    made.append(_draw(directory, "memory", "Memory per held connection (log scale)", "KiB",
                      ["figure", *MODELS], memory, log=True))

    probe = lambda name: median("probe", ("spawn",), "machine", name)
    spawn = [["fork", probe("fork_p50_us"), probe("large_parent_fork_p50_us")],
             ["fork+exec", probe("fork_exec_p50_us"), probe("large_parent_fork_exec_p50_us")],
             ["posix_spawn", probe("posix_spawn_p50_us"), probe("large_parent_posix_spawn_p50_us")],
             ["thread", probe("thread_p50_us"), probe("large_parent_thread_p50_us")]]
    large_rss = probe("large_parent_parent_rss_kib")
    large_label = f"from a {large_rss / 1024:.0f} MiB parent" if large_rss else "from a large parent"
    made.append(_draw(directory, "spawn", "Creation cost, median (log scale)", "microseconds",
                      ["how", "from a small parent", large_label], spawn, log=True))
    made.append(slow_clients_chart(directory, recorder))
    return [str(path.relative_to(out_dir)) for path in made if path is not None]


def slow_clients_chart(directory: Path, recorder: Recorder) -> Path | None:
    """The normal clients' rate before, during and after each attack (defence on), per server."""
    rows = [row for row in recorder.rows("slow_clients") if row[1] == "defended"]
    servers = []
    for row in rows:
        servers += [m for m in recorder.models("slow_clients", row) if m not in servers]
    data = []
    for attack, defence in rows:
        for window in ("before", "during", "after"):
            data.append([f"{attack.replace('_', ' ')}: {window}"] +
                        [recorder.median("slow_clients", (attack, defence), m, f"{window}_rps") for m in servers])
    return _draw(directory, "slow_clients", "Normal keep-alive clients beside S slow clients (defence on)",
                 "requests/s of the normal clients", ["window", *servers], data, log=False)
