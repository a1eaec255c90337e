"""python3 -m compare diff on synthetic results.json files (no server, no load): the exact rank
test, the verdict of each figure by its direction, "no difference within ±X", a single run that
can tell nothing, the one-line refusals of runs that cannot be compared, the warning when the
machines differ, and a diff.html that needs nothing from outside the file. The same against a
real run, and make compare's --baseline, are in test_compare.py."""

import json
import subprocess
from pathlib import Path

import pytest

from compare import diff
from compare.plan import make_plan
from compare.scenarios import load_figures
from harness import BIN_DIR, LOOPBACK, SOURCE_DIR, Server

PYTHON = "/usr/bin/python3"
MACHINE = {"cpu_model": "AMD EPYC", "cores_online": 2, "cores_usable": 2, "kernel": "Linux 6.1",
           "open_files_soft": 20000}


def summary(runs: list[float]) -> dict:
    ordered = sorted(runs)
    return {"median": ordered[len(ordered) // 2], "min": ordered[0], "max": ordered[-1], "runs": runs,
            "attempts": len(runs)}


def results(figures: dict[str, list[float]], quick: bool = False, machine: dict | None = None, **top) -> dict:
    """A results.json of one closed-loop row of one model, each figure with these runs."""
    plan = make_plan(quick, 1_000 if quick else 10_000).to_json()
    plan["repetitions"] = len(next(iter(figures.values())))
    data = {"tool": "echolab compare", "format": 1, "started_utc": "2026-01-01 00:00:00 UTC",
            "mode": "quick" if quick else "full", "plan": plan, "machine": dict(machine or MACHINE),
            "scenarios": {"closed_loop": [{"row": ["echolab-load", 100], "model": "threads",
                                           "figures": {name: summary(runs) for name, runs in figures.items()},
                                           "failed_runs": [], "notes": []}]}}
    data.update(top)
    return data


def write_run(directory: Path, data: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(data))
    return directory


def compared(tmp_path: Path, old: dict, new: dict) -> dict[str, diff.FigureDiff]:
    result = diff.diff_directories(write_run(tmp_path / "old", old), write_run(tmp_path / "new", new))
    return {figure.name: figure for figure in result.figures}


def diff_command(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "compare", "diff", *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False, cwd=SOURCE_DIR)


# -- the statistic ------------------------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "expected"), [
    ([1, 2, 3], [4, 5, 6], 2 / 20),              # every run beyond every other: 2 of C(6,3) splits
    ([4, 5, 6], [1, 2, 3], 2 / 20),
    ([1, 2, 3, 4], [5, 6, 7, 8], 2 / 70),
    ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 2 / 252),
    ([1, 3, 5], [2, 4, 6], 14 / 20),             # interleaved: U = 6 of 9, |U - 4.5| >= 1.5 in 14 splits
    ([1, 2, 3], [1, 2, 3], 1.0),
    ([7.0], [9.0], 1.0),                         # one run a side: no split is more extreme than another
])
def test_the_exact_rank_test_counts_the_splits(old, new, expected):
    assert diff.mann_whitney_p(old, new) == pytest.approx(expected)


def test_ties_count_a_half_and_never_make_a_difference_of_equal_runs():
    assert diff.u_statistic([1, 2], [2, 3]) == 3.5
    assert diff.mann_whitney_p([5, 5, 5], [5, 5, 5]) == 1.0


@pytest.mark.parametrize(("name", "direction"), [
    ("requests_per_second", diff.HIGHER_IS_BETTER), ("sleep_requests_per_second", diff.HIGHER_IS_BETTER),
    ("during_rps", diff.HIGHER_IS_BETTER), ("connections_survived", diff.HIGHER_IS_BETTER),
    ("p99_us", diff.LOWER_IS_BETTER), ("hold_p99_9_us", diff.LOWER_IS_BETTER),
    ("time_to_serve_ms", diff.LOWER_IS_BETTER),
    ("pss_per_connection_kib", diff.LOWER_IS_BETTER), ("rss_mib", diff.LOWER_IS_BETTER),
    ("unpinned_large_thread_shared_memory_mib_s", diff.HIGHER_IS_BETTER),
    ("context_switches_per_s", diff.LOWER_IS_BETTER), ("errors", diff.LOWER_IS_BETTER),
    ("connections_lost", diff.LOWER_IS_BETTER), ("mm_threads_cpu_percent", diff.LOWER_IS_BETTER),
    ("process_died", diff.LOWER_IS_BETTER),
    ("processes", diff.NEUTRAL), ("threads", diff.NEUTRAL), ("workers", diff.NEUTRAL),
    ("extra_cycles_high", diff.NEUTRAL), ("difference_ns_at_10", diff.NEUTRAL),
])
def test_each_figure_knows_which_way_is_better(name, direction):
    assert diff.direction_of(name) == direction


