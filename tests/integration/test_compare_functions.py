"""The compare runner's plumbing, without a server or load: the parsers (Prometheus text,
histogram quantiles, wrk's summary), the plan and its progress count, the servers' flags, the
hold's ramp figures, the claims of the probes, and report.md, report.html, results.json and the
.hgrm files always written. (Noise and verdicts from figures: test_compare_units.py.)"""

import datetime
import json
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from compare import claims, floor, hgrm, isolation, processes, probes, run, scenarios, series, slow_clients
from compare.figures import Recorder
from compare.loadtools import parse_wrk_text
from compare.metrics import Scrape, bucket_delta, histogram_quantile, parse_exposition
from compare.models import BY_NAME, REGISTRY
from compare.plan import make_plan
from compare.servers import flag_value, settings_for, with_flag

# -- the Prometheus text exposition format ----------------------------------------------------

EXPOSITION = """\
# HELP echolab_requests_total Requests answered.
# TYPE echolab_requests_total counter
echolab_requests_total{model="pool",status="200"} 1027 1700000000000
echolab_requests_total{model="pool",status="400"} 3
# TYPE echolab_request_seconds histogram
echolab_request_seconds_bucket{le="0.001"} 10
echolab_request_seconds_bucket{le="0.01"} 30
echolab_request_seconds_bucket{le="+Inf"} 40
echolab_request_seconds_count 40
echolab_note{text="a \\"quoted\\" back\\\\slash\\nline"} 1
"""


def test_the_exposition_parser_reads_labels_escapes_timestamps_and_families():
    samples, families = parse_exposition(EXPOSITION)
    assert families == {"echolab_requests_total", "echolab_request_seconds"}
    assert samples[0] == ("echolab_requests_total", {"model": "pool", "status": "200"}, 1027.0)
    assert samples[4] == ("echolab_request_seconds_bucket", {"le": "+Inf"}, 40.0)
    assert samples[-1][1] == {"text": 'a "quoted" back\\slash\nline'}
    scrape = Scrape(samples, taken_at=0.0, took_s=0.0, families=families)
    assert scrape.total("echolab_requests_total") == 1030
    assert scrape.total("echolab_requests_total", status="400") == 3
    assert scrape.total("echolab_absent_total") is None
    assert scrape.buckets("echolab_request_seconds") == [(0.001, 10.0), (0.01, 30.0), (math.inf, 40.0)]


@pytest.mark.parametrize("line", ["echolab_x{le=0.1} 1", "echolab_x", "echolab_x{a=\"b\"} one"])
def test_a_malformed_sample_line_is_an_error(line):
    with pytest.raises(ValueError):
        parse_exposition(line)


def test_histogram_quantile_interpolates_inside_the_bucket_as_promql_does():
    buckets = [(0.001, 10.0), (0.01, 30.0), (math.inf, 40.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.0055)  # rank 20: halfway through 0.001-0.01
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.001)  # rank 10: the first bucket's top
    assert histogram_quantile(0.05, buckets) == pytest.approx(0.0002)  # the first bucket starts at 0
    assert histogram_quantile(0.9, buckets) == 0.01  # in +Inf: the last finite bound is all we know
    assert histogram_quantile(0.5, []) is None
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


def test_bucket_delta_counts_only_what_happened_between_two_scrapes():
    before = Scrape(parse_exposition('h_bucket{le="1"} 5\nh_bucket{le="+Inf"} 6\n')[0], 0.0, 0.0)
    after = Scrape(parse_exposition('h_bucket{le="1"} 7\nh_bucket{le="+Inf"} 10\n')[0], 1.0, 0.0)
    assert bucket_delta(before, after, "h") == [(1.0, 2.0), (math.inf, 4.0)]
    assert bucket_delta(None, after, "h") == [(1.0, 7.0), (math.inf, 10.0)]


# -- wrk's own summary ------------------------------------------------------------------------

WRK_SUMMARY = """\
Running 2s test @ http://127.0.0.1:20001/hello
  2 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  611.20us  12.34ms   81.25%
    Req/Sec    32.10k     2.05k   36.00k    70.00%
  Latency Distribution
     50%    1.41ms
     75%    1.80ms
     90%  850.00us
     99%    1.02s
  127830 requests in 2.00s, 14.99MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:  63915.00
Transfer/sec:      7.49MB
"""


def test_the_wrk_summary_gives_rate_latency_in_microseconds_and_every_error():
    result = parse_wrk_text(WRK_SUMMARY)
    assert result["requests_per_second"] == 63915.0
    assert result["requests"] == 127830 and result["duration_s"] == 2.0
    assert result["latency_us"] == {"p50": 1410.0, "p90": 850.0, "p99": 1_020_000.0, "max": 12_340.0}
    assert result["errors"] == {"connect": 0, "read": 3, "write": 1, "timeout": 2, "status": 4, "total": 10}


