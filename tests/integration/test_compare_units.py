"""Noise and verdicts from figures, without a server or load: a difference inside the runs'
spread is shown as such, failed runs are kept out of the medians, the slow-clients and
hybrid verdicts, and how the report reads the rmap probe and the kernel's CPU. (The runner's
plumbing: test_compare_functions.py.)"""

import math
import statistics

from compare import claims, cpu, floor, loadtools, machine, probes, report, scenarios, slow_clients
from compare.claims import impaired
from compare.figures import Difference, Recorder, difference, summarize
from compare.plan import make_plan

CYCLES = lambda v: f"{v:,.0f} cycles"  # noqa: E731


def test_a_difference_whose_spread_covers_zero_is_no_difference():
    # The quick run once printed "92 cycles (-1,097 with a touched working set)".
    gap = difference(92, -400, 650, CYCLES)
    assert gap.within_noise is True
    assert gap.text == "no difference within ±650 cycles"
    assert "92" not in gap.text


def test_a_difference_clear_of_zero_is_given_with_its_spread():
    gap = difference(1200, 900, 1500, CYCLES)
    assert gap == Difference(median=1200, low=900, high=1500, within_noise=False,
                             text="1,200 cycles (900 cycles to 1,500 cycles)")
    below = difference(-300, -500, -100, CYCLES)
    assert below.within_noise is False and below.text.startswith("-300 cycles")


def test_a_difference_touching_zero_counts_as_noise_and_missing_parts_give_none():
    assert difference(5, 0, 10, CYCLES).within_noise is True
    assert difference(None, -1, 1, CYCLES) is None
    assert difference(1, None, 1, CYCLES) is None


def test_the_noise_band_of_a_difference_is_the_spread_of_its_run_medians():
    recorder = Recorder()
    for median, low, high in ((100, 50, 150), (120, -20, 200), (90, 60, 110)):
        recorder.add("probe", ("context-switch",), "machine",
                     {"extra_cycles": median, "extra_cycles_low": low, "extra_cycles_high": high})
    gap = recorder.difference("probe", ("context-switch",), "machine", "extra_cycles", CYCLES)
    assert (gap.median, gap.low, gap.high) == (100, 90, 120)  # not -20 to 200: the samples' extremes
    assert gap.within_noise is False


def run_of_samples(median: float, samples: int) -> dict:
    """One probe run's per-sample differences: `samples` values spread symmetrically around
    `median`, wider the more samples were taken (as the extremes of a real sample grow)."""
    half = samples // 2
    values = [median + 40 * (i - half) / half * math.log(samples) for i in range(samples + 1)]
    summary = {"samples": len(values), "median": statistics.median(values), "p90": max(values), "p99": max(values),
               "min": min(values), "max": max(values)}
    return probes.rmap_figures({"points": [{"tasks": 128, "process_ns_per_page": summary,
                                            "thread_ns_per_page": summary,
                                            "process_minus_thread_ns_per_page": summary}]})


def test_the_noise_band_neither_shrinks_nor_widens_with_the_samples_per_run():
    bands = []
    for samples in (10, 1000):
        recorder = Recorder()
        for median in (300.0, 340.0, 320.0):
            recorder.add("probe", ("rmap",), "machine", run_of_samples(median, samples))
        gap = recorder.difference("probe", ("rmap",), "machine", "difference_ns_at_128", CYCLES)
        bands.append((gap.median, gap.low, gap.high, gap.within_noise))
    assert bands[0] == bands[1] == (320.0, 300.0, 340.0, False)


def test_rmap_figures_are_read_per_count():
    summary = lambda median, low, high: {"samples": 3, "median": median, "p90": high, "p99": high,
                                         "min": low, "max": high}
    data = {"points": [{"tasks": count, "process_ns_per_page": summary(count * 100, 1, 2),
                        "thread_ns_per_page": summary(100, 1, 2),
                        "process_minus_thread_ns_per_page": summary(count * 100 - 100, -5, count * 100)}
                       for count in (1, 10, 128)]}
    figures = probes.rmap_figures(data)
    assert figures["process_ns_at_128"] == 12_800 and figures["thread_ns_at_10"] == 100
    assert (figures["difference_ns_at_1"], figures["difference_ns_at_1_low"]) == (0, -5)
    assert probes.rmap_counts([figures]) == [1, 10, 128]


