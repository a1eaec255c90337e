"""report.html: results.json rendered as one self-contained page, written beside report.md.

The page is built from results.json alone (and, for the percentile curves, from the histograms
echolab-load wrote in raw/), so it shows the very figures report.md shows. It carries no
script, no font and no link outside itself: styles and SVG charts are inline, so it opens
offline in any browser and sends no request."""

import json
import re
from html import escape
from pathlib import Path

from . import floor, hgrm, series, svg
from .cells import rests_on, value_text
from .figures import ratio_figure
from .scenarios import raw_name

PAGE = "report.html"

# Each scenario's section: its anchor (the key in results.json), title and how a row reads.
SECTIONS = (
    ("closed_loop", "Throughput and latency (closed loop)", lambda r: f"{r[0]}, {r[1]:,} connections"),
    ("open_loop", "Open loop", lambda r: f"{r[0]:,.0f} requests/s scheduled"),
    ("churn", "Connection churn", lambda r: f"{r[0]:,} clients, a new connection per request"),
    ("hold", "10,000 connections", lambda r: f"{r[0]:,} connections held"),
    ("blocking", "Blocking work", lambda r: f"{r[0]:,} GET beside {r[1]:,} /sleep connections"),
    ("crash", "Crash containment", lambda r: f"{r[0]:,} keep-alive clients, one crash"),
    ("blast_radius", "Blast radius", lambda r: f"hybrid --workers {r[0]}"),
    ("slow_clients", "Slow clients", lambda r: f"{r[0].replace('_', ' ')}, {r[1]}"),
    ("probe", "Raw costs (echolab-probe)", lambda r: str(r[0])),
    ("disclosure", "Memory disclosure (GET /leak)", lambda r: "one compromised handler's scan"),
    ("corruption", "Heap corruption (GET /corrupt)", lambda r: "one corrupting request, then every client"),
    ("peers", "Peers", lambda r: f"{r[0]}, {r[1]:,} connections"),
)
TITLES = {key: title for key, title, _ in SECTIONS}
# The experiment behind each claim (claims.py's keys): where its row links to.
CLAIM_EXPERIMENTS = {"process_creation": "probe", "thread_creation": "probe", "creation_ratio": "probe",
                     "crash_containment": "crash", "switch_ratio": "probe", "tlb_flush": "probe",
                     "stack_size": "probe", "ten_thousand": "hold", "address_spaces": "hold",
                     "slow_connection_cost": "slow_clients", "hybrid_tradeoff": "blast_radius",
                     "communication": "probe", "thread_exhaustion": "probe", "fork_descriptors": "probe",
                     "memory_disclosure": "disclosure", "heap_corruption": "corruption"}
UNIT = re.compile(r"_(us|ms|kib|mib|ns|percent|ratio)(?=_|$)")
UNIT_KINDS = {"us": ("us", 0), "ms": ("ms", 1), "kib": ("kib", 1), "mib": ("mib", 1), "ns": ("ns", 0),
              "percent": ("percent1", 1), "ratio": ("ratio", 1)}
