"""python3 -m compare diff OLD NEW: one comparison run against another, figure by figure.

Usage: python3 -m compare diff OLD NEW [--out DIR]

For every figure both runs measured: the two medians, their ratio, and a verdict from the runs
themselves: an exact Mann-Whitney U test of OLD's runs against NEW's (two-sided, alpha 0.10),
"better" or "worse" by the figure's direction when it rejects, "no difference within ±X" when
it does not (X: the widest change any pair of runs shows), and "cannot tell" beyond one run's
noise when a side has a single run. Writes diff.md and diff.html into DIR (default: NEW) and
prints a summary. Refuses (exit 2) runs of different plans or result formats; warns when the
machines differ. How to read it: docs/reading-the-report.md, section "Run against run"."""

import argparse
import html
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from .guard import guarded
from .report import RESULTS_FORMAT, cell, table

# Two-sided. The smallest p-value three runs against three can reach (every run of one side
# beyond every run of the other) is 2/20 = 0.10, and the full run makes three: a stricter level
# could never say anything of it.
ALPHA = 0.10
# Beyond this many ways of splitting the pooled runs, the normal approximation stands in for
# the exact count: 8 runs a side (12,870 splits) are counted, far past the 3 a full run makes,
# and a diff of 800 figures stays a matter of seconds.
EXACT_SPLITS_MAX = 13_000
# What the machines must share for their figures to be read side by side; a difference is a
# warning, not a refusal (the point may be to compare two machines).
MACHINE_KEYS = {"cpu_model": "CPU", "cores_online": "cores online", "cores_usable": "cores usable",
                "kernel": "kernel", "open_files_soft": "ulimit -n"}

HIGHER_IS_BETTER, LOWER_IS_BETTER, NEUTRAL = 1, -1, 0
JUDGED = ("better", "worse", "higher", "lower")
# The first pattern that a figure's name contains decides its direction. Counts that describe
# the setup or a model's nature (processes, threads, workers, clients) are neutral: more is
# neither better nor worse, so their verdict says "higher" or "lower". So are the bounds of a
# difference's band (_high, _low), whatever the difference.
DIRECTIONS = (
    ("_high", NEUTRAL), ("_low", NEUTRAL),
    ("context_switches", LOWER_IS_BETTER), ("cpu_percent", LOWER_IS_BETTER), ("stall", LOWER_IS_BETTER),
    ("errors", LOWER_IS_BETTER), ("lost", LOWER_IS_BETTER), ("extra_cycles", LOWER_IS_BETTER),
    ("rejected", LOWER_IS_BETTER), ("still_open", LOWER_IS_BETTER), ("died", LOWER_IS_BETTER),
    ("difference", NEUTRAL), ("attack_", NEUTRAL),
    ("cpu_nominal", NEUTRAL), ("machine_", NEUTRAL), ("arriving", NEUTRAL), ("pages_per_side", NEUTRAL),
    ("per_second", HIGHER_IS_BETTER), ("_rps", HIGHER_IS_BETTER), ("survived", HIGHER_IS_BETTER),
    ("connections_held", HIGHER_IS_BETTER), ("requests", HIGHER_IS_BETTER),
    ("_mib_s", HIGHER_IS_BETTER),  # a throughput (the communication probe's), before "_mib"
    ("_us", LOWER_IS_BETTER), ("_ms", LOWER_IS_BETTER), ("_ns", LOWER_IS_BETTER),
    ("_kib", LOWER_IS_BETTER), ("_mib", LOWER_IS_BETTER),
)


class Refusal(Exception):
    """Two results this diff cannot compare; its text is the one line the user sees."""


def direction_of(name: str) -> int:
    return next((direction for pattern, direction in DIRECTIONS if pattern in name), NEUTRAL)


# -- the statistic ------------------------------------------------------------------------------

def u_statistic(old: list[float], new: list[float]) -> float:
    """Pairs where NEW's run is above OLD's, ties counting a half."""
    return sum(1.0 if n > o else 0.5 if n == o else 0.0 for n in new for o in old)