def test_kernel_cpu_figures_are_shares_of_the_window():
    before = machine.KernelCpu({"kdamond.0": 1.0, "kswapd0": 2.0}, user_ticks=100, system_ticks=50, total_ticks=1000)
    after = machine.KernelCpu({"kdamond.0": 1.5, "kswapd0": 2.1, "kcompactd0": 0.0},
                              user_ticks=300, system_ticks=650, total_ticks=2000)
    figures = machine.kernel_cpu_figures(before, after, seconds=2.0)
    assert round(figures["mm_threads_cpu_percent"], 6) == 30.0
    assert round(figures["kdamond_cpu_percent"], 6) == 25.0
    assert figures["machine_user_percent"] == 20.0 and figures["machine_system_percent"] == 60.0


def test_the_mm_threads_of_this_machine_are_kernel_threads():
    for pid, name in machine.mm_thread_pids().items():
        assert name.startswith(machine.MM_THREAD_PREFIXES)
        with open(f"/proc/{pid}/stat") as stat:
            assert stat.read().rsplit(")", 1)[1].split()[1] == "2"


# -- the slow-clients experiment --------------------------------------------------------------

def test_progress_lines_are_read_per_second():
    log = ("[   1s]      20 open      9870 req/s  0 errors\n"
           "echolab-load: something else\n"
           "[   2s]      18 open       120 req/s  3 errors\n")
    assert loadtools.per_second(log) == [{"second": 1, "open": 20, "requests": 9870, "errors": 0},
                                         {"second": 2, "open": 18, "requests": 120, "errors": 3}]
    assert loadtools.per_second("") == []


def test_a_rate_change_inside_the_per_second_spread_is_no_difference():
    before = {"rps": 10_000, "per_second": [9_800, 10_200]}
    during = {"rps": 9_900, "per_second": [9_700, 10_100]}
    change = slow_clients.rate_change(before, during)
    assert (change["median"], change["low"], change["high"]) == (-100, -500, 300)
    figures = {"during_change_rps": change["median"], "during_change_rps_low": change["low"],
               "during_change_rps_high": change["high"]}
    assert slow_clients.change_text(figures, "during") == "no difference within ±500 req/s"


def test_a_rate_that_collapsed_is_given_as_a_negative_change_with_its_spread():
    change = slow_clients.rate_change({"rps": 10_000, "per_second": [9_900, 10_100]},
                                      {"rps": 50, "per_second": [0, 100]})
    assert change["high"] < 0 and change["low"] <= change["median"] <= change["high"]
    figures = {"during_change_rps": change["median"], "during_change_rps_low": change["low"],
               "during_change_rps_high": change["high"]}
    assert slow_clients.change_text(figures, "during").startswith("-9,950 req/s")


def test_during_an_attack_the_windows_own_seconds_are_not_noise():
    # threads in a full run: every worker held by the attack for 3 s, then a burst when the
    # header timeout freed them. Against its own extremes the fall read as "no difference within
    # ±45,592 req/s"; against the quiet windows around it, it is a fall of 70 %.
    before = {"rps": 44_649, "per_second": [43_734, 45_592]}
    during = {"rps": 13_284, "per_second": [0, 0, 0, 12_228, 54_195]}
    after = {"rps": 54_969, "per_second": [54_033, 55_919]}
    assert slow_clients.rate_change(before, during)["high"] > 0  # the window's own seconds
    change = slow_clients.rate_change(before, during, [before, after])
    assert (change["low"], change["median"], change["high"]) == (-42_635, -31_365, -30_450)


def test_a_window_without_progress_lines_falls_back_to_its_overall_rate():
    change = slow_clients.rate_change({"rps": 1000, "per_second": []}, {"rps": 1000, "per_second": []})
    assert change == {"median": 0, "low": 0, "high": 0}


def test_each_model_gets_the_stated_capacity_and_timeouts():
    plan = make_plan(True, 1000)
    assert plan.slow_attackers > plan.slow_capacity > plan.slow_pool_threads
    prefork = slow_clients.server_flags("prefork", plan, defended=True)
    assert prefork[prefork.index("--max-workers") + 1] == str(plan.slow_capacity)
    assert prefork[prefork.index("--header-timeout") + 1] == f"{plan.slow_timeout_s:g}s"
    pool = slow_clients.server_flags("pool", plan, defended=False)
    assert pool[pool.index("--threads") + 1] == str(plan.slow_pool_threads)
    assert pool[pool.index("--send-timeout") + 1] == slow_clients.UNDEFENDED_TIMEOUT
    assert "--max-threads" in slow_clients.server_flags("threads", plan, defended=True)
    assert not make_plan(True, 1000).slow_undefended and make_plan(False, 10_000).slow_undefended