# A figure report.md computes from two of results.json's (a ratio): its name ends so.
DERIVED = "_derived"
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1180px;padding:0 16px 40px;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 6px;
vertical-align:top;text-align:left}td.num{text-align:right;white-space:nowrap}th{background:#f4f4f4}
.wrap{overflow-x:auto}.verdict{font-weight:bold}.holds{color:#1a7f37}.does-not-hold{color:#b42318}
.partly{color:#9a6700}.not-measured{color:#666}.failed{color:#b42318;font-weight:bold}
.spread{display:block;margin-left:auto}.spread line{stroke:#555;stroke-width:2}.spread circle{fill:#222}
svg.chart{max-width:100%;height:auto;display:block;margin:1em 0}.chart-title{font-weight:bold;font-size:14px}
.legend,.tick{font-size:11px}.value{font-size:9px;fill:#333}.axis-label{font-size:12px}.grid{stroke:#e5e5e5}
.whisker{stroke:#222;stroke-width:1.4;fill:none}code,pre{background:#f6f6f6;font-size:12.5px}
pre{padding:8px;overflow-x:auto}
"""


def kind_of(name: str, value: float) -> tuple[str, int]:
    """How a figure is written, from its name's unit (p99_us, rss_mib ...), as in report.md."""
    match = UNIT.search(name)
    if match:
        return UNIT_KINDS[match.group(1)]
    return "number", 0 if float(value).is_integer() or abs(value) >= 100 else 2


def figure_label(name: str) -> str:
    """p99_9_us -> "p99.9", rss_per_connection_kib -> "rss per connection": the unit is in the cell."""
    words = UNIT.sub("", re.sub(r"p(\d+)_(\d+)", r"p\1.\2", name.removesuffix(DERIVED)))
    return words.replace("_", " ") + (" (from two figures)" if name.endswith(DERIVED) else "")


def figure_text(name: str, value: float) -> str:
    return value_text(value, *kind_of(name, value))


def figure_key(scenario: str, row: list, model: str, name: str) -> str:
    """The cell's data-figure attribute: where in results.json its figure is."""
    return f"{scenario}/{','.join(str(part) for part in row)}/{model}/{name}"


# -- tables -----------------------------------------------------------------------------------

def spread_mark(figure: dict, scale_max: float) -> str:
    """A min-max line with the median as a dot, on a scale shared by the table's row."""
    width, pad = 90, 4
    place = lambda v: pad + (width - 2 * pad) * (v / scale_max if scale_max > 0 else 0)  # noqa: E731
    low, high, median = (place(max(figure[k], 0)) for k in ("min", "max", "median"))
    return (f'<svg class="spread" width="{width}" height="10" viewBox="0 0 {width} 10">'
            f'<line x1="{low:.1f}" x2="{max(high, low + 1):.1f}" y1="5" y2="5"/>'
            f'<circle cx="{median:.1f}" cy="5" r="2.5"/></svg>')


def figure_cell(scenario: str, entry: dict, name: str, scale_max: float) -> str:
    figure = entry["figures"].get(name)
    if figure is None:
        return "<td class=\"num\">-</td>"
    median = figure["median"]
    text = figure_text(name, median)
    if len(figure["runs"]) > 1 and figure["min"] != figure["max"]:
        text += f" ({figure_text(name, figure['min'])}-{figure_text(name, figure['max'])})"
    hover = ("the ratio of the medians, its spread the extreme ratios of the runs" if name.endswith(DERIVED)
             else "runs: " + ", ".join(figure_text(name, v) for v in figure["runs"]))
    return (f'<td class="num" data-figure="{escape(figure_key(scenario, entry["row"], entry["model"], name))}" '
            f'data-median="{median!r}" title="{escape(hover)}">{escape(text)}'
            f'<span class="failed">{escape(rests_on(figure))}</span>{spread_mark(figure, scale_max)}</td>')


def column_head(label: str, entry: dict) -> str:
    failed = entry.get("failed_runs") or []
    mark = (f'<br><span class="failed" title="{escape("; ".join(failed))}">{len(failed)} failed run'
            f'{"s" if len(failed) > 1 else ""}</span>' if failed else "")
    return f"<th>{escape(label)}{mark}</th>"


def figures_table(scenario: str, columns: list[tuple[str, dict]]) -> str:
    """Figures as rows, one column per (label, entry); each cell the median, its spread as text
    and as a line, and how many runs it rests on when some failed."""
    names = []
    for _, entry in columns:
        names += [n for n in entry["figures"] if n not in names]
    rows = []
    for name in names:
        present = [e["figures"][name] for _, e in columns if e["figures"].get(name)]
        scale_max = max([abs(f["max"]) for f in present] + [0.0])
        rows.append(f"<tr><th>{escape(figure_label(name))}</th>" +
                    "".join(figure_cell(scenario, e, name, scale_max) for _, e in columns) + "</tr>")
    head = "<tr><th>figure</th>" + "".join(column_head(label, e) for label, e in columns) + "</tr>"
    return f'<div class="wrap"><table>{head}{"".join(rows)}</table></div>'


def derived_figures(data: dict, scenario: str, entry: dict) -> dict:
    """The ratios report.md shows beside results.json's figures: GET/s under blocking work as a
    share of the unblocked closed loop, and the probes' process/thread ratios."""
    figures = entry["figures"]
    pair = lambda numerator, denominator: ratio_figure(figures.get(numerator), figures.get(denominator))  # noqa: E731
    if scenario == "blocking":
        plan = data.get("plan") or {}
        base = find(data, "closed_loop", ["echolab-load", (plan.get("concurrency") or [0])[0]], entry["model"])
        unblocked = base[0]["figures"].get("requests_per_second") if base else None
        return {f"vs_unblocked_percent{DERIVED}": ratio_figure(figures.get("requests_per_second"), unblocked, 100)}
    if scenario == "probe" and entry["row"] == ["context-switch"]:
        return {f"{prefix}process_per_thread_ratio{DERIVED}": pair(f"{prefix}process_ns", f"{prefix}thread_ns")
                for prefix in ("", "touching_")}
    if scenario == "probe" and entry["row"] == ["rmap"]:
        counts = [name.rsplit("_", 1)[1] for name in figures if name.startswith("process_ns_at_")]
        return {f"process_per_thread_ratio_at_{n}{DERIVED}": pair(f"process_ns_at_{n}", f"thread_ns_at_{n}")
                for n in counts}
    return {}


def with_derived(data: dict, scenario: str, entry: dict) -> dict:
    derived = {name: figure for name, figure in derived_figures(data, scenario, entry).items() if figure}
    return dict(entry, figures={**entry["figures"], **derived})


def scenario_tables(scenario: str, entries: list[dict], row_title, data: dict) -> str:
    """One table per row of the scenario with the models as columns; a scenario of one model
    per row (the blast radius) is one table with the rows as columns. The probes keep a table
    each: their rows measure different things."""
    entries = [with_derived(data, scenario, entry) for entry in entries]
    rows = []
    for entry in entries:
        if entry["row"] not in rows:
            rows.append(entry["row"])
    by_row = [[e for e in entries if e["row"] == row] for row in rows]
    if all(len(group) == 1 for group in by_row) and len(rows) > 1 and scenario != "probe":
        return figures_table(scenario, [(row_title(group[0]["row"]), group[0]) for group in by_row])
    return "".join(f"<h3>{escape(row_title(group[0]['row']))}</h3>" +
                   figures_table(scenario, [(e["model"], e) for e in group]) for group in by_row)


# -- charts -----------------------------------------------------------------------------------

def find(data: dict, scenario: str, row: list | None, model: str | None) -> list[dict]:
    return [e for e in (data.get("scenarios") or {}).get(scenario, [])
            if (row is None or e["row"] == row) and (model is None or e["model"] == model)]


def bar(entry: dict, name: str, series: str | None = None) -> svg.Bar | None:
    figure = entry["figures"].get(name)
    if figure is None:
        return None
    return svg.Bar(series or entry["model"], figure["median"], figure["min"], figure["max"],
                   figure_text(name, figure["median"]))


def grouped(data: dict, scenario: str, name: str, label, keep=lambda e: True) -> list[tuple[str, list[svg.Bar]]]:
    """One group per row of `scenario` (labelled by `label(row)`), one bar per model."""
    groups: dict[str, list[svg.Bar]] = {}
    for entry in find(data, scenario, None, None):
        made = bar(entry, name) if keep(entry) else None
        if made is not None:
            groups.setdefault(label(entry["row"]), []).append(made)
    return list(groups.items())


def chart(chart_id: str, title: str, groups, y_label: str, kind: str, log: bool = False) -> str:
    groups = [(label, bars) for label, bars in groups if bars]
    if not groups:
        return ""
    return svg.bar_chart(chart_id, title, groups, y_label, lambda v: value_text(v, kind, 0 if float(v).is_integer() else 1), log)


def closed_loop_charts(data: dict) -> str:
    throughput = grouped(data, "closed_loop", "requests_per_second", lambda r: f"{r[0]} c={r[1]:,}")
    latency = []
    for key, label in (("p50_us", "p50"), ("p99_us", "p99"), ("p99_9_us", "p99.9")):
        latency += grouped(data, "closed_loop", key, lambda r, label=label: f"c={r[1]:,} {label}",
                           keep=lambda e: e["row"][0] == "echolab-load")
    return (chart("chart-throughput", "Throughput by model and concurrency (median, whisker: runs' min-max)",
                  throughput, "requests/s", "number") +
            chart("chart-latency", "Latency by model and concurrency, echolab-load (log scale)",
                  latency, "latency", "us", log=True) + floor_multiples_table(data))


def floor_multiples_table(data: dict) -> str:
    """The table of report.md's throughput section, each model's CPU per request as a multiple
    of the epoll floor's, from results.json."""
    def figure_of(connections: int, server: str, name: str) -> dict | None:
        entries = find(data, "closed_loop", ["echolab-load", connections], server)
        return entries[0]["figures"].get(name) if entries else None

    rows = floor.multiples_rows((data.get("plan") or {}).get("floor_concurrency") or [], figure_of)
    if not rows:
        return ""
    head = "".join(f"<th>{escape(label)}</th>" for label in floor.MULTIPLES_HEADER)
    body = "".join("<tr>" + "".join(f'<td class="num">{escape(text)}</td>' for text in row) + "</tr>"
                   for row in rows)
    return (f'<h3 id="floor-multiples">{escape(floor.MULTIPLES_TITLE)}</h3>'
            f'<div class="wrap"><table><tr>{head}</tr>{body}</table></div>')


def hold_chart(data: dict) -> str:
    groups = []
    for key, label in (("rss_per_connection_kib", "RSS"), ("pss_per_connection_kib", "PSS")):
        groups += grouped(data, "hold", key, lambda r, label=label: f"{label} per connection ({r[0]:,} held)")
    return chart("chart-memory", "Memory per held connection (log scale)", groups, "per connection", "kib", log=True)


def spawn_chart(data: dict) -> str:
    groups = []
    for entry in find(data, "probe", ["spawn"], None):
        for how in ("fork", "fork_exec", "posix_spawn", "thread"):
            bars = [bar(entry, f"{prefix}{how}_p50_us", series)
                    for prefix, series in (("", "small parent"), ("large_parent_", "large parent"))]
            groups.append((how.replace("_", "+" if how == "fork_exec" else "_"), [b for b in bars if b]))
    return chart("chart-spawn", "Creation cost, median of the samples (log scale)", groups, "latency", "us", log=True)


def slow_clients_chart(data: dict) -> str:
    groups = []
    for window in ("before", "during", "after"):
        groups += grouped(data, "slow_clients", f"{window}_rps",
                          lambda r, window=window: f"{r[0].replace('_', ' ')}:\n{window}",
                          keep=lambda e: e["row"][1] == "defended")
    groups.sort(key=lambda group: group[0].split(":")[0], reverse=True)
    return chart("chart-slow-clients", "Normal clients' requests/s before, during and after the attack (defence on)",
                 groups, "requests/s", "number")


def blast_radius_charts(data: dict) -> str:
    """What one crash loses against the throughput, hybrid at each worker count beside the
    other models (their crash and closed-loop figures)."""
    concurrency = ((data.get("plan") or {}).get("concurrency") or [0])[0]
    lost, rates = [], []
    for entry in find(data, "blast_radius", None, "hybrid"):
        label = f"hybrid\n--workers {entry['row'][0]}"
        lost.append((label, [bar(entry, "connections_lost")]))
        rates.append((label, [bar(entry, "requests_per_second")]))
    others = lambda scenario, row: [e for e in find(data, scenario, row, None) if e["model"] != "hybrid"]  # noqa: E731
    lost += [(e["model"], [bar(e, "connections_lost")]) for e in others("crash", None)]
    rates += [(e["model"], [bar(e, "requests_per_second")])
              for e in others("closed_loop", ["echolab-load", concurrency])]
    drop_missing = lambda groups: [(label, [b for b in bars if b]) for label, bars in groups]  # noqa: E731
    return (chart("chart-blast-lost", "Connections one crash loses", drop_missing(lost), "connections", "number") +
            chart("chart-blast-rate", f"Requests/s, closed loop at {concurrency:,} connections", drop_missing(rates),
                  "requests/s", "number"))


SCENARIO_CHARTS = {"closed_loop": closed_loop_charts, "hold": hold_chart, "probe": spawn_chart,
                   "slow_clients": slow_clients_chart, "blast_radius": blast_radius_charts}


# -- percentile curves from the raw histograms ------------------------------------------------

def merged_histogram(paths: list[Path], key: str) -> dict | None:
    """The histograms `key` of the runs that did not fail, added bucket by bucket."""
    buckets: dict[int, int] = {}
    merged = None
    for path in paths:
        data = hgrm.read_result(path)
        histogram = data and not data.get("failure") and data["histograms"].get(key)
        if not histogram or not histogram["count"]:
            continue
        for value, count in histogram["buckets"]:
            buckets[value] = buckets.get(value, 0) + count
        merged = dict(histogram) if merged is None else {
            "count": merged["count"] + histogram["count"], "sum": merged["sum"] + histogram["sum"],
            "min": min(merged["min"], histogram["min"]), "max": max(merged["max"], histogram["max"])}
    if merged is None:
        return None
    merged["buckets"] = sorted(buckets.items())
    return merged


def curve(series: str, histogram: dict) -> svg.Curve:
    return svg.Curve(series, [(1 / (1 - p / 100), value / hgrm.NS_PER_US)
                              for value, p, _ in hgrm.percentile_distribution(histogram) if p < 100])


def percentile_charts(data: dict, raw_dir: Path) -> str:
    """One chart per load shape: each closed-loop level, the open loop and the hold's requests."""
    plan = data.get("plan") or {}
    repetitions = range(plan.get("repetitions", 1))
    shapes = [(f"closed loop, {c:,} connections", "latency_ns", lambda m, r, c=c: raw_name("closed", c, m, r))
              for c in plan.get("concurrency", [])]
    shapes += [("open loop", "latency_ns", lambda m, r: raw_name("open", m, r)),
               ("requests during the hold", "hold_latency_ns", lambda m, r: raw_name("hold", m, r))]
    models = [e["model"] for e in find(data, "closed_loop", None, None) if e["row"][0] == "echolab-load"]
    parts = []
    for index, (label, key, name) in enumerate(shapes):
        curves = []
        for model in dict.fromkeys(models):
            histogram = merged_histogram([raw_dir / f"{name(model, r)}.json" for r in repetitions], key)
            if histogram:
                curves.append(curve(model, histogram))
        if curves:
            parts.append(svg.percentile_chart(f"chart-percentiles-{index}", f"Latency by percentile: {label}",
                                              curves, "latency", lambda v: value_text(v, "us")))
    return "".join(parts)


# -- the page ---------------------------------------------------------------------------------

def claims_section(data: dict) -> str:
    rows = []
    for claim in data.get("claims", []):
        verdict = claim["verdict"]
        target = CLAIM_EXPERIMENTS.get(claim["key"])
        link = (f'<a href="#{target}">{escape(TITLES[target])}</a>' if target in data.get("scenarios", {})
                else "")
        rows.append(f'<tr id="claim-{escape(claim["key"])}"><td>{escape(claim["claim"])}</td>'
                    f'<td>{escape(claim["measured"])}</td><td class="verdict {verdict.replace(" ", "-")}">'
                    f'{escape(verdict)}</td><td>{escape(claim["why"])}</td><td>{link}</td></tr>')
    return ('<h2 id="claims">Claims</h2><p>Each claim of the article beside what this machine measured; '
            'the verdict is computed from the figures below, and each row links to its experiment.</p>'
            '<div class="wrap"><table><tr><th>claim (article)</th><th>measured here</th><th>verdict</th>'
            f'<th>why</th><th>experiment</th></tr>{"".join(rows)}</table></div>')


def scenario_sections(data: dict) -> str:
    parts = []
    for key, title, row_title in SECTIONS:
        entries = data.get("scenarios", {}).get(key)
        if not entries:
            continue
        charts = SCENARIO_CHARTS.get(key, lambda d: "")(data)
        parts.append(f'<h2 id="{key}">{escape(title)}</h2>{charts}{scenario_tables(key, entries, row_title, data)}'
                     f'{series_charts(data, key, row_title)}')
    return "".join(parts)


# What the series charts draw: (chart name, title, y label, value kind, decimals, the points of
# one run). The load's series for every run; the server's only where the hold scraped it.
LOAD_SERIES_CHARTS = (
    ("rate", "Requests per second", "requests/s", "number", 0, lambda run: series.rates(run["load"])),
    ("p99", "p99 latency of each second", "p99", "us", 0, lambda run: series.points(run["load"], "p99_us")),
)
SERVER_SERIES_CHARTS = (
    ("held", "Connections held (server, at each scrape)", "connections", "number", 0,
     lambda run: series.points(run["server"], "connections", "at_s")),
    ("cpu", "Server CPU between scrapes", "cores", "number", 2,
     lambda run: series.points(run["server"], "cpu_cores", "at_s")),
    ("pss", "Server memory (PSS) at each scrape", "PSS", "mib", 0,
     lambda run: series.points(run["server"], "pss_mib", "at_s")),
)


def series_charts(data: dict, scenario: str, row_title) -> str:
    """Each row of the experiment over time: small multiples, a panel per model and a line per
    run, folded away under a <details> (a full run has dozens of them)."""
    entries = (data.get("series") or {}).get(scenario) or []
    rows: list[list] = []
    for entry in entries:
        if entry["row"] not in rows:
            rows.append(entry["row"])
    parts = []
    for row_index, row in enumerate(rows):
        models = [entry for entry in entries if entry["row"] == row]
        with_server = any("server" in run for entry in models for run in entry["runs"])
        charts = LOAD_SERIES_CHARTS + (SERVER_SERIES_CHARTS if with_server else ())
        drawn = []
        for name, title, y_label, kind, decimals, points in charts:
            panels = [svg.Panel(entry["model"], entry["model"],
                                [svg.Curve(run["run"] or f"run {i + 1}", points(run))
                                 for i, run in enumerate(entry["runs"]) if name in ("rate", "p99") or "server" in run])
                      for entry in models]
            if any(len(line.points) >= 2 for panel in panels for line in panel.lines):
                drawn.append(svg.small_multiples(
                    f"series-{scenario}-{row_index}-{name}", f"{title}: {row_title(row)}", panels, y_label,
                    lambda v, kind=kind, decimals=decimals: value_text(v, kind, decimals)))
        if drawn:
            parts.append(f"<details><summary>Over time, second by second: {escape(row_title(row))}</summary>"
                         f"{''.join(drawn)}</details>")
    return "".join(parts)


def key_value_table(pairs) -> str:
    """A table of settings as results.json names them, whole numbers with thousands separators."""
    text = lambda v: f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)  # noqa: E731
    return ("<table>" + "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(text(v))}</td></tr>" for k, v in pairs)
            + "</table>")


def machine_section(data: dict) -> str:
    capacity = data.get("capacity") or {}
    reasons = "".join(f"<li>{escape(r)}</li>" for r in capacity.get("reasons") or [])
    servers = "".join(f"<li>{escape(name)}: <code>{escape(' '.join([Path(c[0]).name, *c[1:]]))}</code></li>"
                      for name, c in (data.get("servers") or {}).items())
    return ('<h2 id="machine">Machine and limits</h2>' + key_value_table((data.get("machine") or {}).items()) +
            "<h3>Connections the limits allow</h3>" + key_value_table((capacity.get("limits") or {}).items()) +
            (f"<p><b>Scaled down</b> to {capacity.get('connections', 0):,} connections:</p><ul>{reasons}</ul>"
             if reasons else "<p>Nothing was scaled down.</p>") +
            "<details><summary>The plan (every setting of the run)</summary>" +
            key_value_table((data.get("plan") or {}).items()) + "</details>" +
            f"<h3>Servers (exact command lines)</h3><ul>{servers}</ul>")


def reproduce_section(data: dict) -> str:
    quick = data.get("mode") == "quick"
    return ('<h2 id="reproduce">How to reproduce</h2><pre>'
            f"make compare{' QUICK=1' if quick else ''}        # on a Debian 12 machine, as root or with sudo\n"
            "# or by hand, from the repository root:\n"
            "cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release\n"
            "cmake --build build-release --target echolab-prefork echolab-threads echolab-pool echolab-hybrid "
            "echolab-load echolab-probe\n"
            f"/usr/bin/python3 -m compare --bin-dir build-release/bin{' --quick' if quick else ''} --out DIR</pre>"
            "<p>Every figure is in <code>results.json</code>; every load run's own JSON, output and "
            "<code>.hgrm</code> percentile distributions are in <code>raw/</code>. "
            "docs/reading-the-report.md explains each figure.</p>")


def failures_section(data: dict) -> str:
    failures = data.get("failures") or []
    if not failures:
        return '<h2 id="failures">Failures</h2><p>None: every measurement ran.</p>'
    return ('<h2 id="failures">Failures</h2><ul class="failed">' +
            "".join(f"<li>{escape(f)}</li>" for f in failures) + "</ul>")


def render(data: dict, raw_dir: Path) -> str:
    """The whole page: verdicts first, then every scenario with its charts and tables, the
    percentile curves, the machine, the commands and the failures."""
    machine = data.get("machine") or {}
    heading = (f"{escape(str(data.get('started_utc', '')))}, {escape(str(data.get('mode', '')))} run, "
               f"{(data.get('runtime_s') or 0) / 60:.1f} minutes, on {escape(str(machine.get('cpu_model', '?')))} "
               f"({machine.get('cores_usable', '?')} cores), {escape(str(machine.get('kernel', '?')))}.")
    curves = percentile_charts(data, raw_dir)
    body = (f"<h1>echolab compare: processes vs threads, measured</h1><p>{heading} Each figure is the median "
            "of its runs; the line under it spans the runs' min-max, the dot is the median.</p>" +
            claims_section(data) + scenario_sections(data) +
            ('<h2 id="percentiles">Latency distributions</h2><p>From the histograms echolab-load keeps (raw/, '
             'every run of a model added together), as HdrHistogram plots them.</p>' + curves if curves else "") +
            machine_section(data) + reproduce_section(data) + failures_section(data))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>echolab compare, '
            f'{escape(str(data.get("started_utc", "")))}</title><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>{body}</body></html>\n')


def write(out_dir: Path, data: dict) -> Path:
    """report.html from `data` exactly as results.json holds it (a JSON round trip)."""
    page = out_dir / PAGE
    page.write_text(render(json.loads(json.dumps(data, default=str)), out_dir / "raw"))
    return page
