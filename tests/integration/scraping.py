"""A server's /metrics as the tests read it: parsed by the compare runner's exposition parser
(compare.metrics.parse_exposition, the one parser of the repository), with the checks the tests
make on top of it (one series asserted by value(), every counter by counters()), promtool on
the raw text, and waiting until a server has read what a test sent."""

import subprocess
import time
import urllib.request
from dataclasses import dataclass

from compare import metrics
from harness import Server, eventually

PROMTOOL = "/usr/bin/promtool"
__all__ = ["PROMTOOL", "Scrape", "parse", "promtool_check", "scrape", "scrape_url", "wait_until_read"]


@dataclass
class Scrape(metrics.Scrape):
    """One /metrics response: compare.metrics.Scrape (samples, total(), buckets()) and its text."""

    text: str = ""

    def series(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample named `name` whose labels include `labels`."""
        return [(found, value) for sample_name, found, value in self.samples
                if sample_name == name and all(found.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        """The value of the one series named `name` with `labels`; asserts there is exactly one."""
        matching = self.series(name, **labels)
        assert len(matching) == 1, f"{name}{labels}: {len(matching)} series in\n{self.text}"
        return matching[0][1]

    def counters(self) -> dict:
        """Every sample that must never go down: counters and histogram parts."""
        return {(name, tuple(sorted(labels.items()))): value for name, labels, value in self.samples
                if name.endswith(("_total", "_bucket", "_count", "_sum"))}


def parse(text: str, taken_at: float | None = None, took_s: float = 0.0) -> Scrape:
    """The exposition `text`, parsed; a malformed line fails the test with the whole text."""
    try:
        samples, families = metrics.parse_exposition(text)
    except ValueError as error:
        raise AssertionError(f"{error}\n{text}") from None
    return Scrape(samples=samples, taken_at=time.monotonic() if taken_at is None else taken_at,
                  took_s=took_s, families=families, text=text)


def scrape_url(url: str) -> Scrape:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    finished = time.monotonic()
    return parse(text, taken_at=finished, took_s=finished - started)


def scrape(server: Server) -> Scrape:
    return scrape_url(server.metrics_url())


def promtool_check(text: str) -> None:
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30, check=False)
    assert checked.returncode == 0, f"promtool: {checked.stdout}{checked.stderr}\n{text}"


def wait_until_read(server: Server, byte_count: int, timeout: float = 30.0) -> None:
    """Returns once the server has read `byte_count` request bytes in all: a request it has
    read is in its handler (a /sleep is sleeping), which no pause of the test can promise."""
    read = eventually(lambda: scrape(server).value("echolab_bytes_received_total"),
                      lambda received: received >= byte_count, timeout)
    assert read >= byte_count, f"the {server.model} server read {read:.0f} of {byte_count} bytes"