def slow_headers_recorder(changes: dict[str, tuple[float, list[float], list[float]]]) -> Recorder:
    """The slow-headers experiment, defended, for each model: (before rate, its per-second rates,
    the during window's per-second rates)."""
    recorder = Recorder()
    for model, (before_rps, before_seconds, during_seconds) in changes.items():
        before = {"rps": before_rps, "per_second": before_seconds}
        during = {"rps": sum(during_seconds) / len(during_seconds), "per_second": during_seconds}
        change = slow_clients.rate_change(before, during, [before])
        recorder.add("slow_clients", ("slow_headers", "defended"), model,
                     {"before_rps": before["rps"], "during_rps": during["rps"], "during_errors": 0,
                      "during_change_rps": change["median"], "during_change_rps_low": change["low"],
                      "during_change_rps_high": change["high"]})
    return recorder


# (before rate, its per-second rates, the during window's per-second rates) of one model.
STARVED = (10_000, [9_900, 10_100], [0, 0])
STEADY = (10_000, [9_900, 10_100], [9_800, 10_050])


def test_slow_connection_cost_calls_clients_hurt_only_beyond_the_noise_band():
    # A drop of 40 % but inside a noisy before window's per-second spread: not hurt.
    noisy_drop = (10_000, [4_000, 16_000], [5_000, 7_000])
    recorder = slow_headers_recorder({"prefork": STARVED, "threads": STARVED, "pool": noisy_drop, "hybrid": STEADY})
    claim = claims.slow_connection_cost(claims.Figures(recorder))
    assert claim.verdict == claims.HOLDS, claim
    assert "no difference within" in claim.measured.split("pool:")[1].split(";")[0]
    # The same 40 % drop with a steady before window is beyond the noise: the pool was hurt.
    clear_drop = (10_000, [9_900, 10_100], [5_000, 7_000])
    recorder = slow_headers_recorder({"prefork": STARVED, "threads": STARVED, "pool": clear_drop, "hybrid": STEADY})
    assert claims.slow_connection_cost(claims.Figures(recorder)).verdict == claims.PARTLY


def test_an_event_loop_a_little_slower_beyond_the_noise_kept_serving():
    # The pool in a full run: 7 % slower while it accepted and timed out 128 attackers.
    slower = (10_000, [9_900, 10_100], [9_300, 9_300])
    recorder = slow_headers_recorder({"prefork": STARVED, "threads": STARVED, "pool": slower, "hybrid": STEADY})
    claim = claims.slow_connection_cost(claims.Figures(recorder))
    assert claim.verdict == claims.HOLDS, claim
    assert "-700 req/s" in claim.measured.split("pool:")[1].split(";")[0]


def test_slow_connection_cost_says_which_model_went_against_the_claim():
    halved = (10_000, [9_900, 10_100], [5_000, 5_000])
    recorder = slow_headers_recorder({"prefork": STARVED, "threads": STEADY, "pool": halved, "hybrid": STEADY})
    claim = claims.slow_connection_cost(claims.Figures(recorder))
    assert claim.verdict == claims.DOES_NOT_HOLD, claim
    assert "threads kept serving normal clients" in claim.why
    assert "the event loop pool lost more than 25% of the normal clients' rate" in claim.why


def test_impaired_needs_a_fall_beyond_the_noise():
    assert impaired(difference(-5_000, -9_000, -1_000, str))
    assert not impaired(difference(-5_000, -9_000, 1_000, str))
    assert not impaired(difference(3_000, 1_000, 5_000, str))
    assert not impaired(Difference(-5_000, -5_000, -5_000, None, "one run"))


# -- a failed run is never a figure -----------------------------------------------------------

def echolab_load_result(**overrides) -> dict:
    """An echolab-load result as loadtools reads it: a clean 2 s closed loop of 100 connections."""
    result = {"tool": "echolab-load", "requests": 40_000, "requests_per_second": 20_000.0, "duration_s": 2.0,
              "connections": 100, "errors": {"total": 0}, "requests_unfinished": 100, "requests_unsent": 0,
              "failure": None, "interrupted": False, "exit_status": 0}
    return {**result, **overrides}