def test_a_clean_wrk_run_has_no_errors_and_a_run_without_a_rate_is_refused():
    clean = "\n".join(line for line in WRK_SUMMARY.splitlines() if "errors" not in line and "Non-2xx" not in line)
    assert parse_wrk_text(clean)["errors"]["total"] == 0
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk_text(WRK_SUMMARY.replace("Requests/sec", "Rate"))


# -- claim verdicts ---------------------------------------------------------------------------

def context_switch_recorder(*runs: tuple[float, float, float]) -> Recorder:
    recorder = Recorder()
    for median, low, high in runs:
        recorder.add("probe", ("context-switch",), "machine",
                     {"extra_cycles": median, "extra_cycles_low": low, "extra_cycles_high": high})
    return recorder


def test_a_switch_cost_whose_runs_spread_over_zero_is_no_difference_and_the_claim_does_not_hold():
    recorder = context_switch_recorder((1500, 900, 2100), (-300, -900, 300), (200, -400, 800))
    claim = claims.tlb_flush(claims.Figures(recorder), pcid=True, meltdown=None)
    assert claim.verdict == claims.DOES_NOT_HOLD
    assert "no difference within ±1,500 cycles" in claim.measured
    assert "200 cycles" not in claim.measured  # a median inside the noise is not shown as a figure
    assert claim.differences["extra_cycles"].within_noise is True


def test_a_switch_cost_from_one_run_gives_no_verdict():
    claim = claims.tlb_flush(claims.Figures(context_switch_recorder((1500, 1200, 1800))), pcid=False, meltdown=None)
    assert claim.verdict == claims.NOT_MEASURED and claim.why == claims.ONE_RUN
    assert claim.differences["extra_cycles"].within_noise is None
    assert "1,500 cycles (one run: no spread to judge the noise)" in claim.measured


def test_a_switch_cost_clear_of_zero_and_in_the_article_range_holds_without_pcid():
    recorder = context_switch_recorder((1500, 1200, 1800), (1400, 1100, 1700))
    without_pcid = claims.tlb_flush(claims.Figures(recorder), pcid=False, meltdown=None)
    assert without_pcid.verdict == claims.HOLDS
    assert "1,450 cycles (1,400 cycles to 1,500 cycles)" in without_pcid.measured  # the runs' spread
    # With PCID the cost is in the range but no flush happens: half the claim.
    assert claims.tlb_flush(claims.Figures(recorder), pcid=True, meltdown=None).verdict == claims.PARTLY


def hybrid_recorder(lost: int, hybrid_pss: float, pool_pss: float = 20.0, workers: int = 2) -> Recorder:
    recorder = Recorder()
    recorder.add("crash", (50,), "hybrid", {"process_died": 0, "connections_lost": lost, "workers": workers})
    for model, pss in (("hybrid", hybrid_pss), ("pool", pool_pss), ("prefork", 64.0)):
        recorder.add("hold", (1000,), model, {"pss_per_connection_kib": pss})
    return recorder


def test_the_hybrid_claim_holds_for_one_workers_share_at_an_event_loops_memory():
    # 2 workers, 50 clients: the kernel's spread allows 25 + 3 x 3.5 = 35.6 on one worker.
    assert claims.binomial_share_bound(50, 2) == pytest.approx(35.61, abs=0.01)
    assert claims.hybrid_tradeoff(claims.Figures(hybrid_recorder(27, 21.0)), 50).verdict == claims.HOLDS
    # Isolated, but each worker's own heap weighs on a connection: half the claim.
    assert claims.hybrid_tradeoff(claims.Figures(hybrid_recorder(27, 30.0)), 50).verdict == claims.PARTLY
    # More than one worker's share lost: the isolation was not there.
    assert claims.hybrid_tradeoff(claims.Figures(hybrid_recorder(50, 21.0)), 50).verdict == claims.DOES_NOT_HOLD
    assert claims.hybrid_tradeoff(claims.Figures(Recorder()), 50).verdict == claims.NOT_MEASURED


def test_the_hybrid_claim_with_one_worker_is_not_measured():
    # One worker's share is all 50 clients: losing every one of them would have "held".
    assert claims.binomial_share_bound(50, 1) == 50
    claim = claims.hybrid_tradeoff(claims.Figures(hybrid_recorder(50, 21.0, workers=1)), 50)
    assert claim.verdict == claims.NOT_MEASURED and "cannot tell" in claim.why
    assert claims.hybrid_tradeoff(claims.Figures(hybrid_recorder(27, 21.0, workers=2)), 50).verdict == claims.HOLDS