# -- the verdicts ---------------------------------------------------------------------------------

def test_a_run_against_itself_is_no_difference_for_every_figure(tmp_path):
    data = results({"requests_per_second": [100.0, 104.0, 98.0], "p99_us": [900.0, 1100.0, 1000.0],
                    "errors": [0.0, 0.0, 0.0], "processes": [1.0, 1.0, 1.0]})
    figures = compared(tmp_path, data, data)
    assert {f.verdict for f in figures.values()} == {"no difference"}
    assert all(f.ratio in (1.0, None) for f in figures.values())


def test_a_drop_in_throughput_and_a_rise_in_latency_are_worse_and_the_reverse_better(tmp_path):
    old = results({"requests_per_second": [100.0, 104.0, 98.0], "p99_us": [900.0, 1100.0, 1000.0]})
    new = results({"requests_per_second": [60.0, 62.0, 58.0], "p99_us": [1900.0, 2100.0, 2000.0]})
    worse = compared(tmp_path / "worse", old, new)
    assert worse["requests_per_second"].verdict == "worse" and worse["p99_us"].verdict == "worse"
    assert worse["requests_per_second"].ratio == pytest.approx(0.6)
    assert worse["requests_per_second"].text.startswith("worse: -40.0% (")
    assert worse["requests_per_second"].p_value == pytest.approx(0.1)
    better = compared(tmp_path / "better", new, old)
    assert better["requests_per_second"].verdict == "better" and better["p99_us"].verdict == "better"


def test_overlapping_runs_are_no_difference_within_the_widest_pair_change(tmp_path):
    old = results({"requests_per_second": [100.0, 110.0, 90.0]})
    new = results({"requests_per_second": [105.0, 95.0, 112.0]})
    figure = compared(tmp_path, old, new)["requests_per_second"]
    assert figure.verdict == "no difference"
    # The widest change a pair of runs shows: 112 against 90, +24.4%.
    assert figure.text.startswith("no difference within ±24.4% (p=")


def test_one_run_a_side_cannot_tell_and_still_shows_the_change(tmp_path):
    old = results({"requests_per_second": [100.0], "p99_us": [1000.0]}, quick=True)
    new = results({"requests_per_second": [50.0], "p99_us": [1000.0]}, quick=True)
    figures = compared(tmp_path, old, new)
    throughput = figures["requests_per_second"]
    assert throughput.verdict == "cannot tell" and throughput.change == "worse" and throughput.p_value is None
    assert throughput.text == "-50.0% (worse), one run on a side: cannot tell beyond a single run's noise"
    assert figures["p99_us"].verdict == "no difference"


def test_a_figure_from_zero_changes_by_its_amount_not_a_ratio(tmp_path):
    old = results({"errors": [0.0, 0.0, 0.0]})
    new = results({"errors": [5.0, 6.0, 7.0]})
    figure = compared(tmp_path, old, new)["errors"]
    assert figure.ratio is None and figure.verdict == "worse" and figure.text.startswith("worse: +6 (+5 to +7")


def test_a_figure_with_no_better_direction_is_higher_or_lower(tmp_path):
    figure = compared(tmp_path, results({"processes": [1.0, 1.0, 1.0]}),
                      results({"processes": [4.0, 4.0, 4.0]}))["processes"]
    assert figure.verdict == "higher"


# -- the command: output, refusals, warnings ------------------------------------------------------

def test_the_command_writes_markdown_and_a_self_contained_page_into_new_or_out(tmp_path):
    old = write_run(tmp_path / "old", results({"requests_per_second": [100.0, 104.0, 98.0]}))
    new = write_run(tmp_path / "new", results({"requests_per_second": [60.0, 62.0, 58.0]}))
    completed = diff_command(old, new)
    assert completed.returncode == 0, completed.stderr
    assert "1 figures compared (3 vs 3 run(s) per figure): 1 worse" in completed.stdout
    assert "closed_loop, echolab-load, 100, threads, requests_per_second: worse: -40.0%" in completed.stdout
    assert "by chance alone, about 0 of the 1 figures whose runs differ" in completed.stdout
    markdown = (new / "diff.md").read_text()
    assert "| echolab-load, 100 | threads | requests_per_second | 100 (98-104) | 60 (58-62) | 0.600 | worse:" \
        in markdown
    page = (new / "diff.html").read_text()
    assert "<style>" in page and "<tr class=worse>" in page
    for outside in ("<script", "http://", "https://", "src=", "@import"):
        assert outside not in page, outside
    assert diff_command(old, new, "--out", tmp_path / "elsewhere").returncode == 0
    assert (tmp_path / "elsewhere" / "diff.html").is_file()