def test_a_clean_run_and_one_request_in_flight_per_connection_are_no_failure():
    assert loadtools.run_failure(echolab_load_result(), planned_s=2.0) is None
    older_json = {k: v for k, v in echolab_load_result().items() if k not in ("requests_unsent", "failure")}
    assert loadtools.run_failure(older_json, planned_s=2.0) is None


def test_each_reason_a_load_run_fails_is_given():
    reasons = {
        "status": loadtools.run_failure(echolab_load_result(exit_status=2), 2.0),
        "failure": loadtools.run_failure(echolab_load_result(failure="no request completed in 2.00 s", exit_status=1), 2.0),
        "errors": loadtools.run_failure(echolab_load_result(errors={"total": 500}, exit_status=1), 2.0),
        "unsent": loadtools.run_failure(echolab_load_result(requests_unsent=5_000), 2.0),
        "early": loadtools.run_failure(echolab_load_result(duration_s=1.2), 2.0),
        "wrk": loadtools.run_failure({"tool": "wrk", "requests": 1000, "errors": {"total": 40}, "exit_status": 0}, 2.0),
    }
    assert "exited with status 2" in reasons["status"]
    assert "no request completed" in reasons["failure"]
    assert "500 errors" in reasons["errors"] and "40 errors" in reasons["wrk"]
    assert "5,100 requests unfinished or unsent" in reasons["unsent"]
    assert "ended early: 1.20 s of the 2 s planned" in reasons["early"]


def test_an_open_loop_may_leave_unsent_what_its_plan_tolerates_and_no_more():
    # 500 of 40,000 unsent (1.25 %) fail the full run's 1 %, not the quick run's 25 %.
    full, quick = make_plan(False, 10_000), make_plan(True, 10_000)
    unsent = echolab_load_result(requests_unsent=500)
    assert "unfinished or unsent" in loadtools.run_failure(unsent, 2.0, unfinished_tolerance=full.unsent_tolerance)
    assert loadtools.run_failure(unsent, 2.0, unfinished_tolerance=quick.unsent_tolerance) is None
    many = echolab_load_result(requests_unsent=20_000)
    assert "25% of 40,000" in loadtools.run_failure(many, 2.0, unfinished_tolerance=quick.unsent_tolerance)


def test_errors_within_tolerance_explain_echolab_loads_exit_status_and_are_findings_where_measured():
    assert loadtools.run_failure(echolab_load_result(errors={"total": 3}, exit_status=1), 2.0) is None
    starved = echolab_load_result(requests=0, errors={"total": 20}, exit_status=1,
                                  failure="no request completed in 2.00 s", requests_unfinished=20, connections=20)
    assert loadtools.run_failure(starved, 2.0) is not None
    assert loadtools.run_failure(starved, 2.0, errors_are_findings=True) is None
    # Older JSON names no failure: a window without a request exits 1 all the same.
    older_starved = {k: v for k, v in starved.items() if k != "failure"} | {"errors": {"total": 0}}
    assert loadtools.run_failure(older_starved, 2.0, errors_are_findings=True) is None
    assert loadtools.run_failure(older_starved, 2.0) == "echolab-load judged the run failed: no request completed"


def test_a_failed_run_is_kept_out_of_the_median_and_listed_with_its_reason(tmp_path):
    plan = make_plan(True, 1000)
    bench = scenarios.Bench(plan, tmp_path, tmp_path / "raw", tmp_path / "logs", None, {}, {}, None, total_steps=2)
    key = ("closed_loop", ("echolab-load", 100), "pool")

    def measure(result: dict) -> str:
        bench.recorder.add(*key, scenarios.load_figures(bench.judged(key, result, plan.duration_s)))
        return "ok"

    bench.attempt(0, "closed loop", "pool", lambda: measure(echolab_load_result(requests_per_second=20_000.0)))
    bench.attempt(0, "closed loop", "pool",
                  lambda: measure(echolab_load_result(requests_per_second=90.0, exit_status=-9)))
    rate = bench.recorder.figure(*key, "requests_per_second")
    assert rate["runs"] == [20_000.0] and rate["attempts"] == 2
    assert report.cell(rate) == "20,000 [1 of 2 runs]"
    assert bench.recorder.failed(*key) == ["echolab-load exited with status -9"]
    assert len(bench.failures) == 1 and "failed run" in bench.failures[0] and "status -9" in bench.failures[0]
    assert bench.recorder.to_json()["closed_loop"][0]["failed_runs"] == ["echolab-load exited with status -9"]