def test_a_claim_without_its_figure_is_not_measured():
    assert claims.tlb_flush(claims.Figures(Recorder()), pcid=True, meltdown=None).verdict == claims.NOT_MEASURED


# -- the plan and the progress count ----------------------------------------------------------

class CountingBench:
    """Just enough of scenarios.Bench to walk a scenario's loops: counts the steps it would
    measure, measures nothing."""

    def __init__(self, plan):
        self.plan, self.recorder = plan, Recorder()
        self.main = {model: SimpleNamespace(binary=Path("/nonexistent"), flags=[]) for model in scenarios.MODELS}
        self.fault = dict(self.main)
        self.floors = {name: SimpleNamespace(binary=Path("/nonexistent")) for name in floor.NAMES}
        self.recycling = SimpleNamespace(binary=Path("/nonexistent"))
        self.open_loop_rate = None
        self.log_dir = Path("/nonexistent")
        self.extra_servers, self.failures = {}, []
        self.steps = 0

    def attempt(self, rep, label, model, measure) -> None:
        self.steps += 1

    def ensure_alive(self, server) -> None:
        pass

    def run_name(self, *parts) -> str:
        return "-".join(map(str, parts))


class IdleServer:
    """Stands in for a slow-clients server: starts and stops without a process."""

    def __init__(self, name, *args):
        self.name, self.port, self.metrics_url, self.command = name, 0, "", []

    def start(self):
        return self

    def stop(self):
        return 0


@pytest.mark.parametrize("quick", [True, False])
@pytest.mark.parametrize("with_wrk", [True, False])
def test_the_progress_count_is_what_the_scenarios_attempt(monkeypatch, quick, with_wrk):
    plan = make_plan(quick, 10_000)
    monkeypatch.setattr(scenarios.loadtools, "wrk_available", lambda: "/usr/bin/wrk" if with_wrk else None)
    monkeypatch.setattr(slow_clients, "Server", IdleServer)
    repeated = 0
    for scenario in scenarios.REPEATED:
        bench = CountingBench(plan)
        scenario.run(bench, 0)
        assert bench.steps == scenario.steps(plan, with_wrk), scenario.run.__name__
        repeated += bench.steps
    bench = CountingBench(plan)
    slow_clients.slow_clients(bench, 0)
    assert bench.steps == slow_clients.steps(plan)
    expected = (len(probes.READERS) + repeated) * plan.repetitions + bench.steps
    bench = CountingBench(plan)
    isolation.run(bench, 0)
    assert bench.steps == isolation.STEPS
    assert run.progress_steps(plan, with_wrk, peer_steps=7) == expected + bench.steps + 7


def isolation_recorder(prefork_read: int = 0, threads_read: int = 4, hybrid_other_corrupted: int = 0) -> Recorder:
    """The two memory-isolation experiments as four models would give them, 4 live clients each."""
    recorder = Recorder()
    own = {"prefork": 0, "threads": 4, "pool": 4, "hybrid": 2}
    for model in scenarios.MODELS:
        found_own = threads_read if model == "threads" else own[model]
        recorder.add("disclosure", (), model, {
            "live_own_process": own[model], "live_found_own_process": found_own,
            "live_other_processes": 4 - own[model],
            "live_found_other_processes": prefork_read if model == "prefork" else 0,
            "closed_found_other_processes": 0})
        recorder.add("corruption", (), model, {
            "clients_own_process": own[model], "corrupted_own_process": own[model],
            "clients_other_processes": 4 - own[model],
            "corrupted_other_processes": hybrid_other_corrupted if model == "hybrid" else 0,
            "process_survived": 1})
    return recorder


def test_the_memory_claims_hold_only_when_processes_wall_off_what_threads_share():
    assert claims.memory_disclosure(claims.Figures(isolation_recorder())).verdict == claims.HOLDS
    assert claims.memory_disclosure(claims.Figures(isolation_recorder(prefork_read=1))).verdict == claims.PARTLY
    assert claims.memory_disclosure(claims.Figures(isolation_recorder(threads_read=3))).verdict == claims.PARTLY
    assert claims.memory_disclosure(claims.Figures(Recorder())).verdict == claims.NOT_MEASURED
    assert claims.heap_corruption(claims.Figures(isolation_recorder())).verdict == claims.HOLDS
    assert (claims.heap_corruption(claims.Figures(isolation_recorder(hybrid_other_corrupted=1))).verdict
            == claims.DOES_NOT_HOLD)
    assert claims.heap_corruption(claims.Figures(Recorder())).verdict == claims.NOT_MEASURED