@pytest.mark.parametrize(("change", "reason"), [
    (lambda new: new.update(mode="quick"), "compare diff: a full run against a quick run: their plans differ"),
    (lambda new: new["plan"].update(concurrency=[100, 800]),
     "compare diff: the runs' plans differ: concurrency [100, 1000] vs [100, 800]"),
    (lambda new: new.update(format=2), "results format 2; this diff reads format 1"),
    (lambda new: new.update(tool="something else"), "not the results of python3 -m compare"),
])
def test_runs_that_cannot_be_compared_are_refused_in_one_line(tmp_path, change, reason):
    old = write_run(tmp_path / "old", results({"requests_per_second": [100.0, 104.0, 98.0]}))
    new_data = results({"requests_per_second": [60.0, 62.0, 58.0]})
    change(new_data)
    completed = diff_command(old, write_run(tmp_path / "new", new_data))
    assert completed.returncode == 2
    assert len(completed.stderr.splitlines()) == 1 and reason in completed.stderr, completed.stderr
    assert not (tmp_path / "new" / "diff.md").exists()


def test_a_missing_result_directory_is_refused_naming_it(tmp_path):
    old = write_run(tmp_path / "old", results({"requests_per_second": [100.0]}))
    completed = diff_command(old, tmp_path / "nowhere")
    assert completed.returncode == 2
    assert completed.stderr == f"compare diff: {tmp_path / 'nowhere' / 'results.json'}: not found " \
                               "(a directory that python3 -m compare wrote?)\n"


def test_different_machines_are_warned_about_and_compared(tmp_path):
    other = dict(MACHINE, kernel="Linux 6.12", cores_usable=1, damon_enabled=True)
    old = write_run(tmp_path / "old", results({"requests_per_second": [100.0, 104.0, 98.0]},
                                              machine=dict(MACHINE, damon_enabled=False)))
    new = write_run(tmp_path / "new", results({"requests_per_second": [100.0, 104.0, 98.0]}, machine=other))
    completed = diff_command(old, new)
    assert completed.returncode == 0
    warnings = [line for line in completed.stderr.splitlines() if "WARNING: the machines differ" in line]
    assert [w.split("differ: ")[1] for w in warnings] == ["cores usable 2 vs 1", "kernel 'Linux 6.1' vs 'Linux 6.12'",
                                                          "damon_enabled False vs True"]
    assert "WARNING: the machines differ: kernel 'Linux 6.1' vs 'Linux 6.12'" in (new / "diff.md").read_text()


def test_make_compare_refuses_a_baseline_of_another_plan_before_it_starts_a_server(tmp_path):
    baseline = write_run(tmp_path / "baseline", results({"requests_per_second": [100.0, 104.0, 98.0]}))
    completed = subprocess.run([PYTHON, "-m", "compare", "--bin-dir", str(BIN_DIR), "--quick", "--out",
                                str(tmp_path / "run"), "--baseline", str(baseline)],
                               capture_output=True, text=True, timeout=120, check=False, cwd=SOURCE_DIR)
    assert completed.returncode == 2
    assert completed.stderr == f"compare: --baseline {baseline}: a full run against a quick run: " \
                               "their plans differ\n"
    assert not (tmp_path / "run" / "logs").exists()


def test_the_open_loop_is_matched_across_runs_that_chose_other_rates_and_says_so(tmp_path):
    """Each run schedules its open loop at half its own slowest closed-loop rate, so the row
    (the rate) differs between runs; the figures are still set side by side, with a note."""
    old, new = (results({"requests_per_second": [100.0, 104.0, 98.0]}) for _ in range(2))
    for data, rate in ((old, 3_800.0), (new, 3_200.0)):
        data["scenarios"]["open_loop"] = [{"row": [rate], "model": "pool", "failed_runs": [], "notes": [],
                                           "figures": {"p99_us": summary([rate / 10, rate / 9, rate / 11])}}]
        data["open_loop_rate"] = rate
    result = diff.diff_directories(write_run(tmp_path / "old", old), write_run(tmp_path / "new", new))
    assert not result.only_old and not result.only_new
    assert [f.name for f in result.figures if f.scenario == "open_loop"] == ["p99_us"]
    assert "The open loop ran at 3,800 requests/s in OLD and 3,200 in NEW" in diff.render_markdown(result)


