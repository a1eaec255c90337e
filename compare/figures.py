"""Figures measured over repeated runs: each is reported as the median of the runs, with the
spread (min-max) beside it, so one noisy run on a shared machine cannot decide a verdict. The
noise band of a difference is the spread of its run medians, never of the samples pooled: a
band of pooled samples widens with every sample taken, whatever the signal."""

import statistics
from collections import defaultdict
from dataclasses import dataclass


def summarize(values: list[float | None], attempts: int | None = None) -> dict | None:
    """{"median", "min", "max", "runs", "attempts"} of the runs that produced a number; None if
    none did. `attempts` counts the runs made, failed ones included (default: one per value),
    so a figure says what it rests on: len(runs) of attempts."""
    runs = [float(v) for v in values if v is not None]
    if not runs:
        return None
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs,
            "attempts": len(values) if attempts is None else attempts}


@dataclass(frozen=True)
class Difference:
    """A process-minus-thread difference: its median, the spread low-high, whether the spread
    covers zero (None when one run gave no spread to judge by), and its text for the report."""

    median: float
    low: float
    high: float
    within_noise: bool | None
    text: str


def difference(median: float | None, low: float | None, high: float | None, render) -> Difference | None:
    """A difference of two measured figures (process minus thread), with the spread of the
    per-repetition differences (low, high). When that spread covers zero the difference is
    inside the noise: its text says "no difference within +/-X", never a figure, and
    within_noise is true. `render` writes a value with its unit. None when a part is missing."""
    if median is None or low is None or high is None:
        return None
    low, high = min(low, high), max(low, high)
    within_noise = low <= 0 <= high
    if within_noise:
        text = f"no difference within ±{render(max(abs(low), abs(high)))}"
    else:
        text = f"{render(median)} ({render(low)} to {render(high)})"
    return Difference(median, low, high, within_noise, text)


def runs_difference(values: list[float | None], render) -> Difference | None:
    """A difference measured once per run: the median of the runs, with the spread of the runs
    (min-max) as its noise band, the same whether each run took 10 samples or 1,000. One run
    has no spread: the difference is given, and within_noise is None (undecided)."""
    runs = [float(v) for v in values if v is not None]
    if not runs:
        return None
    median = statistics.median(runs)
    if len(runs) == 1:
        return Difference(median, median, median, None, f"{render(median)} (one run: no spread to judge the noise)")
    return difference(median, min(runs), max(runs), render)


def ratio_figure(numerator: dict | None, denominator: dict | None, scale: float = 1.0) -> dict | None:
    """median/median, and the spread as the extreme ratios of the runs."""
    if not numerator or not denominator or not denominator["median"]:
        return None
    low = numerator["min"] / denominator["max"] if denominator["max"] else None
    high = numerator["max"] / denominator["min"] if denominator["min"] else None
    median = numerator["median"] / denominator["median"]
    runs = [median * scale] if low is None or high is None else [low * scale, median * scale, high * scale]
    return {"median": median * scale, "min": min(runs), "max": max(runs), "runs": runs}


def median_of(figure: dict | None) -> float | None:
    return figure["median"] if figure else None


class Recorder:
    """Collects one flat dict of figures per (scenario, row, model) and run, and reduces the
    runs to summaries. A row names a variant of the scenario, e.g. ("echolab-load", 100)."""

    def __init__(self) -> None:
        self._runs: dict[tuple, list[dict]] = defaultdict(list)
        self._failed: dict[tuple, list[str]] = defaultdict(list)
        self._order: list[tuple] = []
        self.notes: dict[tuple, list[str]] = defaultdict(list)
        self._series: dict[tuple, list[dict]] = defaultdict(list)

    def _register(self, key: tuple) -> None:
        if key not in self._order:
            self._order.append(key)

    def add(self, scenario: str, row: tuple, model: str, figures: dict, note: str | None = None) -> None:
        key = (scenario, row, model)
        self._register(key)
        self._runs[key].append(figures)
        if note and note not in self.notes[key]:
            self.notes[key].append(note)

    def fail(self, scenario: str, row: tuple, model: str, reason: str) -> None:
        """A run that produced no figure (scenarios.FailedRun): counted in the attempts of
        every figure of its row, never in a median."""
        key = (scenario, row, model)
        self._register(key)
        self._failed[key].append(reason)

    def failed(self, scenario: str, row: tuple, model: str) -> list[str]:
        return self._failed.get((scenario, row, model), [])

    def runs(self, scenario: str, row: tuple, model: str) -> list[dict]:
        return self._runs.get((scenario, row, model), [])

    def figure(self, scenario: str, row: tuple, model: str, name: str) -> dict | None:
        runs = self.runs(scenario, row, model)
        return summarize([run.get(name) for run in runs], len(runs) + len(self.failed(scenario, row, model)))

    def median(self, scenario: str, row: tuple, model: str, name: str) -> float | None:
        return median_of(self.figure(scenario, row, model, name))

    def difference(self, scenario: str, row: tuple, model: str, name: str, render) -> Difference | None:
        """The difference recorded as `name` in each run (there, the median of the run's
        per-sample differences), with the spread of those run medians as its noise band."""
        return runs_difference([run.get(name) for run in self.runs(scenario, row, model)], render)

    def add_series(self, scenario: str, row: tuple, model: str, run: dict) -> None:
        """One recorded run over time (compare/series.py), once per run whatever its figures."""
        self._series[(scenario, row, model)].append(run)

    def series(self, scenario: str, row: tuple, model: str) -> list[dict]:
        return self._series.get((scenario, row, model), [])

    def series_json(self) -> dict:
        """scenario -> list of {row, model, runs: [{run, load, server?}]}, in the order recorded."""
        result: dict[str, list] = defaultdict(list)
        for (scenario, row, model), runs in self._series.items():
            result[scenario].append({"row": list(row), "model": model, "runs": runs})
        return dict(result)

    def rows(self, scenario: str) -> list[tuple]:
        seen = []
        for key_scenario, row, _ in self._order:
            if key_scenario == scenario and row not in seen:
                seen.append(row)
        return seen

    def models(self, scenario: str, row: tuple) -> list[str]:
        return [model for s, r, model in self._order if s == scenario and r == row]

    def to_json(self) -> dict:
        """scenario -> list of {row, model, figures: {name: summary}, notes}."""
        result: dict[str, list] = defaultdict(list)
        for scenario, row, model in self._order:
            runs = self.runs(scenario, row, model)
            names = []
            for run in runs:
                names += [n for n in run if n not in names]
            result[scenario].append({
                "row": list(row),
                "model": model,
                "figures": {name: self.figure(scenario, row, model, name) for name in names},
                "failed_runs": self.failed(scenario, row, model),
                "notes": self.notes.get((scenario, row, model), []),
            })
        return dict(result)