def test_the_isolation_figures_split_clients_by_the_process_that_served_them():
    canaries = ["tokA", "tokB", "tokC", "tokD"]
    figures = isolation.disclosure_figures(10, {"tokA", "tokC", "tokD"}, None, canaries, [10, 11, 10, 11], live=2)
    assert (figures["live_own_process"], figures["live_found_own_process"]) == (1, 1)
    assert (figures["live_other_processes"], figures["live_found_other_processes"]) == (1, 0)
    assert (figures["closed_found_own_process"], figures["closed_found_other_processes"]) == (1, 1)
    answers = [isolation.CORRUPTED_GREETING, isolation.GREETING, None]
    figures = isolation.corruption_figures(answers, [10, 11, 11], 10, survived=True)
    assert (figures["corrupted_own_process"], figures["intact_other_processes"]) == (1, 1)
    assert figures["no_answer_other_processes"] == 1 and figures["process_survived"] == 1


def test_the_full_plan_repeats_three_times_and_the_quick_one_once_with_a_smaller_hold():
    full, quick = make_plan(False, 10_000), make_plan(True, 10_000)
    assert (full.repetitions, quick.repetitions) == (3, 1)
    assert (full.hold_connections, quick.hold_connections) == (10_000, 1_000)
    assert full.concurrency == quick.concurrency == [100, 1000]
    # A machine that allows fewer connections scales the hold and the concurrency down.
    scaled = make_plan(False, 500)
    assert scaled.hold_connections == 500 and scaled.concurrency == [100, 500]


def _scrape_at(text: str, taken_at: float) -> Scrape:
    samples, families = parse_exposition(text)
    return Scrape(samples=samples, taken_at=taken_at, took_s=0.0, families=families)


def test_the_ramp_figures_set_workers_started_per_second_against_connections_arriving():
    plan = SimpleNamespace(hold_connections=1000, ramp_s=2.0)
    idle = _scrape_at('echolab_worker_spawn_seconds_count{model="prefork"} 10\n', 100.0)
    held = _scrape_at('echolab_worker_spawn_seconds_count{model="prefork"} 1010\n', 104.0)
    figures = scenarios.ramp_figures(idle, held, plan)
    assert figures["connections_arriving_per_s"] == 500
    assert figures["workers_started"] == 1000
    assert figures["workers_started_per_s"] == 250


def test_a_server_without_a_spawn_histogram_has_no_ramp_workers_figure():
    plan = SimpleNamespace(hold_connections=1000, ramp_s=2.0)
    idle = _scrape_at('echolab_connections_active{model="pool"} 0\n', 100.0)
    held = _scrape_at('echolab_connections_active{model="pool"} 1000\n', 104.0)
    figures = scenarios.ramp_figures(idle, held, plan)
    assert figures["workers_started_per_s"] is None
    assert scenarios.ramp_figures(idle, None, plan)["workers_started"] is None


def test_a_server_that_forked_its_workers_before_the_load_gets_the_rate_it_forked_them_at():
    """prefork's hold: the children come before the ramp, so its rate is theirs, not the ramp's."""
    plan = SimpleNamespace(hold_connections=1000, ramp_s=2.0)
    idle = _scrape_at('echolab_worker_spawn_seconds_count{model="prefork"} 64\n', 100.0)
    held = _scrape_at('echolab_worker_spawn_seconds_count{model="prefork"} 1064\n', 104.0)
    figures = scenarios.ramp_figures(idle, held, plan, scenarios.Prestart(workers=1000, took_s=4.0))
    assert figures["workers_started"] == 1000 and figures["workers_prestarted"] == 1000
    assert figures["workers_started_per_s"] == 250
    assert scenarios.ramp_figures(idle, held, plan)["workers_prestarted"] is None


def test_only_prefork_forks_its_workers_before_the_hold_and_its_flags_name_the_count():
    flags = BY_NAME["prefork"].prestart_flags(1200)
    assert flag_value(flags, "--start-servers") == "1200" and flag_value(flags, "--max-spare") == "1200"
    assert [model.name for model in REGISTRY if model.hold_prestart_flags] == ["prefork"]


def test_a_flag_already_given_is_replaced_not_repeated():
    """A server refuses an option given twice: the runner and the peers' benchmark set one."""
    base = settings_for("hybrid", 1000)
    assert flag_value(base, "--workers") is not None
    changed = with_flag(base, "--workers", "4")
    assert changed.count("--workers") == 1 and flag_value(changed, "--workers") == "4"
    assert with_flag(["--a", "1"], "--b", "2") == ["--a", "1", "--b", "2"]


