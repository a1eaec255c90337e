"""The wrk scripts of loadgen/wrk/, run with Debian's wrk against the servers."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness import MODELS, SOURCE_DIR, Server

SCRIPTS = SOURCE_DIR / "loadgen" / "wrk"
PERCENTILE_KEYS = ("p50", "p90", "p99", "p99_9", "p99_99", "max")


def wrk(url: str, script: str, tmp_path: Path, *script_args: str, connections: int = 8) -> dict:
    """Runs wrk with one of the scripts and returns the JSON its done() wrote."""
    json_path = tmp_path / f"{script}.json"
    command = ["wrk", "-t2", f"-c{connections}", "-d1s", "--timeout", "5s", "-s",
               str(SCRIPTS / script), url]
    if script_args:
        command += ["--", *script_args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "WRK_JSON": str(json_path)})
    assert done.returncode == 0, done.stderr
    assert "Requests/sec" in done.stdout  # wrk's own report is still printed
    return json.loads(json_path.read_text())


def assert_good_run(result: dict) -> None:
    assert result["tool"] == "wrk"
    assert result["requests"] > 0
    assert result["requests_per_second"] == pytest.approx(result["requests"] / result["duration_s"],
                                                         rel=0.01)
    # wrk 4.1 cannot give some percentiles under pipelining; json_report.lua writes null then.
    values = [result["latency_us"][key] for key in PERCENTILE_KEYS
              if result["latency_us"][key] is not None]
    assert values == sorted(values) and values[-1] == result["latency_us"]["max"] > 0
    assert set(result["errors"]) == {"connect", "read", "write", "status", "timeout", "total"}
    assert result["errors"]["total"] == 0, result["errors"]


@pytest.mark.parametrize("model", MODELS)
def test_json_report_against_each_server(model, tmp_path):
    with Server(model) as server:
        result = wrk(server.url(), "json_report.lua", tmp_path)
    assert_good_run(result)
    assert None not in result["latency_us"].values()  # without pipelining every value is there


@pytest.fixture(scope="module")
def threads_server():
    with Server("threads") as server:
        yield server


def test_post_echo_gets_its_body_back(threads_server, tmp_path):
    result = wrk(threads_server.url(), "post_echo.lua", tmp_path, "2048")
    assert_good_run(result)
    assert result["bytes"] >= result["requests"] * 2048  # the echoed bodies came back


def test_pipeline_depth_16(threads_server, tmp_path):
    plain = wrk(threads_server.url(), "json_report.lua", tmp_path, connections=4)
    pipelined = wrk(threads_server.url(), "pipeline.lua", tmp_path, "16", connections=4)
    assert_good_run(pipelined)
    # Sixteen requests per round trip: far more requests than one per round trip.
    assert pipelined["requests"] > 3 * plain["requests"]


def test_report_goes_to_stdout_without_wrk_json(threads_server):
    env = {key: value for key, value in os.environ.items() if key != "WRK_JSON"}
    done = subprocess.run(["wrk", "-t1", "-c2", "-d1s", "-s", str(SCRIPTS / "json_report.lua"),
                           threads_server.url()], capture_output=True, text=True, timeout=30,
                          env=env, check=False)
    assert done.returncode == 0
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["requests"] > 0
