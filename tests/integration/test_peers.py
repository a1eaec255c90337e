"""make peers' runner (loadgen/peers/benchmark.py), reduced to echolab's own servers: make test
installs neither Apache nor nginx, and the full comparison is a benchmark, not a test."""

from harness import BIN_DIR, SOURCE_DIR, run

BENCHMARK = SOURCE_DIR / "loadgen" / "peers" / "benchmark.py"


def table_rows(report: str) -> list[dict]:
    lines = [line for line in report.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|"))))
            for line in lines[1:]]


def test_reports_throughput_latency_and_the_servers_cpu_per_request():
    done = run("/usr/bin/python3", str(BENCHMARK), "--bin-dir", str(BIN_DIR),
               "--connections", "20", "--seconds", "1", "--repeat", "1",
               "--only", "pool,threads", timeout=120)
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    assert [row["server"] for row in rows] == ["threads", "pool"]
    for row in rows:
        assert float(row["req/s (median)"]) > 100, row
        assert row["errors"] == "0", row
        # A request costs a server microseconds of CPU: not zero (the reading found the
        # server's processes) and not a millisecond (it did not count wrk or the whole machine).
        assert 0.5 < float(row["server CPU (us/req)"]) < 1000, row