# -- the report is always written ---------------------------------------------------------------

def conclude_with(tmp_path, monkeypatch, recorder: Recorder) -> int:
    """run.conclude on a bench that measured what `recorder` holds, without gnuplot."""
    monkeypatch.setattr(run.charts, "draw_all", lambda out_dir, recorder, plan: [])
    plan = make_plan(True, 1000)
    bench = scenarios.Bench(plan, tmp_path, tmp_path / "raw", tmp_path / "logs", None, {}, {}, None, total_steps=0)
    bench.recorder = recorder
    machine = run.machine_info.inspect_machine()
    capacity = run.machine_info.connection_capacity(machine, plan.hold_connections)
    return run.conclude(tmp_path, bench, machine, capacity, None, {}, datetime.datetime.now(datetime.timezone.utc), 1.0)


def test_a_claim_or_a_section_that_raises_costs_neither_the_report_nor_results_json(tmp_path, monkeypatch):
    def raises(*args):
        raise ZeroDivisionError("float division by zero\nsecond line")

    monkeypatch.setattr(claims, "switch_ratio", raises)
    monkeypatch.setattr(run.report, "hold_section", raises)
    status = conclude_with(tmp_path, monkeypatch, context_switch_recorder((1500, 1200, 1800)))
    assert status == 1
    results = json.loads((tmp_path / "results.json").read_text())
    expected = ["claim switch_ratio: ZeroDivisionError: float division by zero",
                'report section "10,000 connections": ZeroDivisionError: float division by zero']
    assert results["failures"] == expected
    verdicts = {c["key"]: c["verdict"] for c in results["claims"]}
    assert verdicts["switch_ratio"] == claims.NOT_MEASURED and len(verdicts) == 16
    # Each claim's row on report.html links to the section of the experiment behind it.
    assert set(verdicts) == set(run.report.html_report.CLAIM_EXPERIMENTS)
    assert set(run.report.html_report.CLAIM_EXPERIMENTS.values()) <= set(run.report.html_report.TITLES)
    report_text = (tmp_path / "report.md").read_text()
    assert "## 10,000 connections\n\nNot rendered: ZeroDivisionError: float division by zero" in report_text
    failures = report_text.split("## Failures", 1)[1]
    assert all(f"- {failure}" in failures for failure in expected) and "second line" not in failures


def test_a_run_in_which_nothing_failed_exits_0_with_every_claim(tmp_path, monkeypatch):
    assert conclude_with(tmp_path, monkeypatch, Recorder()) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["failures"] == [] and len(results["claims"]) == 16
    assert "## Failures" not in (tmp_path / "report.md").read_text()
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_an_html_report_that_raises_costs_neither_report_md_nor_results_json(tmp_path, monkeypatch):
    def raises(*args):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(run.report.html_report, "render", raises)
    assert conclude_with(tmp_path, monkeypatch, context_switch_recorder((1500, 1200, 1800))) == 1
    expected = "report.html: ZeroDivisionError: float division by zero"
    assert json.loads((tmp_path / "results.json").read_text())["failures"] == [expected]
    assert f"- {expected}" in (tmp_path / "report.md").read_text().split("## Failures", 1)[1]
    assert not (tmp_path / "report.html").exists()


def test_results_json_that_could_not_be_built_still_gets_a_page_naming_the_failure(tmp_path, monkeypatch):
    def raises(*args):
        raise KeyError("machine")

    monkeypatch.setattr(run.report.Results, "to_json", raises)
    assert conclude_with(tmp_path, monkeypatch, Recorder()) == 1
    assert "results.json: KeyError: &#x27;machine&#x27;" in (tmp_path / "report.html").read_text()


def test_the_html_report_marks_a_failed_run_and_the_figures_resting_on_fewer_runs(tmp_path, monkeypatch):
    recorder = Recorder()
    key = ("closed_loop", ("echolab-load", 100), "pool")
    recorder.add(*key, {"requests_per_second": 20_000.0, "p99_us": 1500.0})
    recorder.add(*key, {"requests_per_second": 24_000.0, "p99_us": 1300.0})
    recorder.fail(*key, "echolab-load exited with status -9")
    conclude_with(tmp_path, monkeypatch, recorder)
    page = (tmp_path / "report.html").read_text()
    assert '<span class="failed" title="echolab-load exited with status -9">1 failed run</span>' in page
    assert ('data-figure="closed_loop/echolab-load,100/pool/requests_per_second" data-median="22000.0"' in page)
    assert "22,000 (20,000-24,000)<span class=\"failed\"> [2 of 3 runs]</span>" in page
    assert 'id="chart-throughput"' in page and 'class="whisker"' in page