def mann_whitney_p(old: list[float], new: list[float]) -> float:
    """Two-sided p-value of U, exact: the share of all splits of the pooled runs into groups of
    these sizes whose U is at least as far from its mean as the one observed (ties included,
    since the splits are of the values themselves)."""
    pooled, size = old + new, len(new)
    centre = len(old) * size / 2
    observed = abs(u_statistic(old, new) - centre)
    if math.comb(len(pooled), size) > EXACT_SPLITS_MAX:
        return _normal_p(observed, len(old), size)
    extreme = total = 0
    for chosen in itertools.combinations(range(len(pooled)), size):
        picked = set(chosen)
        group_new = [pooled[i] for i in chosen]
        group_old = [pooled[i] for i in range(len(pooled)) if i not in picked]
        total += 1
        extreme += abs(u_statistic(group_old, group_new) - centre) >= observed - 1e-9
    return extreme / total


def _normal_p(distance: float, old_size: int, new_size: int) -> float:
    sigma = math.sqrt(old_size * new_size * (old_size + new_size + 1) / 12)
    return math.erfc(max(distance - 0.5, 0) / sigma / math.sqrt(2))


# -- one figure -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FigureDiff:
    """One figure of both runs. `verdict` is "better", "worse" (or "higher", "lower" for a
    figure with no better direction), "no difference" or "cannot tell"; `change` is the
    figure's move NEW against OLD in the direction of its medians; `text` says both."""

    scenario: str
    row: tuple
    model: str
    name: str
    old: dict
    new: dict
    ratio: float | None
    p_value: float | None
    change: str
    verdict: str
    text: str


def _relative(old_runs: list[float], new_runs: list[float]) -> bool:
    """Whether a change reads as a percentage: only where OLD is strictly positive and NEW not
    negative (a difference can be negative, a count can be 0)."""
    return min(old_runs) > 0 and min(new_runs) >= 0


def _band(old_runs: list[float], new_runs: list[float], relative: bool) -> tuple[float, float]:
    """The widest change a pair of runs (one of each side) shows: lowest and highest."""
    if relative:
        return min(new_runs) / max(old_runs) - 1, max(new_runs) / min(old_runs) - 1
    return min(new_runs) - max(old_runs), max(new_runs) - min(old_runs)


def _amount(value: float, relative: bool, render) -> str:
    if relative:
        return f"{value * 100:+.1f}%"
    return ("+" if value > 0 else "-" if value < 0 else "") + render(abs(value))


def _named_move(move: float, direction: int) -> str:
    if move == 0:
        return "same"
    if direction == NEUTRAL:
        return "higher" if move > 0 else "lower"
    return "better" if (move > 0) == (direction == HIGHER_IS_BETTER) else "worse"


def compare_figure(key: tuple, old: dict, new: dict) -> FigureDiff:
    scenario, row, model, name = key
    relative = _relative(old["runs"], new["runs"])
    ratio = new["median"] / old["median"] if relative else None
    move = ratio - 1 if ratio is not None else new["median"] - old["median"]
    change = _named_move(move, direction_of(name))
    p_value, verdict, text = _verdict(old["runs"], new["runs"], move, change, relative, unit_renderer(name))
    return FigureDiff(scenario, row, model, name, old, new, ratio, p_value, change, verdict, text)


def _verdict(old_runs: list[float], new_runs: list[float], move: float, change: str, relative: bool,
             render) -> tuple[float | None, str, str]:
    """(p-value, verdict, its text) of one figure's runs."""
    amount = _amount(move, relative, render)
    if sorted(old_runs) == sorted(new_runs):
        return 1.0, "no difference", "no difference (the same runs)"
    if len(old_runs) == 1 or len(new_runs) == 1:
        return None, "cannot tell", f"{amount} ({change}), one run on a side: cannot tell beyond a single run's noise"
    p_value = mann_whitney_p(old_runs, new_runs)
    low, high = _band(old_runs, new_runs, relative)
    if p_value <= ALPHA and change != "same":
        band = f"{_amount(low, relative, render)} to {_amount(high, relative, render)}"
        return p_value, change, f"{change}: {amount} ({band}, p={p_value:.2f})"
    widest = max(abs(low), abs(high))
    within = f"{widest * 100:.1f}%" if relative else render(widest)
    return p_value, "no difference", f"no difference within ±{within} (p={p_value:.2f})"


UNITS = (("_us", "us"), ("_ms", "ms"), ("_ns", "ns"), ("_kib", "kib"), ("_mib", "mib"), ("_percent", "percent1"))


def unit_kind(name: str) -> str:
    """The report's cell kind for a figure, from its name's unit suffix."""
    return next((kind for suffix, kind in UNITS if name.endswith(suffix)), "number")


