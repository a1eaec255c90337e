"""SVG charts drawn in plain Python for report.html: clustered bars with a whisker over each
run's spread, and percentile curves. Every mark is computed from the figures; nothing runs in
the browser, so the page needs no script and opens offline."""

import math
from dataclasses import dataclass
from html import escape

from .charts import colour

WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 78, 34, 36, 64


@dataclass(frozen=True)
class Bar:
    """One bar: its series (a model), the median it stands for and the runs' spread."""

    series: str
    median: float
    low: float
    high: float
    text: str  # the figure as the tables write it, shown on hover


@dataclass(frozen=True)
class Curve:
    series: str
    points: list[tuple[float, float]]  # (x, y) in data units


class Scale:
    """Data to pixels along one axis, linear or logarithmic (log10)."""

    def __init__(self, low: float, high: float, start: float, end: float, log: bool):
        self.log = log
        self.low, self.high = (math.log10(low), math.log10(high)) if log else (low, high)
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        value = math.log10(max(value, 10 ** self.low)) if self.log else value
        share = (value - self.low) / (self.high - self.low) if self.high > self.low else 0.0
        return self.start + share * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0 ** e for e in range(math.floor(self.low), math.ceil(self.high) + 1)
                    if self.low - 1e-9 <= e <= self.high + 1e-9]
        step = nice_step((self.high - self.low) / 5)
        return [i * step for i in range(math.ceil(self.low / step), math.floor(self.high / step) + 1)]


def nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _log_bounds(values: list[float]) -> tuple[float, float]:
    positive = [v for v in values if v > 0] or [1.0]
    return 10 ** math.floor(math.log10(min(positive))), 10 ** math.ceil(math.log10(max(positive)))


def _frame(title: str, chart_id: str, legend: list[str]) -> list[str]:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" role="img" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
             f'<title>{escape(title)}</title>',
             f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>']
    x = LEFT
    for index, series in enumerate(legend):
        parts.append(f'<rect x="{x}" y="22" width="10" height="10" fill="{colour(series, index)}"/>'
                     f'<text x="{x + 14}" y="31" class="legend">{escape(series)}</text>')
        x += 24 + 7 * len(series)
    return parts


def _y_axis(scale: Scale, label: str, tick_text) -> list[str]:
    parts = [f'<text x="12" y="{TOP + (HEIGHT - TOP - BOTTOM) / 2:.0f}" class="axis-label" '
             f'transform="rotate(-90 12 {TOP + (HEIGHT - TOP - BOTTOM) / 2:.0f})">{escape(label)}</text>']
    for tick in scale.ticks():
        y = scale(tick)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{LEFT - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                     f'{escape(tick_text(tick))}</text>')
    return parts


def bar_chart(chart_id: str, title: str, groups: list[tuple[str, list[Bar]]], y_label: str, tick_text,
              log: bool = False) -> str:
    """Clustered bars, one cluster per group, one bar per series, each with a whisker from the
    lowest to the highest run when they differ."""
    series = []
    for _, bars in groups:
        series += [bar.series for bar in bars if bar.series not in series]
    values = [v for _, bars in groups for bar in bars for v in (bar.low, bar.high, bar.median)]
    low, high = _log_bounds(values) if log else (0.0, max([*values, 0.0]) * 1.08 or 1.0)
    scale = Scale(low, high, HEIGHT - BOTTOM, TOP + 8, log)
    parts = _frame(title, chart_id, series) + _y_axis(scale, y_label, tick_text)
    group_width = (WIDTH - LEFT - RIGHT) / max(len(groups), 1)
    bar_width = group_width / (len(series) + 1)
    for g, (label, bars) in enumerate(groups):
        middle = LEFT + (g + 0.5) * group_width
        left = middle - len(bars) * bar_width / 2
        for index, bar in enumerate(bars):
            parts.append(_bar(bar, left + index * bar_width, bar_width, scale,
                              colour(bar.series, series.index(bar.series))))
        parts.append(_label(middle, HEIGHT - BOTTOM + 16, label))
    return "\n".join(parts + ["</svg>"])


def _label(x: float, y: float, text: str) -> str:
    """A group's label, a line per "\\n"."""
    lines = "".join(f'<tspan x="{x:.1f}" dy="{0 if i == 0 else 13}">{escape(line)}</tspan>'
                    for i, line in enumerate(text.split("\n")))
    return f'<text x="{x:.1f}" y="{y}" class="tick" text-anchor="middle">{lines}</text>'


def _bar(bar: Bar, x: float, width: float, scale: Scale, fill: str) -> str:
    top, base = scale(bar.median), scale(10 ** scale.low if scale.log else 0.0)
    mark = (f'<rect class="bar" data-series="{escape(bar.series)}" data-value="{bar.median!r}" x="{x:.1f}" '
            f'y="{min(top, base):.1f}" width="{width * 0.9:.1f}" height="{abs(base - top):.1f}" fill="{fill}">'
            f'<title>{escape(bar.series)}: {escape(bar.text)}</title></rect>')
    if width >= 36:  # room to write the value above the bar (a zero bar shows its 0 too)
        mark += (f'<text x="{x + width * 0.45:.1f}" y="{min(top, base) - 3:.1f}" class="value" '
                 f'text-anchor="middle">{escape(bar.text)}</text>')
    if bar.high > bar.low:
        middle = x + width * 0.45
        y_low, y_high = scale(bar.low), scale(bar.high)
        mark += (f'<path class="whisker" d="M{middle:.1f} {y_low:.1f}V{y_high:.1f}M{middle - 4:.1f} {y_low:.1f}'
                 f'h8M{middle - 4:.1f} {y_high:.1f}h8"/>')
    return mark