def test_the_html_report_gives_report_mds_ratios_of_two_figures(tmp_path, monkeypatch):
    recorder = Recorder()
    recorder.add("closed_loop", ("echolab-load", 100), "pool", {"requests_per_second": 20_000.0})
    recorder.add("blocking", (100, 16), "pool", {"requests_per_second": 5_000.0})
    recorder.add("probe", ("context-switch",), "machine", {"process_ns": 3000.0, "thread_ns": 1200.0})
    conclude_with(tmp_path, monkeypatch, recorder)
    page = (tmp_path / "report.html").read_text()
    assert re.search(r"<th>vs unblocked \(from two figures\)</th><td [^>]*>25\.0%<", page)
    assert re.search(r"<th>process per thread \(from two figures\)</th><td [^>]*>2\.5x<", page)


# -- .hgrm: HdrHistogram's percentile distribution ----------------------------------------------

def test_the_hgrm_of_an_exact_histogram_has_hdrhistograms_levels_values_and_footer():
    """1..100 ns once each: values below 256 ns are buckets of their own, so every row is exact."""
    histogram = {"count": 100, "min": 1, "max": 100, "sum": 5050.0, "buckets": [[v, 1] for v in range(1, 101)]}
    layout = {"unit": "ns", "exact_below": 256, "sub_buckets": 128, "highest_trackable": (1 << 42) - 1}
    lines = hgrm.hgrm_text(histogram, layout).splitlines()
    assert lines[0] == "       Value     Percentile TotalCount 1/(1-Percentile)" and lines[1] == ""
    rows = [line.split() for line in lines[2:] if not line.startswith("#")]
    assert rows[0] == ["0.001", "0.000000000000", "1", "1.00"]
    assert ["0.050", "0.500000000000", "50", "2.00"] in rows
    assert ["0.090", "0.900000000000", "90", "10.00"] in rows
    assert rows[-1] == ["0.100", "1.000000000000", "100"]
    assert lines[-3:] == ["#[Mean    =        0.051, StdDeviation   =        0.029]",
                          "#[Max     =        0.100, Total count    =          100]",
                          "#[Buckets =           35, SubBuckets     =          256]"]
    assert [hgrm.value_at_percentile(histogram, p) for p in (0, 50, 99, 99.9, 100)] == [1, 50, 99, 100, 100]


def test_an_hgrm_is_written_beside_each_echolab_load_json_and_nothing_else(tmp_path):
    layout = {"unit": "ns", "exact_below": 256, "sub_buckets": 128, "highest_trackable": (1 << 42) - 1}
    histogram = {"count": 2, "min": 1000, "max": 3000, "sum": 4000.0, "buckets": [[1003, 1], [3007, 1]]}
    empty = {"count": 0, "min": 0, "max": 0, "sum": 0.0, "buckets": []}
    (tmp_path / "closed-100-pool-0.json").write_text(json.dumps(
        {"tool": "echolab-load", "histograms": {"layout": layout, "latency_ns": histogram, "connect_ns": empty,
                                                "hold_latency_ns": None}}))
    (tmp_path / "wrk-100-pool-0.json").write_text(json.dumps({"requests": 10}))
    (tmp_path / "probe-spawn-0.json").write_text("not json")
    assert [p.name for p in hgrm.export(tmp_path)] == ["closed-100-pool-0.latency.hgrm"]
    written = (tmp_path / "closed-100-pool-0.latency.hgrm").read_text()
    assert "#[Max     =        3.000, Total count    =            2]" in written


# -- claims of the communication, thread-exhaustion and fork-descriptors probes ---------------

def communication_recorder(*gaps_us: float, shared_us: float = 30.0, pipe_us: float = 60.0,
                           place: str = "unpinned", recorder: Recorder | None = None) -> Recorder:
    """One run per gap: the pairs' medians and the paired processes-minus-threads difference of
    one placement, added to `recorder` (a placement's runs go beside another's)."""
    recorder = recorder or Recorder()
    runs = recorder.runs("probe", ("communication",), "machine")
    for index, gap in enumerate(gaps_us):
        figures = {"small_bytes": 64, f"{place}_small_thread_shared_memory_us": shared_us - gap,
                   f"{place}_small_process_shared_memory_us": shared_us, f"{place}_small_process_pipe_us": pipe_us,
                   f"{place}_small_process_unix_socket_us": pipe_us}
        figures.update(probes._difference_figures({"median": gap, "min": gap - 1, "max": gap + 1},
                                                  f"{place}_small_process_minus_thread_us"))
        if index < len(runs):
            runs[index].update(figures)
        else:
            recorder.add("probe", ("communication",), "machine", figures)
    return recorder