def unit_renderer(name: str):
    """A value of this figure with its unit, as the report writes it."""
    kind = unit_kind(name)

    def render(value: float) -> str:
        decimals = 2 if kind in ("number", "ms", "kib", "mib") and abs(value) < 10 and value != int(value) else 0
        return cell({"median": value, "runs": [value]}, kind, decimals)
    return render


# -- two result directories ---------------------------------------------------------------------------

def load_results(directory: Path) -> dict:
    path = directory / "results.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise Refusal(f"{path}: not found (a directory that python3 -m compare wrote?)") from None
    except (OSError, ValueError) as error:
        raise Refusal(f"{path}: unreadable: {error}") from None
    if not isinstance(data, dict) or data.get("tool") != "echolab compare" or "scenarios" not in data:
        raise Refusal(f"{path}: not the results of python3 -m compare")
    # Results written before the format was recorded have the layout of format 1.
    if data.get("format", 1) != RESULTS_FORMAT:
        raise Refusal(f"{path}: results format {data.get('format')!r}; this diff reads format {RESULTS_FORMAT}")
    return data


def plan_differences(old: dict, new: dict) -> list[str]:
    """The settings both runs planned, with other values. A setting only one run has belongs to
    an experiment the other version did not run: its figures are listed as one run's only."""
    old_plan, new_plan = old.get("plan") or {}, new.get("plan") or {}
    return [f"{key} {old_plan[key]!r} vs {new_plan[key]!r}"
            for key in sorted(set(old_plan) & set(new_plan)) if old_plan[key] != new_plan[key]]


def plan_only_in_one(old: dict, new: dict) -> list[str]:
    old_plan, new_plan = old.get("plan") or {}, new.get("plan") or {}
    return ([f"only the old run planned {key} = {old_plan[key]!r}" for key in sorted(set(old_plan) - set(new_plan))]
            + [f"only the new run planned {key} = {new_plan[key]!r}" for key in sorted(set(new_plan) - set(old_plan))])


def check_comparable(old: dict, new: dict) -> None:
    """Refuses runs of different plans: a quick run against a full one, or a hold of other
    connection counts, measures other things under the same names."""
    if old.get("mode") != new.get("mode"):
        raise Refusal(f"a {old.get('mode')} run against a {new.get('mode')} run: their plans differ")
    differences = plan_differences(old, new)
    if differences:
        raise Refusal(f"the runs' plans differ: {'; '.join(differences)}")


def refusal_before_run(baseline: Path | None, mode: str, plan: dict) -> str | None:
    """Why a run about to start with this plan could not be compared with `baseline` (make
    compare BASELINE=...), so that it is said before the run rather than after it."""
    if baseline is None:
        return None
    try:
        check_comparable(load_results(baseline), {"mode": mode, "plan": json.loads(json.dumps(plan))})
    except Refusal as refusal:
        return str(refusal)
    return None


def machine_differences(old: dict, new: dict) -> list[str]:
    """What differs between the two machines, DAMON's state included where a run recorded it."""
    old_machine, new_machine = old.get("machine") or {}, new.get("machine") or {}
    labels = dict(MACHINE_KEYS)
    labels.update({key: key for key in sorted({*old_machine, *new_machine}) if "damon" in key.lower()})
    return [f"{label} {old_machine.get(key)!r} vs {new_machine.get(key)!r}" for key, label in labels.items()
            if old_machine.get(key) != new_machine.get(key)]


# Scenarios whose row is a value the run measured rather than planned: the open loop's rate is
# a share of the slowest model's closed-loop rate of that run. Their rows are matched by this name.
MEASURED_ROWS = {"open_loop": ("the run's own rate",)}


def figures_of(results: dict) -> dict[tuple, dict]:
    """(scenario, row, model, figure) -> its summary, for every figure that has runs."""
    found = {}
    for scenario, entries in results["scenarios"].items():
        for entry in entries:
            row = MEASURED_ROWS.get(scenario, tuple(entry["row"]))
            for name, summary in entry["figures"].items():
                if summary and summary.get("runs"):
                    found[(scenario, row, entry["model"], name)] = summary
    return found


