"""echolab-load's latency histograms in HdrHistogram's percentile-distribution text (.hgrm),
so that any HdrHistogram plotter reads them, and the percentile curves of report.html.

The JSON echolab-load writes holds each histogram without loss (docs/loadgen.md, "JSON
result"), so the .hgrm files are derived from it rather than written by a second code path
in the load generator: one source of truth. Values are written in microseconds."""

import json
import math
from pathlib import Path

# The histograms of an echolab-load result, and the suffix of each one's .hgrm file.
HISTOGRAMS = {"latency_ns": "latency", "connect_ns": "connect", "hold_latency_ns": "hold_latency"}
NS_PER_US = 1000.0
# HdrHistogram's default: 5 lines per halving of the distance to 100 %.
TICKS_PER_HALF_DISTANCE = 5
DECIMALS = 3  # microseconds to the nanosecond: the values are exact


def _bucket_width(highest_value: int, exact_below: int, sub_buckets: int) -> int:
    """The width of the bucket that ends at `highest_value` (docs/loadgen.md's layout)."""
    if highest_value < exact_below:
        return 1
    return 1 << (highest_value.bit_length() - 1 - (sub_buckets.bit_length() - 1))


def value_at_percentile(histogram: dict, percentile: float) -> int:
    """The smallest bucket's upper edge at which the running count reaches rank ceil(p n / 100),
    clamped to [min, max]: the rule echolab-load computes its latency_us with."""
    count = histogram["count"]
    if count == 0:
        return 0
    rank = max(1, math.ceil(min(max(percentile, 0.0), 100.0) * count / 100.0 * (1 - 1e-12)))
    if rank >= count:
        return histogram["max"]
    seen = 0
    for highest_value, bucket_count in histogram["buckets"]:
        seen += bucket_count
        if seen >= rank:
            return min(max(highest_value, histogram["min"]), histogram["max"])
    return histogram["max"]


def percentile_distribution(histogram: dict) -> list[tuple[int, float, int]]:
    """(value in ns, percentile, count up to it) at HdrHistogram's percentile levels: 0 %, then
    TICKS_PER_HALF_DISTANCE levels per halving of the distance to 100 %, and 100 % last, as
    its PercentileIterator reports them (a bucket may report several levels)."""
    total = histogram["count"]
    if total == 0:
        return []
    lines = []
    level, seen = 0.0, 0
    buckets = histogram["buckets"]
    for index, (highest_value, bucket_count) in enumerate(buckets):
        seen += bucket_count
        value = min(max(highest_value, histogram["min"]), histogram["max"])
        last = index == len(buckets) - 1
        while bucket_count and 100.0 * seen / total >= level:
            lines.append((histogram["max"] if last else value, level, seen))
            ticks = TICKS_PER_HALF_DISTANCE * 2 ** (int(math.log2(100.0 / (100.0 - level))) + 1)
            level += 100.0 / ticks
            if last:
                break
    lines.append((histogram["max"], 100.0, total))
    return lines


def _standard_deviation(histogram: dict, layout: dict) -> float:
    """From the buckets' midpoints, as HdrHistogram computes it (the sum of squares is not kept)."""
    total = histogram["count"]
    mean = histogram["sum"] / total
    squares = 0.0
    for highest_value, bucket_count in histogram["buckets"]:
        width = _bucket_width(highest_value, layout["exact_below"], layout["sub_buckets"])
        middle = highest_value - (width - 1) / 2
        squares += bucket_count * (middle - mean) ** 2
    return math.sqrt(squares / total)


def hgrm_text(histogram: dict, layout: dict) -> str:
    """HdrHistogram's outputPercentileDistribution, values in microseconds."""
    header = f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}\n\n"
    rows = []
    for value, percentile, seen in percentile_distribution(histogram):
        row = f"{value / NS_PER_US:12.{DECIMALS}f} {percentile / 100:2.12f} {seen:10d}"
        rows.append(row + (f" {1 / (1 - percentile / 100):14.2f}" if percentile < 100 else "") + "\n")
    total = histogram["count"]
    sub_buckets = 2 * layout["sub_buckets"]
    bucket_count = layout["highest_trackable"].bit_length() - (sub_buckets - 1).bit_length() + 1
    footer = (f"#[Mean    = {histogram['sum'] / total / NS_PER_US:12.{DECIMALS}f}, "
              f"StdDeviation   = {_standard_deviation(histogram, layout) / NS_PER_US:12.{DECIMALS}f}]\n"
              f"#[Max     = {histogram['max'] / NS_PER_US:12.{DECIMALS}f}, Total count    = {total:12d}]\n"
              f"#[Buckets = {bucket_count:12d}, SubBuckets     = {sub_buckets:12d}]\n")
    return header + "".join(rows) + footer


def read_result(path: Path) -> dict | None:
    """An echolab-load result with histograms, or None for any other file (wrk's, a probe's)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "echolab-load" or not data.get("histograms"):
        return None
    return data


def export(raw_dir: Path) -> list[Path]:
    """Writes <run>.<histogram>.hgrm beside each echolab-load JSON of `raw_dir`, for each of its
    non-empty histograms; returns the files written."""
    written = []
    for path in sorted(raw_dir.glob("*.json")):
        data = read_result(path)
        if data is None:
            continue
        histograms = data["histograms"]
        for key, suffix in HISTOGRAMS.items():
            histogram = histograms.get(key)
            if histogram and histogram["count"] > 0:
                target = path.with_name(f"{path.stem}.{suffix}.hgrm")
                target.write_text(hgrm_text(histogram, histograms["layout"]))
                written.append(target)
    return written