def test_communication_as_fast_between_processes_sharing_memory_is_the_sharing_not_the_thread():
    claim = claims.communication(claims.Figures(communication_recorder(-2.0, 3.0, 1.0)))
    assert claim.verdict == claims.PARTLY
    assert "no difference within" in claim.measured
    assert "sharing, not the thread" in claim.why


def test_communication_faster_by_thread_beyond_the_noise_holds_and_one_run_does_not_decide():
    assert claims.communication(claims.Figures(communication_recorder(8.0, 10.0, 9.0))).verdict == claims.HOLDS
    one_run = claims.communication(claims.Figures(communication_recorder(9.0)))
    assert one_run.verdict == claims.PARTLY and claims.ONE_RUN in one_run.why
    no_sharing_gain = claims.communication(claims.Figures(communication_recorder(-1.0, 1.0, shared_us=30, pipe_us=31)))
    assert no_sharing_gain.verdict == claims.DOES_NOT_HOLD
    assert claims.communication(claims.Figures(Recorder())).verdict == claims.NOT_MEASURED


def test_communication_reads_its_medians_on_one_cpu_and_judges_the_thread_on_every_placement():
    # Unpinned, the medians of the two pairs said processes were faster (12.8 against 20.2 us)
    # while every run's paired difference said threads were: each side's median came from a
    # different placement. The medians now come from one CPU, where they are stable.
    recorder = communication_recorder(6.2, 6.9, 6.6, shared_us=14.0, pipe_us=22.0, place="one_cpu")
    communication_recorder(1.0, 4.9, 4.2, shared_us=12.8, pipe_us=23.0, place="unpinned", recorder=recorder)
    for figures, thread_us in zip(recorder.runs("probe", ("communication",), "machine"), (20.2, 20.5, 7.8)):
        figures["unpinned_small_thread_shared_memory_us"] = thread_us
    claim = claims.communication(claims.Figures(recorder))
    assert claim.verdict == claims.HOLDS, claim
    assert "on one CPU: threads through shared memory 7.4 us, processes through shared memory 14.0 us" in claim.measured
    assert "one CPU 6.6 us" in claim.measured and "unpinned 4.2 us" in claim.measured
    assert "in every placement" in claim.why
    assert set(claim.differences) == {"process_minus_thread_shared_memory_one_cpu",
                                      "process_minus_thread_shared_memory_unpinned"}


def test_communication_faster_on_one_placement_and_slower_on_another_is_partly():
    recorder = communication_recorder(8.0, 10.0, 9.0, place="one_cpu")
    communication_recorder(-8.0, -10.0, -9.0, place="two_cpus", recorder=recorder)
    claim = claims.communication(claims.Figures(recorder))
    assert claim.verdict == claims.PARTLY
    assert "threads were faster on one CPU and slower on two CPUs" in claim.why
    only_one = communication_recorder(8.0, 10.0, 9.0, place="one_cpu")
    communication_recorder(-2.0, 3.0, 1.0, place="unpinned", recorder=only_one)
    held = claims.communication(claims.Figures(only_one))
    assert held.verdict == claims.HOLDS and "on one CPU; no difference elsewhere" in held.why


def exhaustion_recorder(ended_by: str, threads: int = 100, headroom: int = 30_000) -> Recorder:
    recorder = Recorder()
    data = {"cap": 20_000, "cap_set_by": "--cap", "task_headroom": headroom, "mem_available_kib": 1_000_000,
            "runs": [{"stack": "default", "stack_kib": 8192, "threads": threads, "ended_by": ended_by,
                      "rss_kib": threads * 10, "virtual_kib": threads * 8200, "kernel_stack_kib_added": threads * 16,
                      "hold_cpu_share": 0.001}]}
    recorder.add("probe", ("thread-exhaustion",), "machine", probes.exhaustion_figures(data),
                 probes.exhaustion_note(data))
    return recorder


@pytest.mark.parametrize("ended_by, headroom, verdict", [
    ("memory (no task or address-space limit was near)", 30_000, claims.HOLDS),
    ("RLIMIT_AS (address space)", 30_000, claims.PARTLY),
    ("the cap", 100_000, claims.PARTLY),          # 1,000,000 KiB / 26 KiB per thread: memory first
    ("the cap", 30_000, claims.DOES_NOT_HOLD),    # the task limits first
    ("kernel.threads-max (/proc/sys/kernel/threads-max)", 30_000, claims.DOES_NOT_HOLD)])