# -- the memory a scrape could not read whole -------------------------------------------------

def test_a_memory_scrape_that_lasted_the_budget_is_partial_for_the_sampled_models_only():
    assert scenarios.memory_partial("prefork", scenarios.SCRAPE_MEMORY_BUDGET_S)
    assert not scenarios.memory_partial("prefork", 0.1)
    assert not scenarios.memory_partial("threads", 2.0)  # reads its one process whole, no budget


def test_the_hold_table_marks_each_partial_memory_figure_and_gives_the_scrape_in_ms():
    plan = make_plan(True, 1000)
    recorder = Recorder()
    for model in scenarios.MODELS:
        partial = 1 if model == "prefork" else 0
        recorder.add("hold", (plan.hold_connections,), model,
                     {"pss_per_connection_kib": 60.0, "processes": 1.0, "scrape_max_ms": 251.0 if partial else 12.0,
                      "memory_scrape_ms": 251.0 if partial else 12.0, "memory_partial": partial})
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in report.hold_section(recorder, plan).splitlines()
            if line.startswith("| ")}
    assert rows["| **PSS per connection**"][0] == "60.0 KiB (partial)"
    assert rows["| **PSS per connection**"][1] == "60.0 KiB"
    assert rows["| processes"][0] == "1"  # not a memory figure: never partial
    assert rows["| slowest /metrics scrape"][:2] == ["251 ms", "12 ms"]
    assert "*partial*: the scrape the memory figures come from lasted the server's whole 250 ms" in \
        report.hold_section(recorder, plan)


# -- CPU per request, and as a multiple of the floor ------------------------------------------

def test_cpu_per_request_is_the_windows_cpu_over_its_requests():
    # 0.35 s of CPU over 0.7 s at 50,000 req/s: 35,000 requests, 10 us each.
    assert cpu.cpu_us_per_request((0.35, 0.7), 50_000) == 10.0
    assert cpu.cpu_us_per_request(None, 50_000) is None
    assert cpu.cpu_us_per_request((0.35, 0.7), None) is None


def test_the_cpu_window_ends_a_fifth_of_the_run_and_a_second_at_least_before_it_does():
    # The full run's 5 s runs read at 80 %, longer ones too; shorter ones keep a second (a
    # quarter of a run under four), so that a reader woken late still reads before the run ends.
    assert [cpu.window_end(seconds) for seconds in (30, 5, 2, 1)] == [24.0, 4.0, 1.5, 0.75]
    for seconds in (0.5, 1, 1.5, 2, 3, 5, 60):
        assert cpu.WINDOW_START * seconds < cpu.window_end(seconds) < seconds


def test_a_multiple_whose_runs_reach_1x_is_no_difference_not_a_saving():
    assert floor.multiple_cell(summarize([0.95, 0.97, 1.04])) == "no difference within ±5 %"


def test_a_multiple_clear_of_1x_is_given_with_its_spread():
    assert floor.multiple_cell(summarize([1.31, 1.25, 1.4])) == "1.31x (1.25-1.40x)"
    assert floor.multiple_cell(summarize([0.8, 0.85, 0.9])) == "0.85x (0.80-0.90x)"


def test_one_run_gives_a_multiple_and_says_it_has_no_spread():
    assert floor.multiple_cell(summarize([1.2])) == "1.20x (one run: no spread to judge the noise)"
    assert floor.multiple_cell(None) == "-"


def test_the_table_of_multiples_has_a_row_only_where_the_floor_was_measured():
    recorder = Recorder()
    recorder.add("closed_loop", ("echolab-load", 100), floor.REFERENCE, {"cpu_per_request_us": 5.0})
    for rep_ratio in (1.5, 1.6, 1.7):
        recorder.add("closed_loop", ("echolab-load", 100), "pool", {"cpu_vs_floor_ratio": rep_ratio})
    recorder.add("closed_loop", ("echolab-load", 1000), "pool", {"cpu_vs_floor_ratio": 2.0})
    rows = floor.multiples_rows([100, 1000], lambda c, server, name: recorder.figure(
        "closed_loop", ("echolab-load", c), server, name))
    assert len(rows) == 1
    row = dict(zip(floor.MULTIPLES_HEADER, rows[0]))
    assert row["connections"] == "100"
    assert row["floor (epoll): CPU per request"] == "5.0 us"
    assert row["pool"] == "1.60x (1.50-1.70x)"
    assert row["threads"] == "-"
