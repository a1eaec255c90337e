"""How the report writes a figure: a value with its unit, and a median with the spread of its
runs. report.md and report.html write every figure alike through these."""


def _number(value: float, decimals: int = 0) -> str:
    return f"{value:,.{decimals}f}"


def duration_us(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1e6:.2f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} ms"
    return f"{value:.0f} us" if value >= 100 else f"{value:.1f} us"


def rests_on(figure: dict) -> str:
    """" [2 of 3 runs]" when some runs of the figure failed or lacked it; "" when all counted."""
    runs, attempts = len(figure["runs"]), figure.get("attempts", len(figure["runs"]))
    return f" [{runs} of {attempts} runs]" if runs < attempts else ""


def value_text(value: float, kind: str = "number", decimals: int = 0) -> str:
    """One value with its unit, as every table of the report writes it."""
    render = {"number": lambda v: _number(v, decimals), "us": duration_us,
              "ms": lambda v: f"{v:,.{decimals}f} ms", "kib": lambda v: f"{v:,.{decimals}f} KiB",
              "mib": lambda v: f"{v:,.{decimals}f} MiB", "ns": lambda v: f"{v:,.0f} ns", "ns_page": lambda v: ns_per_page(v),
              "percent": lambda v: f"{v:.0f}%", "percent1": lambda v: f"{v:.1f}%", "ratio": lambda v: f"{v:.1f}x"}[kind]
    return render(value)


def cell(figure: dict | None, kind: str = "number", decimals: int = 0) -> str:
    """A median, with (min-max) after it when there was more than one run, and how many runs
    it rests on when that is fewer than were made."""
    if figure is None:
        return "-"
    text = value_text(figure["median"], kind, decimals)
    if len(figure["runs"]) > 1 and figure["min"] != figure["max"]:
        text += f" ({value_text(figure['min'], kind, decimals)}-{value_text(figure['max'], kind, decimals)})"
    return text + rests_on(figure)


def ns_per_page(value: float) -> str:
    return duration_us(value / 1000) if value >= 1000 else f"{value:,.0f} ns"