def percentile_chart(chart_id: str, title: str, curves: list[Curve], y_label: str, tick_text,
                     max_x: float = 1e4) -> str:
    """HdrHistogram's picture: x = 1/(1-p) on a log scale (90 % at 10, 99.99 % at 10,000),
    y = latency on a log scale, one line per series."""
    values = [y for curve in curves for _, y in curve.points]
    x_scale = Scale(1.0, max_x, LEFT, WIDTH - RIGHT, log=True)
    y_scale = Scale(*_log_bounds(values), HEIGHT - BOTTOM, TOP + 8, log=True)
    parts = _frame(title, chart_id, [curve.series for curve in curves]) + _y_axis(y_scale, y_label, tick_text)
    for tick in x_scale.ticks():
        percent = 100 * (1 - 1 / tick)
        parts.append(f'<text x="{x_scale(tick):.1f}" y="{HEIGHT - BOTTOM + 16}" class="tick" '
                     f'text-anchor="middle">{percent:.{max(0, round(math.log10(tick)) - 2)}f}%</text>')
    parts.append(f'<text x="{(LEFT + WIDTH) / 2:.0f}" y="{HEIGHT - 20}" class="axis-label" text-anchor="middle">'
                 'percentile (log scale of 1/(1-p))</text>')
    for index, curve in enumerate(curves):
        points = " ".join(f"{x_scale(x):.1f},{y_scale(y):.1f}" for x, y in curve.points if x <= max_x)
        parts.append(f'<polyline class="curve" data-series="{escape(curve.series)}" fill="none" stroke-width="2" '
                     f'stroke="{colour(curve.series, index)}" points="{points}"><title>{escape(curve.series)}'
                     '</title></polyline>')
    return "\n".join(parts + ["</svg>"])


@dataclass(frozen=True)
class Panel:
    """One small multiple: a title (a model) and its lines (one per run), drawn in `series`'s colour."""

    title: str
    series: str
    lines: list[Curve]


SMALL_HEIGHT = 220
PANEL_GAP = 14


def small_multiples(chart_id: str, title: str, panels: list[Panel], y_label: str, tick_text,
                    x_label: str = "seconds from the start of the run") -> str:
    """Panels side by side on one shared linear y scale from 0 (so that panels compare), each
    with one line per run: a run that stalled shows as the line that drops out of its bundle."""
    xs = [x for panel in panels for line in panel.lines for x, _ in line.points] or [0.0, 1.0]
    ys = [y for panel in panels for line in panel.lines for _, y in line.points] or [1.0]
    bottom = SMALL_HEIGHT - 46
    y_scale = Scale(0.0, max(max(ys) * 1.08, 1e-9), bottom, TOP + 22, log=False)
    x_low, x_high = min(0.0, min(xs)), max(max(xs), 1.0)
    width = (WIDTH - LEFT - RIGHT - PANEL_GAP * (len(panels) - 1)) / max(len(panels), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart small-multiples" '
             f'role="img" viewBox="0 0 {WIDTH} {SMALL_HEIGHT}" width="{WIDTH}" height="{SMALL_HEIGHT}">',
             f'<title>{escape(title)}</title>', f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>',
             f'<text x="12" y="{(TOP + bottom) / 2:.0f}" class="axis-label" '
             f'transform="rotate(-90 12 {(TOP + bottom) / 2:.0f})">{escape(y_label)}</text>']
    for tick in y_scale.ticks():
        parts.append(f'<text x="{LEFT - 4}" y="{y_scale(tick) + 4:.1f}" class="tick" text-anchor="end">'
                     f'{escape(tick_text(tick))}</text>')
    for index, panel in enumerate(panels):
        left = LEFT + index * (width + PANEL_GAP)
        x_scale = Scale(x_low, x_high, left, left + width, log=False)
        parts.append(_panel_frame(panel, left, width, bottom, x_scale, y_scale, x_high))
        for run, line in enumerate(panel.lines):
            drawn = " ".join(f"{x_scale(x):.1f},{y_scale(y):.1f}" for x, y in line.points)
            parts.append(f'<polyline class="curve" data-series="{escape(panel.series)}" '
                         f'data-run="{escape(line.series)}" '
                         f'fill="none" stroke-width="1.5" stroke-opacity="0.8" stroke="{colour(panel.series, index)}" '
                         f'stroke-dasharray="{DASHES[run % len(DASHES)]}" points="{drawn}">'
                         f'<title>{escape(panel.title)}: {escape(line.series)}</title></polyline>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{SMALL_HEIGHT - 8}" class="axis-label" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    return "\n".join(parts + ["</svg>"])


# One dash pattern per repetition, so that the runs of a panel are told apart in its one colour.
DASHES = ("none", "6 3", "2 2", "8 3 2 3")


def _panel_frame(panel: Panel, left: float, width: float, bottom: float, x_scale: Scale, y_scale: Scale,
                 x_high: float) -> str:
    grid = "".join(f'<line x1="{left:.1f}" x2="{left + width:.1f}" y1="{y_scale(t):.1f}" y2="{y_scale(t):.1f}" '
                   f'class="grid"/>' for t in y_scale.ticks())
    x_ticks = "".join(f'<text x="{x_scale(t):.1f}" y="{bottom + 14}" class="tick" text-anchor="{anchor}">{t:g}</text>'
                      for t, anchor in ((0.0, "start"), (round(x_high), "end")))
    return (f'{grid}<text x="{left + width / 2:.1f}" y="{TOP + 12}" class="legend" text-anchor="middle">'
            f'{escape(panel.title)} ({len(panel.lines)} run{"s" if len(panel.lines) != 1 else ""})</text>'
            f'<line x1="{left:.1f}" x2="{left + width:.1f}" y1="{bottom}" y2="{bottom}" class="grid"/>{x_ticks}')