def open_loop_note(old: dict, new: dict) -> list[str]:
    """The open loop's schedule, when the two runs chose different ones."""
    old_rate, new_rate = old.get("open_loop_rate"), new.get("open_loop_rate")
    if old_rate == new_rate or old_rate is None or new_rate is None:
        return []
    return [f"The open loop ran at {old_rate:,.0f} requests/s in OLD and {new_rate:,.0f} in NEW (a share of each "
            "run's slowest closed-loop rate): its figures compare two different loads."]


@dataclass(frozen=True)
class Diff:
    old_dir: Path
    new_dir: Path
    old: dict
    new: dict
    figures: list[FigureDiff]
    only_old: list[tuple]
    only_new: list[tuple]
    machine_warnings: list[str]

    def count(self, verdict: str) -> int:
        return sum(1 for figure in self.figures if figure.verdict == verdict)

    def judged(self) -> list[FigureDiff]:
        """The figures whose runs tell a difference, the first table of the diff."""
        return [figure for figure in self.figures if figure.verdict in JUDGED]


def diff_directories(old_dir: Path, new_dir: Path) -> Diff:
    old, new = load_results(old_dir), load_results(new_dir)
    check_comparable(old, new)
    old_figures, new_figures = figures_of(old), figures_of(new)
    both = [key for key in old_figures if key in new_figures]
    return Diff(old_dir, new_dir, old, new, [compare_figure(key, old_figures[key], new_figures[key]) for key in both],
                [key for key in old_figures if key not in new_figures],
                [key for key in new_figures if key not in old_figures], machine_differences(old, new))


# -- rendering -------------------------------------------------------------------------------------

def row_text(row: tuple) -> str:
    return ", ".join(f"{part:,}" if isinstance(part, int) else str(part) for part in row)


def _median(figure: dict, name: str) -> str:
    return cell(figure, unit_kind(name))


def headline(diff: Diff) -> str:
    runs = f"{_runs_per_side(diff.old)} vs {_runs_per_side(diff.new)} run(s) per figure"
    counts = ", ".join(f"{diff.count(v)} {v}" for v in (*JUDGED, "no difference", "cannot tell") if diff.count(v))
    return f"{len(diff.figures)} figures compared ({runs}): {counts}"


def _runs_per_side(results: dict) -> int:
    return (results.get("plan") or {}).get("repetitions", 0)


def intro_lines(diff: Diff) -> list[str]:
    lines = [f"OLD: {diff.old_dir} ({diff.old.get('started_utc')}, {diff.old.get('mode')} run)",
             f"NEW: {diff.new_dir} ({diff.new.get('started_utc')}, {diff.new.get('mode')} run)",
             headline(diff)]
    if _runs_per_side(diff.old) == 1 or _runs_per_side(diff.new) == 1:
        lines.append("One run per figure on a side: no difference can be told from a single run's noise; "
                     "the changes are shown, never judged.")
    else:
        tested = sum(1 for figure in diff.figures if sorted(figure.old["runs"]) != sorted(figure.new["runs"]))
        lines.append(f"A figure that did not change reads better or worse at p <= {ALPHA:.2f} by chance alone "
                     f"up to {ALPHA:.0%} of the time: by chance alone, about {round(tested * ALPHA)} of the "
                     f"{tested} figures whose runs differ.")
    lines += open_loop_note(diff.old, diff.new)
    lines += [f"NOTE: {note}: its figures are in one run only" for note in plan_only_in_one(diff.old, diff.new)]
    lines += [f"WARNING: the machines differ: {warning}" for warning in diff.machine_warnings]
    return lines


def table_rows(figures: list[FigureDiff]) -> list[list[str]]:
    return [[row_text(f.row), f.model, f.name, _median(f.old, f.name), _median(f.new, f.name),
             f"{f.ratio:.3f}" if f.ratio is not None else "-", f.text] for f in figures]


HEADER = ["row", "model", "figure", "OLD median", "NEW median", "NEW/OLD", "verdict"]


def by_scenario(figures: list[FigureDiff]) -> dict[str, list[FigureDiff]]:
    grouped: dict[str, list[FigureDiff]] = {}
    for figure in figures:
        grouped.setdefault(figure.scenario, []).append(figure)
    return grouped


