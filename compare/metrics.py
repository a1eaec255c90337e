"""Reads a server's Prometheus /metrics endpoint: the text exposition format, parsed into
samples, and the few derived figures the compare report needs (sums, rates, quantiles)."""

import math
import re
import time
import urllib.request
from dataclasses import dataclass, field

# name{label="value",...} value [timestamp]
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        if not match:
            raise ValueError(f"malformed label set: {{{text}}}")
        labels[match.group(1)] = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], match.group(2))
        position = match.end()
    return labels


def _parse_value(text: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    return float(text)


@dataclass
class Scrape:
    """One scrape: every sample, when it was taken (monotonic seconds) and how long it took."""

    samples: list[tuple[str, dict[str, str], float]]
    taken_at: float
    took_s: float
    families: set[str] = field(default_factory=set)

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of every sample named `name` whose labels include `labels`; None if absent."""
        values = [value for sample_name, sample_labels, value in self.samples
                  if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())]
        return sum(values) if values else None

    def has(self, name: str) -> bool:
        return any(sample_name == name for sample_name, _, _ in self.samples)

    def buckets(self, histogram: str) -> list[tuple[float, float]]:
        """Cumulative (upper bound, count) pairs of a histogram, summed over label sets."""
        by_bound: dict[float, float] = {}
        for name, labels, value in self.samples:
            if name == f"{histogram}_bucket" and "le" in labels:
                bound = _parse_value(labels["le"])
                by_bound[bound] = by_bound.get(bound, 0.0) + value
        return sorted(by_bound.items())


def parse_exposition(text: str) -> tuple[list[tuple[str, dict[str, str], float]], set[str]]:
    samples = []
    families = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "TYPE":
                families.add(parts[2])
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise ValueError(f"malformed sample line: {line}")
        labels = _parse_labels(match.group(2)) if match.group(2) else {}
        samples.append((match.group(1), labels, _parse_value(match.group(3))))
    return samples, families


def scrape(url: str, timeout: float = 10.0) -> Scrape:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode("utf-8", errors="replace")
    finished = time.monotonic()
    samples, families = parse_exposition(text)
    return Scrape(samples=samples, taken_at=finished, took_s=finished - started, families=families)


def counter_rate(before: Scrape, after: Scrape, name: str, **labels: str) -> float | None:
    """Increase per second of a counter between two scrapes."""
    first, last = before.total(name, **labels), after.total(name, **labels)
    elapsed = after.taken_at - before.taken_at
    if first is None or last is None or elapsed <= 0:
        return None
    return (last - first) / elapsed


def bucket_delta(before: Scrape | None, after: Scrape, histogram: str) -> list[tuple[float, float]]:
    """The histogram's cumulative buckets counted between two scrapes (all of `after` if no
    `before`)."""
    earlier = dict(before.buckets(histogram)) if before else {}
    return [(bound, count - earlier.get(bound, 0.0)) for bound, count in after.buckets(histogram)]


def histogram_quantile(quantile: float, buckets: list[tuple[float, float]]) -> float | None:
    """The quantile of cumulative buckets, interpolated linearly inside the bucket that holds it,
    as PromQL's histogram_quantile() does; None when the histogram counted nothing."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its upper bound is all we know
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