def test_thread_exhaustion_verdict_follows_what_ended_the_run(ended_by, headroom, verdict):
    claim = claims.thread_exhaustion(claims.Figures(exhaustion_recorder(ended_by, headroom=headroom)))
    assert claim.verdict == verdict, claim
    assert ended_by in claim.measured


def fork_descriptor_recorder(*extras_us: float) -> Recorder:
    recorder = Recorder()
    for extra in extras_us:
        recorder.add("probe", ("fork-descriptors",), "machine",
                     {"fork_at_10_us": 100.0, "fork_at_10000_us": 100.0 + extra, "fewest_descriptors": 10,
                      "most_descriptors": 10_000, "extra_us": extra})
    return recorder


def test_fork_descriptors_a_difference_inside_the_noise_is_no_difference_never_a_negative_cost():
    claim = claims.fork_descriptors(claims.Figures(fork_descriptor_recorder(-20.0, 15.0, 5.0)))
    assert claim.verdict == claims.DOES_NOT_HOLD
    assert "no difference within ±20.0 us" in claim.measured and "-20" not in claim.measured
    grows = claims.fork_descriptors(claims.Figures(fork_descriptor_recorder(300.0, 250.0, 350.0)))
    assert grows.verdict == claims.HOLDS and "per 1,000 descriptors" in grows.why
    assert claims.fork_descriptors(claims.Figures(fork_descriptor_recorder(300.0))).why == claims.ONE_RUN


def test_the_quick_plan_reduces_the_new_probes():
    quick, full = make_plan(True, 10_000), make_plan(False, 10_000)
    assert quick.communication_samples < full.communication_samples
    assert quick.exhaustion_cap < full.exhaustion_cap
    assert quick.fork_descriptor_samples < full.fork_descriptor_samples


def test_a_load_series_is_kept_as_columns_and_drawn_without_its_sliver_of_a_last_second():
    seconds = [{"second": 0, "duration_s": 1.0, "requests": 900, "errors": 0, "p99_us": 250.0},
               {"second": 1, "duration_s": 1.0, "requests": 0, "errors": 3, "p99_us": None},  # a stall
               {"second": 2, "duration_s": 0.004, "requests": 8, "errors": 0, "p99_us": 90.0}]
    columns = series.load_columns(seconds)
    assert columns["requests"] == [900, 0, 8] and columns["errors"] == [0, 3, 0]
    assert series.load_columns(None) is None and series.load_columns([]) is None
    assert series.rates(columns) == [(0, 900.0), (1, 0.0)]
    assert series.points(columns, "p99_us") == [(0, 250.0)]


def test_the_servers_series_puts_each_scrape_on_the_loads_clock_with_the_cores_used_since_the_last():
    scrapes = [_scrape_at("echolab_connections_active 100\necholab_memory_pss_bytes 104857600\n", 10.0),
               _scrape_at("echolab_connections_active 200\necholab_memory_pss_bytes 209715200\n", 12.0)]
    # Monotonic 10 s and 12 s, the load started at wall 1000.5 s, wall = monotonic + 995.
    columns = series.server_columns([(scrapes[0], 10.0, 3.0), (scrapes[1], 12.0, 4.5)], 1000.5, 995.0)
    assert columns == {"at_s": [4.5, 6.5], "connections": [100.0, 200.0], "cpu_cores": [None, 0.75],
                       "pss_mib": [100.0, 200.0]}


# -- the processes of a server's group ----------------------------------------------------------

def test_a_groups_processes_are_found_from_its_leader_as_a_scan_of_every_process_finds_them():
    # A leader with children and a grandchild in its group, and one grandchild that left it
    # (setsid): the walk down the children files finds what the scan of /proc finds.
    script = "sleep 60 & (sleep 60 & setsid sleep 60 & wait) & wait"
    leader = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    try:
        def settled() -> set[int] | None:
            """The group's members, once all four are there and the fifth has left it."""
            stats = list(processes.proc_stat_fields())
            members = {pid for pid, fields in stats if int(fields[2]) == leader.pid}
            left = [pid for pid, fields in stats if int(fields[1]) in members and int(fields[2]) != leader.pid]
            return members if len(members) == 4 and left else None

        deadline = time.monotonic() + 30  # only "it hung"
        while (members := settled()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert members is not None  # bash, its subshell and two sleeps; not the setsid one
        assert {pid for pid, _ in processes.group_processes(leader.pid)} == members
        assert processes.group_cpu_seconds(leader.pid) > 0
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