def render_markdown(diff: Diff) -> str:
    parts = ["# echolab compare: run against run\n", "\n\n".join(intro_lines(diff)) + "\n",
             "How to read it: docs/reading-the-report.md, section \"Run against run\".\n"]
    judged = diff.judged()
    if judged:
        parts.append("## Differences the runs can tell\n\n" + table(HEADER, table_rows(judged)) + "\n")
    for scenario, figures in by_scenario(diff.figures).items():
        parts.append(f"## {scenario}\n\n" + table(HEADER, table_rows(figures)) + "\n")
    parts += [f"## Only in {side}\n\n" + "\n".join(f"- {item}" for item in items) + "\n"
              for side, items in only_in(diff)]
    return "\n".join(parts)


def only_in(diff: Diff) -> list[tuple[str, list[str]]]:
    """The figures one run has and the other lacks (a failed run, a scenario added), by side."""
    return [(side, [f"{scenario}: {row_text(row)}, {model}, {name}" for scenario, row, model, name in keys])
            for side, keys in (("OLD", diff.only_old), ("NEW", diff.only_new)) if keys]


STYLE = """body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}td.num{text-align:right}
.better{background:#d8f5d0}.worse{background:#f9d3d0}.higher,.lower{background:#fdf2c4}
.cannot{color:#777}.warning{color:#a00;font-weight:bold}"""


def _html_table(figures: list[FigureDiff]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    rows = []
    for figure, cells in zip(figures, table_rows(figures)):
        css = figure.verdict.split()[0]
        tds = "".join(f"<td{' class=num' if 3 <= i <= 5 else ''}>{html.escape(c)}</td>" for i, c in enumerate(cells))
        rows.append(f"<tr class={css}>{tds}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(diff: Diff) -> str:
    """One self-contained page: inline style, no script, nothing fetched."""
    intro = "".join(f"<p{' class=warning' if line.startswith('WARNING') else ''}>{html.escape(line)}</p>"
                    for line in intro_lines(diff))
    judged = diff.judged()
    sections = [f"<h2>Differences the runs can tell</h2>{_html_table(judged)}"] if judged else []
    sections += [f"<h2>{html.escape(scenario)}</h2>{_html_table(figures)}"
                 for scenario, figures in by_scenario(diff.figures).items()]
    sections += [f"<h2>Only in {side}</h2><ul>{''.join(f'<li>{html.escape(item)}</li>' for item in items)}</ul>"
                 for side, items in only_in(diff)]
    return (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>echolab compare: run against run</title>"
            f"<style>{STYLE}</style></head><body><h1>echolab compare: run against run</h1>{intro}"
            f"{''.join(sections)}</body></html>\n")


def summary(diff: Diff) -> str:
    """What stdout shows; the machines' differences go to stderr."""
    lines = [line for line in intro_lines(diff) if not line.startswith("WARNING")]
    lines += [f"  {f.scenario}, {row_text(f.row)}, {f.model}, {f.name}: {f.text}" for f in diff.judged()]
    return "\n".join(lines)


def write(diff: Diff, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "diff.md").write_text(render_markdown(diff))
    (out_dir / "diff.html").write_text(render_html(diff))


def run_diff(old_dir: Path, new_dir: Path, out_dir: Path | None) -> int:
    """The whole command: 0 when written, 2 (one line on stderr) when refused."""
    try:
        diff = diff_directories(old_dir, new_dir)
    except Refusal as refusal:
        print(f"compare diff: {refusal}", file=sys.stderr)
        return 2
    for warning in diff.machine_warnings:
        print(f"compare diff: WARNING: the machines differ: {warning}", file=sys.stderr)
    target = out_dir or new_dir
    write(diff, target)
    print(summary(diff))
    print(f"compare diff: {target / 'diff.md'}, {target / 'diff.html'}")
    return 0


def against_baseline(baseline: Path, out_dir: Path) -> int:
    """make compare BASELINE=...: the finished run against the baseline, into its directory.
    The report is already written; a diff that raises costs one line and exit status 1."""
    problems: list[str] = []
    status = guarded(f"diff against {baseline}", lambda: run_diff(baseline, out_dir, out_dir), problems,
                     lambda error: 1)
    for problem in problems:
        print(f"compare: {problem}", file=sys.stderr)
    return status


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m compare diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="the baseline result directory (results/<time>)")
    parser.add_argument("new", type=Path, help="the result directory compared with it")
    parser.add_argument("--out", type=Path, default=None, help="where diff.md and diff.html go (default: NEW)")
    args = parser.parse_args(argv)
    return run_diff(args.old, args.new, args.out)