def test_a_figure_one_run_lacks_is_listed_by_side(tmp_path):
    old = results({"requests_per_second": [100.0, 104.0, 98.0], "spawn_p50_us": [150.0, 160.0, 170.0]})
    new = results({"requests_per_second": [100.0, 104.0, 98.0]})
    result = diff.diff_directories(write_run(tmp_path / "old", old), write_run(tmp_path / "new", new))
    assert result.only_old == [("closed_loop", ("echolab-load", 100), "threads", "spawn_p50_us")]
    assert "## Only in OLD\n\n- closed_loop: echolab-load, 100, threads, spawn_p50_us\n" in diff.render_markdown(result)
    assert "<li>closed_loop: echolab-load, 100, threads, spawn_p50_us</li>" in diff.render_html(result)


def test_an_experiment_only_the_newer_version_plans_is_noted_and_the_rest_compared(tmp_path):
    """A plan setting the older run lacks belongs to an experiment its version did not have (the
    floor's connection counts): the shared figures are compared, and the diff says so."""
    old = results({"requests_per_second": [100.0, 104.0, 98.0]})
    new = results({"requests_per_second": [100.0, 104.0, 98.0]})
    del old["plan"]["floor_concurrency"]
    completed = diff_command(write_run(tmp_path / "old", old), write_run(tmp_path / "new", new))
    assert completed.returncode == 0, completed.stderr
    assert "NOTE: only the new run planned floor_concurrency = [100, 1000]: its figures are in one run only" \
        in (tmp_path / "new" / "diff.md").read_text()
    assert "1 figures compared" in completed.stdout


def test_a_diff_that_raises_after_a_run_costs_one_line_and_status_1(tmp_path, monkeypatch, capsys):
    def broken(*_):
        raise KeyError("figures")
    monkeypatch.setattr(diff, "run_diff", broken)
    assert diff.against_baseline(tmp_path / "baseline", tmp_path / "run") == 1
    assert capsys.readouterr().err == f"compare: diff against {tmp_path / 'baseline'}: KeyError: 'figures'\n"


def test_many_runs_a_side_use_the_normal_approximation_and_agree_with_the_count():
    separated = diff.mann_whitney_p(list(range(10)), list(range(10, 20)))
    assert 0 < separated < 0.001  # exact: 2 / C(20, 10) = 1.1e-5
    interleaved = diff.mann_whitney_p(list(range(0, 20, 2)), list(range(1, 20, 2)))
    assert interleaved > 0.5
    # 8 a side are still counted: complete separation is exactly 2 / C(16, 8).
    assert diff.mann_whitney_p(list(range(8)), list(range(8, 16))) == pytest.approx(2 / 12_870)


# -- a server slowed for real --------------------------------------------------------------------

def load_run(port: int, path: str, json_path: Path) -> dict:
    """One second of keep-alive load from echolab-load, as the runner records it."""
    done = subprocess.run([BIN_DIR / "echolab-load", "-c", "8", "-t", "1", "-d", "1s", "--path", path, "--quiet",
                           "--json", json_path, f"{LOOPBACK}:{port}"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return load_figures(json.loads(json_path.read_text()))


def test_a_server_slowed_for_real_is_flagged_worse_in_throughput(tmp_path):
    """Three real runs a side against one server, interleaved: plain requests, then requests that
    each burn 10 ms of its CPU (--fault-injection's /burn), hundreds of times what a plain one
    costs, so that beside other test files every slowed run is still beyond every plain one
    (at 1 ms a plain run beside three other test files was slower than a slowed one). The
    rank test then reads the throughput drop as worse. Latency is not asserted: beside other
    work a plain run's p99 reached 268 ms."""
    runs = {"plain": [], "slowed": []}
    with Server("pool", "--fault-injection") as server:
        for repetition in range(3):
            for side, path in (("plain", "/"), ("slowed", "/burn?us=10000")):
                runs[side].append(load_run(server.port, path, tmp_path / f"{side}-{repetition}.json"))
    old, new = ({"requests_per_second": [run["requests_per_second"] for run in runs[side]]}
                for side in ("plain", "slowed"))
    throughput = compared(tmp_path, results(old), results(new))["requests_per_second"]
    assert throughput.change == "worse" and throughput.verdict == "worse", runs
