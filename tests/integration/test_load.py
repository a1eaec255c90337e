"""echolab-load against the servers, run as a user would type it.

Every test reads the --json result, so the fields scripts rely on are checked along the way.
"""

import json
import os
import resource
import signal
import socket
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import BIN_DIR, LOOPBACK, MODELS, Server, eventually, free_port, wait_for_port
from scraping import Scrape, promtool_check, scrape_url

LOAD = str(BIN_DIR / "echolab-load")
PERCENTILE_KEYS = ("p50", "p90", "p99", "p99_9", "p99_99", "max")
ERROR_KINDS = ("refused", "reset", "timeout", "bad_reply", "oversized_reply", "connect_unfinished")


# A stall (no answer for 1 s while requests wait) fails a run. The tests below check what a
# run counts, not how fast the machine is, and beside other test files on two cores a server
# went 4 s without an answer: they allow 30 s. The stall tests pass their own threshold.
GENEROUS_STALL = ("--stall-threshold", "30s")


def generous(args: tuple[str, ...]) -> tuple[str, ...]:
    return args if "--stall-threshold" in args else (*args, *GENEROUS_STALL)


def echolab_load(tmp_path: Path, port: int, *args: str, timeout: float = 60.0, **popen):
    """Runs echolab-load to the end; returns (exit code, parsed --json, stdout, stderr)."""
    json_path = tmp_path / f"load-{time.monotonic_ns()}.json"
    done = subprocess.run([LOAD, *generous(args), "--json", str(json_path), f"{LOOPBACK}:{port}"],
                          capture_output=True, text=True, timeout=timeout, check=False, **popen)
    result = json.loads(json_path.read_text()) if json_path.exists() and json_path.stat().st_size else None
    return done.returncode, result, done.stdout, done.stderr


def assert_consistent(result: dict) -> None:
    """What any result must satisfy, whatever the run."""
    for key in ("requests_per_second", "requests", "duration_s", "connections", "bytes", "mode",
                "protocol", "connections_open_peak", "latency_us", "connect_us", "errors"):
        assert key in result, key
    for histogram in ("latency_us", "connect_us"):
        values = [result[histogram][key] for key in PERCENTILE_KEYS]
        assert values == sorted(values), (histogram, values)
        assert result[histogram]["mean"] <= result[histogram]["max"]
    assert result["latency_us"]["count"] == result["requests"]
    assert result["connect_us"]["count"] == result["connects"]
    assert result["requests_per_second"] == pytest.approx(result["requests"] / result["duration_s"],
                                                         rel=0.01)
    for kind in ERROR_KINDS:
        assert isinstance(result["errors"][kind], int)
    assert isinstance(result["requests_unsent"], int) and isinstance(result["stalls"], list)
    for stall in result["stalls"]:
        assert 0 <= stall["start_s"] and stall["length_s"] >= result["stall_threshold_s"], stall
    if result["requests_due"] is not None and result["errors"]["total"] == 0:
        assert_every_request_accounted_for(result)


def assert_series_adds_up(result: dict) -> None:
    """One entry a second from the start, the last one partial, whose counts sum to the
    run's totals."""
    series = result["series"]
    assert [entry["second"] for entry in series] == list(range(len(series)))
    assert all(entry["duration_s"] == 1.0 for entry in series[:-1]), series
    assert 0 < series[-1]["duration_s"] <= 1.0, series[-1]
    if result["merged_from"] is None:  # a merge's seconds are its files' seconds, not its window's
        assert sum(entry["duration_s"] for entry in series) == pytest.approx(result["duration_s"],
                                                                             abs=1e-5)
    assert sum(entry["requests"] for entry in series) == result["requests"]
    assert sum(entry["errors"] for entry in series) == result["errors"]["total"]
    for kind in ERROR_KINDS + ("other",):
        assert sum(entry["errors_by_kind"].get(kind, 0) for entry in series) == result["errors"][kind]
    assert len(result["histograms"]["series_latency_ns"]) == len(series)
    assert all(isinstance(entry["connections_open"], int) for entry in series), series


def assert_series_percentiles_bound_the_total(result: dict) -> None:
    """The run's latencies are the seconds' latencies together, and a percentile of a mixture
    lies between the smallest and the largest percentile of its parts. Each figure is the upper
    edge of its bucket clamped to its own [min, max], so a second whose samples all sit low in
    the top bucket may report its exact max where the whole run reports that bucket's edge: the
    upper bound holds to the histogram's precision (1/128) and the 0.1 us rounding."""
    for key, total_key in (("p50_us", "p50"), ("p99_us", "p99"), ("max_us", "max")):
        values = [entry[key] for entry in result["series"] if entry["requests"] > 0]
        assert values, result["series"]
        total = result["latency_us"][total_key]
        assert min(values) <= total <= max(values) * (1 + 1 / 128) + 0.1, (key, total, values)
    assert max(entry["max_us"] for entry in result["series"] if entry["requests"]) == result["latency_us"]["max"]


def assert_every_request_accounted_for(result: dict) -> None:
    """Open loop and hold without errors: each request due was answered, is still awaited or
    was never sent, and nothing else."""
    assert (result["requests"] + result["requests_unfinished"] + result["requests_unsent"]
            == result["requests_due"]), result


def assert_clean(code: int, result: dict, stderr: str) -> None:
    assert code == 0, stderr
    assert_consistent(result)
    assert result["requests"] > 0
    assert result["errors"]["total"] == 0, result["first_errors"]
    assert result["failure"] is None and result["stalls"] == [], result["failure"]


@pytest.fixture(scope="module", params=MODELS)
def server(request):
    with Server(request.param) as running:
        yield running


def test_http_get_closed_loop(server, tmp_path):
    code, result, stdout, stderr = echolab_load(tmp_path, server.port, "-c", "20", "-t", "2",
                                                "-d", "2s")
    assert_clean(code, result, stderr)
    assert result["mode"] == "closed" and result["protocol"] == "http"
    assert result["connections_open_peak"] == 20
    assert result["connects"] == 20  # keep-alive: no reconnects
    assert result["latency_us"]["p50"] <= result["latency_us"]["p99"] <= result["latency_us"]["max"]
    assert "requests/s" in stdout and "p99.99" in stdout
    progress = [line for line in stderr.splitlines() if "req/s" in line]
    assert progress, stderr  # one line a second


def test_the_series_has_a_second_per_entry_summing_to_the_totals(threads_server, tmp_path):
    code, result, _, stderr = echolab_load(tmp_path, threads_server.port, "-c", "8", "-t", "2",
                                           "-d", "3s", "-q")
    assert_clean(code, result, stderr)
    assert_series_adds_up(result)
    assert len(result["series"]) >= 3
    assert_series_percentiles_bound_the_total(result)
    # Keep-alive: the 8 connections stay open to the end, sampled every second.
    assert [entry["connections_open"] for entry in result["series"][1:]] == [8] * (len(result["series"]) - 1)


def test_http_post_echo_is_checked(server, tmp_path):
    code, result, _, stderr = echolab_load(tmp_path, server.port, "--method", "POST",
                                           "--payload", "1000", "-c", "8", "-d", "1s")
    assert_clean(code, result, stderr)
    assert result["payload_bytes"] == 1000
    assert result["bytes"] >= result["requests"] * 1000


def test_raw_echo(server, tmp_path):
    code, result, _, stderr = echolab_load(tmp_path, server.port, "--protocol", "raw",
                                           "--payload", "256", "-c", "8", "-d", "1s")
    assert_clean(code, result, stderr)
    assert result["protocol"] == "raw"
    assert result["bytes"] >= result["requests"] * 256


def test_open_loop_keeps_its_schedule(server, tmp_path):
    # The accounting is checked, not the machine's speed: beside a compile and two other test
    # files, 4.6 % of the requests due stayed unsent, which the default tolerance (1 %) fails;
    # test_an_open_loop_run_counts_what_a_frozen_server_left_unsent checks that failure.
    code, result, _, stderr = echolab_load(tmp_path, server.port, "--rate", "1000", "-c", "10",
                                           "-d", "2s", "--unsent-tolerance", "100",
                                           "--stall-threshold", "1m")
    assert_clean(code, result, stderr)
    assert result["mode"] == "open" and result["rate"] == 1000
    # One request falls due a millisecond from the start, and none is sent ahead of the
    # schedule. How many fall due by the end, and how many complete, is the machine's speed
    # (beside two Docker tests 94 % completed, and 98 % fell due): what must hold is that every
    # request due is accounted for, answered, in flight at the end, or never sent. Half the
    # schedule is a generous "it hung". A busy machine also wakes the run late at its end (28 ms
    # late here once): the requests due by then count as due, so the upper bound follows the
    # run's measured length, with one request a connection sent before its thread saw the end.
    scheduled = 1000 * result["duration_planned_s"]
    assert 0.5 * scheduled <= result["requests_due"] <= 1000 * result["duration_s"] + 10
    assert 0 < result["requests"] <= result["requests_due"]
    assert_every_request_accounted_for(result)


def test_pipelining(server, tmp_path):
    code, result, _, stderr = echolab_load(tmp_path, server.port, "--pipeline", "16", "-c", "4",
                                           "-d", "1s")
    assert_clean(code, result, stderr)
    assert result["pipeline"] == 16
    assert result["requests"] % 16 == 0  # whole batches only: every reply was counted


def test_new_connection_per_request(server, tmp_path):
    code, result, _, stderr = echolab_load(tmp_path, server.port, "--new-connection-per-request",
                                           "-c", "4", "-d", "1s")
    assert_clean(code, result, stderr)
    assert result["connects"] >= result["requests"] >= 10


def test_ramp_and_hold_2000_connections(server, tmp_path):
    # What is checked is the accounting, not the machine's speed: a server that cannot keep
    # the schedule here (prefork forking 2,000 workers beside a compile) leaves requests
    # unsent, and would fail the run under the default tolerance and stall threshold.
    code, result, _, stderr = echolab_load(tmp_path, server.port, "--connections", "2000",
                                           "--ramp", "2s", "--hold", "3s", "--interval", "1s",
                                           "--unsent-tolerance", "100", "--stall-threshold", "1m")
    assert_clean(code, result, stderr)
    assert result["mode"] == "hold"
    opening = {key: result[key] for key in ("connects", "connects_pending", "connections_not_started",
                                            "connections_open_peak", "connect_us")}
    opening["open_by_second"] = [entry["connections_open"] for entry in result["series"]]
    # Every connection opened once and stayed open, or was still connecting (or not started)
    # when the run ended: beside other test files the fastest connect took 198 ms and the
    # slowest 2.07 s, and 5 were still waiting at the end, within the longest completed wait, so
    # not errors. On a quiet machine all 2,000 open in the ramp.
    assert result["connects"] + result["connects_pending"] + result["connections_not_started"] == 2000, \
        (opening, stderr)
    assert result["connections_open_peak"] == result["connects"], (opening, stderr)
    assert result["connects"] >= 1000, (opening, stderr)  # "hung"
    hold = result["hold"]
    # Each request the connections owed was answered, is still awaited or is counted unsent
    # (within the tolerance, or the run would have failed): however slow the machine, none
    # is lost.
    assert result["requests_due"] >= result["connects"], result
    assert_every_request_accounted_for(result)
    assert_series_adds_up(result)
    held = [entry["connections_open"] for entry in result["series"]]
    assert all(0 <= open_ <= 2000 for open_ in held) and max(held) == result["connects"], held
    assert 0 < hold["requests"] <= result["requests"], hold
    values = [hold["latency_us"][key] for key in PERCENTILE_KEYS]
    assert values == sorted(values)


@pytest.mark.parametrize("model", MODELS)
def test_server_killed_mid_run_counts_errors_and_exits_1(model, tmp_path):
    with Server(model) as victim:
        json_path = tmp_path / "killed.json"
        # Killed once it has answered some of the load (a second in on a quiet machine), with
        # seconds left for echolab-load to see the resets and the refused reconnects. A fixed
        # second was not enough beside other test files: prefork answered nothing before it.
        load = subprocess.Popen([LOAD, "-q", "-c", "20", "-d", "6s", "--json", str(json_path),
                                 f"{LOOPBACK}:{victim.port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        answered = eventually(lambda: scrape_url(victim.metrics_url()).total("echolab_requests_total") or 0,
                              lambda count: count >= 100, timeout=4.0)
        os.killpg(victim.process.pid, signal.SIGKILL)  # the master and every child
        assert answered >= 100, f"{model} answered {answered:.0f} requests in the load's first 4 s"
        _, stderr = load.communicate(timeout=60)  # "hung"
    assert load.returncode == 1, stderr
    result = json.loads(json_path.read_text())
    assert_consistent(result)
    assert result["requests"] > 0  # it worked before the kill
    assert result["errors"]["reset"] + result["errors"]["refused"] > 0, result["errors"]
    assert result["errors"]["total"] == sum(result["errors"][kind] for kind in
                                            ERROR_KINDS + ("other",))
    # Second by second: the errors begin with the kill, and no request completes after it
    # (a reply already in a socket buffer may still be read in the second after).
    assert_series_adds_up(result)
    first_error = next(entry["second"] for entry in result["series"] if entry["errors"])
    assert all(entry["requests"] == 0 for entry in result["series"][first_error + 2:]), result["series"]


class ByteFlippingEcho(socketserver.BaseRequestHandler):
    """Echoes like a raw echo server, except that the 10th byte of each connection is flipped."""

    def handle(self):
        sent = 0
        while data := self.request.recv(65536):
            reply = bytearray(data)
            if sent <= 9 < sent + len(reply):
                reply[9 - sent] ^= 0x01
            self.request.sendall(reply)
            sent += len(reply)


class SilentListener(socketserver.BaseRequestHandler):
    """Reads whatever comes and never answers: a hung server."""

    def handle(self):
        while self.request.recv(65536):
            pass


def serve_in_thread(handler):
    """A throwaway loopback TCP server running `handler`; a context manager."""
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    server.done = threading.Event()  # tells handlers that loop on their own to stop
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_serving(server) -> None:
    server.done.set()
    server.shutdown()
    server.server_close()


class EndlessChunkedReply(socketserver.BaseRequestHandler):
    """Answers the first request with a chunked reply that never ends, written as fast as the
    socket takes it."""

    def handle(self):
        chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
        try:
            self.request.recv(65536)
            self.request.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while not self.server.done.is_set():
                self.request.sendall(chunk)
        except OSError:
            pass  # the client cut the reply


class LargeReplies(socketserver.BaseRequestHandler):
    """Answers each request (keep-alive) with a 200 whose body is 100,000 bytes."""

    BODY_BYTES = 100_000

    def handle(self):
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (
            self.BODY_BYTES, b"y" * self.BODY_BYTES)
        received = b""
        try:
            while data := self.request.recv(65536):
                received += data
                while b"\r\n\r\n" in received:
                    _, received = received.split(b"\r\n\r\n", 1)
                    self.request.sendall(reply)
        except OSError:
            pass


def test_flipped_byte_is_a_bad_reply(tmp_path):
    flipper = serve_in_thread(ByteFlippingEcho)
    try:
        code, result, stdout, _ = echolab_load(tmp_path, flipper.server_address[1], "-q",
                                               "--protocol", "raw", "--payload", "64",
                                               "-c", "2", "-t", "1", "-d", "1s")
    finally:
        flipper.shutdown()
        flipper.server_close()
    assert code == 1
    assert result["errors"]["bad_reply"] > 0
    assert result["requests"] == 0  # every connection fails on its first reply
    assert "byte 9" in result["first_errors"]["bad_reply"]
    assert "bad_reply" in stdout


def the_one_line_on(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("echolab-load:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("options", [("--timeout", "1s"), ()], ids=["timeout-1s", "no-timeout"])
def test_a_port_that_drops_syns_fails_and_says_why(options, tmp_path):
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        # Linux queues one connection for a backlog of 0; with it never accepted the queue is
        # full, and every further SYN is dropped: connects hang as behind a firewall.
        with socket.create_connection((LOOPBACK, port), timeout=5):
            started = time.monotonic()
            code, result, _, stderr = echolab_load(tmp_path, port, "-q", "--connections", "20",
                                                   "--duration", "2s", *options, timeout=30)
            elapsed = time.monotonic() - started
    assert code == 1, stderr
    assert elapsed < 2 + 20, elapsed  # "hung"; the run's own duration_s says whether the stop was kept
    assert_consistent(result)
    assert result["duration_s"] < 2.5  # hanging connects never hold up the end
    assert result["requests"] == 0 and result["connects"] == 0
    errors = result["errors"]
    # Every connection either timed out or was still waiting when the run ended.
    assert errors["timeout"] + errors["connect_unfinished"] >= 20, errors
    assert errors["connect_unfinished"] >= 1, errors  # each reconnected and was waiting again
    assert errors["total"] == errors["timeout"] + errors["connect_unfinished"], errors
    # None completed, so every connect still pending at the end waited longer than any that did.
    assert result["connects_pending"] == errors["connect_unfinished"], result
    assert result["connections_not_started"] == 0, result
    if not options:
        assert errors["connect_unfinished"] == 20, errors
    line = the_one_line_on(stderr)
    assert "no request completed" in line and "connect_unfinished" in line, line


@pytest.mark.parametrize("max_bytes", ["1048576", "1073741824"])
def test_an_endless_reply_is_cut_and_the_stop_is_kept(max_bytes, tmp_path):
    endless = serve_in_thread(EndlessChunkedReply)
    try:
        started = time.monotonic()
        code, result, _, stderr = echolab_load(tmp_path, endless.server_address[1], "-q",
                                               "-c", "2", "-t", "1", "--duration", "2s",
                                               "--max-response-bytes", max_bytes, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        stop_serving(endless)
    # Even when the limit is never reached, bytes that keep coming never hold up the end.
    assert elapsed < 2 + 20, elapsed  # "hung"; the run's own duration_s says whether the stop was kept
    assert code == 1
    assert_consistent(result)
    assert result["requests"] == 0
    assert result["duration_s"] < 2.5
    if max_bytes == "1048576":
        assert result["errors"]["oversized_reply"] >= 2, result["errors"]
        assert "--max-response-bytes" in result["first_errors"]["oversized_reply"]
        # Each cut reply is a little over the limit; the reconnect back-off bounds how many.
        assert result["bytes"] >= result["errors"]["oversized_reply"] * 1048576
    assert "no request completed" in the_one_line_on(stderr)


def test_a_reply_over_the_limit_is_counted_and_one_under_it_is_not(tmp_path):
    large = serve_in_thread(LargeReplies)
    try:
        cut_code, cut, cut_stdout, _ = echolab_load(tmp_path, large.server_address[1], "-q",
                                                    "-c", "2", "-t", "1", "-d", "1s",
                                                    "--max-response-bytes", "65536")
        fits_code, fits, _, fits_stderr = echolab_load(tmp_path, large.server_address[1], "-q",
                                                       "-c", "2", "-t", "1", "-d", "1s",
                                                       "--max-response-bytes", "200000")
    finally:
        stop_serving(large)
    assert cut_code == 1
    assert cut["max_response_bytes"] == 65536
    assert cut["requests"] == 0
    assert cut["errors"]["oversized_reply"] > 0, cut["errors"]
    assert cut["errors"]["total"] == cut["errors"]["oversized_reply"], cut["errors"]
    assert "oversized_reply" in cut_stdout
    assert_clean(fits_code, fits, fits_stderr)


def test_unanswered_requests_count_as_timeouts(tmp_path):
    silent = serve_in_thread(SilentListener)
    try:
        code, result, _, _ = echolab_load(tmp_path, silent.server_address[1], "-q", "-c", "2",
                                          "-t", "1", "-d", "1500ms", "--timeout", "300ms")
    finally:
        silent.shutdown()
        silent.server_close()
    assert code == 1
    assert result["requests"] == 0
    # Each connection times out about every 300 ms (then reconnects and waits again).
    assert 2 <= result["errors"]["timeout"] <= 2 * 1500 // 300 + 2, result["errors"]
    assert result["errors"]["total"] == result["errors"]["timeout"]


def test_slow_headers_are_held_until_the_header_timeout(tmp_path):
    with Server("threads", "--header-timeout", "1s") as idle_closing:
        code, result, stdout, stderr = echolab_load(
            tmp_path, idle_closing.port, "-q", "--slow-headers", "3s", "-c", "10", "-t", "1",
            "-d", "4s", timeout=30)
    assert code == 0, stderr
    assert_consistent(result)
    assert result["mode"] == "slow_headers" and result["requests"] == 0
    attack = result["attack"]
    assert attack["mode"] == "slow_headers" and attack["interval_s"] == 3
    assert attack["connections"] == 10
    # A header section has 1 s however often lines come: each connection is answered 408
    # within its first interval, then opens again, so several rounds fit in the run. The
    # interval is 2 s past the timeout: beside other test files a cut came 1.1 s late.
    assert attack["closed_by_server"] >= 10, attack
    assert attack["statuses"].get("408", 0) >= 10, attack
    assert 0 < attack["held_ms"]["p50"] <= attack["held_ms"]["max"] < 3000, attack
    assert attack["held_ms"]["count"] == attack["closed_by_server"]
    assert attack["connects"] == attack["closed_by_server"] + attack["still_open_at_end"]
    assert attack["bytes_sent"] == result["bytes_sent"] > 0
    assert "ended by the server" in stdout


def test_slow_headers_within_the_header_timeout_stay_open(tmp_path):
    head = len(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:65535\r\n")
    with Server("threads", "--header-timeout", "5s") as server:
        code, result, _, stderr = echolab_load(tmp_path, server.port, "-q", "--slow-headers",
                                               "300ms", "-c", "5", "-t", "1", "-d", "2500ms",
                                               timeout=30)
    assert code == 0, stderr
    attack = result["attack"]
    assert attack["connects"] == attack["closed_by_server"] + attack["still_open_at_end"]
    assert attack["still_open_at_end"] + attack["closed_by_server"] >= 5, attack
    # Header lines kept coming after the head: several per connection.
    assert attack["sent_bytes_per_connection"]["max"] >= head + 4 * len(b"X-a: b\r\n"), attack


def test_never_read_fills_the_server_and_is_measured(tmp_path):
    with Server("threads", "--send-timeout", "1s", "--min-rate", "0") as server:
        code, result, stdout, stderr = echolab_load(tmp_path, server.port, "-q", "--never-read",
                                                    "--pipeline", "16", "-c", "4", "-t", "1",
                                                    "-d", "3s", timeout=30)
        assert server.alive()
    assert code == 0, stderr
    assert_consistent(result)
    assert result["mode"] == "never_read" and result["requests"] == 0
    assert result["bytes"] == 0  # not a byte read
    attack = result["attack"]
    assert attack["mode"] == "never_read" and attack["interval_s"] is None
    assert attack["connects"] >= 4
    assert attack["connects"] == attack["closed_by_server"] + attack["still_open_at_end"]
    # Each connection stopped reading answers, and the send timeout let it go after 1 s.
    assert attack["closed_by_server"] >= 4, attack
    assert 900 <= attack["held_ms"]["p50"] < 3000, attack
    assert attack["held_ms"]["count"] == attack["closed_by_server"]
    # The socket buffers on both sides took far more than one batch before the sends stopped.
    assert attack["sent_bytes_per_connection"]["p50"] > 64 * 1024, attack
    assert attack["bytes_sent"] == result["bytes_sent"]
    assert "never reading" in stdout


def test_sigint_ends_the_run_early_with_a_report(server, tmp_path):
    json_path = tmp_path / "interrupted.json"
    load = subprocess.Popen([LOAD, "-q", "-c", "4", "-d", "30s", *GENEROUS_STALL, "--json", str(json_path),
                             f"{LOOPBACK}:{server.port}"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    load.send_signal(signal.SIGINT)
    stdout, _ = load.communicate(timeout=10)
    assert load.returncode == 0
    assert "interrupted" in stdout
    result = json.loads(json_path.read_text())
    assert result["interrupted"] is True
    assert result["duration_s"] < 5
    assert_clean(0, result, "")


def test_sigint_in_the_ramp_counts_the_connections_not_started(tmp_path):
    with Server("pool") as target:
        json_path = tmp_path / "interrupted-ramp.json"
        load = subprocess.Popen([LOAD, "-q", "-c", "100", "--ramp", "20s", "--hold", "1s", "--interval", "1s",
                                 "--unsent-tolerance", "100", *GENEROUS_STALL, "--json", str(json_path),
                                 f"{LOOPBACK}:{target.port}"], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        load.send_signal(signal.SIGINT)
        load.communicate(timeout=10)
    # Whether a request completed in the first second (and so the exit status) depends on the
    # machine; which connections the run ended without does not.
    result = json.loads(json_path.read_text())
    assert result["interrupted"] is True and result["errors"]["total"] == 0, result
    assert result["connects"] + result["connects_pending"] + result["connections_not_started"] == 100, result
    assert result["connections_not_started"] > 0, result  # the ramp had 19 s to go


def test_nothing_listening_counts_refused(tmp_path):
    code, result, _, _ = echolab_load(tmp_path, free_port(), "-q", "-c", "2", "-d", "1s")
    assert code == 1
    assert result["errors"]["refused"] > 0
    assert result["requests"] == 0
    # The back-off keeps a dead server from turning into a busy loop of refused connects.
    assert result["errors"]["refused"] < 2 * 1000


def load_until_it_measures(port: int, json_path: Path, *args: str) -> subprocess.Popen:
    """Starts echolab-load and returns once its progress line shows replies coming."""
    load = subprocess.Popen([LOAD, *args, "--json", str(json_path), f"{LOOPBACK}:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in load.stderr:
        if "req/s" in line and int(line.split("open")[1].split("req/s")[0]) > 0:
            return load
    raise AssertionError(f"echolab-load ended before it measured: {load.wait()}")


class Frozen:
    """SIGSTOP to a server's process group, SIGCONT on leaving however the block ends."""

    def __init__(self, server: Server):
        self.group = server.process.pid

    def __enter__(self) -> float:
        sent_at = time.time()
        os.killpg(self.group, signal.SIGSTOP)
        return sent_at

    def __exit__(self, *_):
        os.killpg(self.group, signal.SIGCONT)


def test_a_frozen_server_is_a_stall_that_fails_the_run(tmp_path):
    json_path = tmp_path / "frozen.json"
    with Server("threads") as server:
        load = load_until_it_measures(server.port, json_path, "-c", "10", "-t", "1", "-d", "5s",
                                      "--stall-threshold", "500ms")
        try:
            with Frozen(server) as frozen_at:
                time.sleep(2.0)
            _, stderr = load.communicate(timeout=30)
        finally:
            load.kill()
        assert server.alive()
    assert load.returncode == 1, stderr
    result = json.loads(json_path.read_text())
    assert_consistent(result)
    assert result["stall_threshold_s"] == 0.5
    start_unix = result["window"]["start_unix_s"]
    # The replies stopped when the freeze began: the last ones before it were written before
    # it (the 0.25 s is the leeway of a reply already on its way).
    during = [stall for stall in result["stalls"] if start_unix + stall["start_s"] >= frozen_at - 0.25]
    assert during, (frozen_at - start_unix, result["stalls"])
    assert during[0]["length_s"] >= 0.5, during
    assert "stall" in result["failure"], result["failure"]
    assert result["failure"] in stderr, stderr
    assert "stalled" in stderr, stderr  # the progress line said so while it lasted
    assert result["errors"]["total"] == 0, result["errors"]  # no request waited --timeout (10 s)


def test_an_open_loop_run_counts_what_a_frozen_server_left_unsent(tmp_path):
    json_path = tmp_path / "unsent.json"
    with Server("threads") as server:
        load = load_until_it_measures(server.port, json_path, "--rate", "200", "-c", "4", "-t", "1",
                                      "-d", "3s")
        try:
            with Frozen(server):  # until the end of the run
                _, stderr = load.communicate(timeout=30)
        finally:
            load.kill()
    assert load.returncode == 1, stderr
    result = json.loads(json_path.read_text())
    assert_consistent(result)
    # Each connection sent one request into the freeze and waited on it: every later request
    # fell due and stayed unsent, and the accounting still adds up.
    assert result["requests_unfinished"] == 4, result
    assert result["requests_unsent"] > 0, result
    assert_every_request_accounted_for(result)
    assert "never sent" in result["failure"] and "stall" in result["failure"], result["failure"]


def test_usage_errors_exit_2_with_one_line():
    for args, mentioned in ((["--connections", "many", "127.0.0.1:1"], "--connections"),
                            (["--no-such-flag", "127.0.0.1:1"], "--no-such-flag"),
                            (["--duration", "10parsecs", "127.0.0.1:1"], "--duration"),
                            ([], "HOST:PORT")):
        done = subprocess.run([LOAD, *args], capture_output=True, text=True, timeout=10)
        assert done.returncode == 2, args
        assert mentioned in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_help_lists_every_option():
    done = subprocess.run([LOAD, "--help"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0
    for option in ("--protocol", "--method", "--path", "--payload", "--connections", "--threads",
                   "--duration", "--ramp", "--hold", "--interval", "--pipeline", "--rate",
                   "--timeout", "--new-connection-per-request", "--max-response-bytes",
                   "--slow-headers", "--never-read", "--json", "--quiet", "--shard", "--start-at",
                   "--metrics-listen", "--metrics-linger"):
        assert option in done.stdout, option


def test_too_low_ulimit_fails_fast_with_advice(tmp_path):
    def low_open_file_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    started = time.monotonic()
    code, result, _, stderr = echolab_load(tmp_path, free_port(), "--connections", "1000",
                                           preexec_fn=low_open_file_limit)
    assert code == 2
    assert result is None
    assert "ulimit -n" in stderr, stderr
    assert time.monotonic() - started < 30  # "hung": the refusal comes before any connect


def run_shards(port: int, tmp_path: Path, shards: int, *args: str) -> list[dict]:
    """Runs `shards` echolab-load processes, shard 1/N to N/N of one run, started together
    with --start-at; returns their --json results."""
    start_at = f"{time.time() + 1.5:.6f}"
    paths = [tmp_path / f"shard-{i}.json" for i in range(1, shards + 1)]
    loads = [subprocess.Popen([LOAD, "-q", *generous(args), "--shard", f"{i}/{shards}", "--start-at",
                               start_at, "--json", str(path), f"{LOOPBACK}:{port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, path in enumerate(paths, start=1)]
    for load in loads:
        _, stderr = load.communicate(timeout=60)
        assert load.returncode == 0, stderr
    results = [json.loads(path.read_text()) for path in paths]
    for result in results:
        assert_clean(0, result, "")
        # Nobody starts before --start-at (they were launched 1.5 s before it); how soon after
        # it a busy machine runs them is its speed, so the upper bound is only "it hung".
        assert float(start_at) - 0.001 <= result["window"]["start_unix_s"] < float(start_at) + 10
    return results


def merge(*files: Path, output: Path | None = None) -> subprocess.CompletedProcess:
    extra = ["--output", str(output)] if output else []
    return subprocess.run([LOAD, "merge", *map(str, files), *extra], capture_output=True,
                          text=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def threads_server():
    with Server("threads") as running:
        yield running


def test_two_shards_merged_agree_with_one_run(threads_server, tmp_path):
    run = ("-c", "8", "-t", "2", "-d", "2s")
    shards = run_shards(threads_server.port, tmp_path, 2, *run)
    assert [shard["shard"]["index"] for shard in shards] == [1, 2]
    assert [shard["connections"] for shard in shards] == [4, 4]
    assert all(shard["shard"]["connections_total"] == 8 for shard in shards)

    merged_path = tmp_path / "merged.json"
    done = merge(tmp_path / "shard-1.json", tmp_path / "shard-2.json", output=merged_path)
    assert done.returncode == 0, done.stderr
    assert "shard 1/2" in done.stdout and "shard 2/2" in done.stdout  # the summary
    merged = json.loads(merged_path.read_text())
    assert_consistent(merged)
    assert merged["requests"] == sum(shard["requests"] for shard in shards)
    assert merged["connects"] == sum(shard["connects"] for shard in shards) == 8
    assert merged["connections"] == 8 and merged["shard"] is None
    assert merged["errors"]["total"] == 0
    assert merged["window"]["start_unix_s"] == min(s["window"]["start_unix_s"] for s in shards)
    assert merged["window"]["end_unix_s"] == max(s["window"]["end_unix_s"] for s in shards)
    assert [part["shard"] for part in merged["merged_from"]] == ["1/2", "2/2"]
    # A quantile of the pooled samples lies between the shards' own quantiles: an average of
    # the shards' percentiles would too, but the counts and maxima below would not match it.
    for key in ("p50", "p99"):
        values = [shard["latency_us"][key] for shard in shards]
        assert min(values) <= merged["latency_us"][key] <= max(values), key
    assert merged["latency_us"]["max"] == max(shard["latency_us"]["max"] for shard in shards)
    buckets = merged["histograms"]["latency_ns"]["buckets"]
    assert sum(count for _, count in buckets) == merged["requests"]
    # Second by second too: the shards started together, so their seconds are the merged ones.
    assert_series_adds_up(merged)
    assert len(merged["series"]) == max(len(shard["series"]) for shard in shards)
    for second, entry in enumerate(merged["series"]):
        assert entry["requests"] == sum(shard["series"][second]["requests"] for shard in shards
                                        if second < len(shard["series"])), second
    assert_series_percentiles_bound_the_total(merged)

    # Without --output the JSON goes to stdout, the summary to stderr.
    done = merge(tmp_path / "shard-1.json", tmp_path / "shard-2.json")
    assert done.returncode == 0 and json.loads(done.stdout)["requests"] == merged["requests"]
    assert "requests/s" in done.stderr

    code, single, _, stderr = echolab_load(tmp_path, threads_server.port, "-q", *run)
    assert_clean(code, single, stderr)
    assert single["connections"] == merged["connections"] and single["shard"] is None
    ratio = merged["requests_per_second"] / single["requests_per_second"]
    print(f"\nsingle run: {single['requests_per_second']:.0f} req/s, "
          f"p50 {single['latency_us']['p50']} us, p99 {single['latency_us']['p99']} us"
          f"\nmerged 2 shards: {merged['requests_per_second']:.0f} req/s, "
          f"p50 {merged['latency_us']['p50']} us, p99 {merged['latency_us']['p99']} us"
          f" (throughput ratio {ratio:.2f})")
    # Two processes against one on a shared 2-core machine: the same load, not the same figure,
    # and a compile beside them moves the ratio past any bound; printed, not asserted.


def test_merge_refuses_results_of_different_runs_in_one_line(threads_server, tmp_path):
    code, result, _, stderr = echolab_load(tmp_path, threads_server.port, "-q", "-c", "2",
                                           "-d", "500ms")
    assert_clean(code, result, stderr)
    first = tmp_path / "first.json"
    first.write_text(json.dumps(result))
    other = tmp_path / "other-target.json"
    other.write_text(json.dumps({**result, "target": f"{LOOPBACK}:1"}))
    not_a_result = tmp_path / "notes.txt"
    not_a_result.write_text("requests: 12\n")
    for files, mentioned in (((first, other), (str(other), '"target"')),
                             ((first, not_a_result), (str(not_a_result), "echolab-load result"))):
        done = merge(*files)
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        for text in mentioned:
            assert text in done.stderr, done.stderr


def test_shard_and_start_at_usage_errors_exit_2_with_one_line():
    past = f"{time.time() - 60:.3f}"
    for args, mentioned in ((["--shard", "0/3"], "--shard"), (["--shard", "4/3"], "--shard"),
                            (["--shard", "1/0"], "--shard"), (["--shard", "x"], "--shard"),
                            (["--shard", "3/3", "-c", "2"], "--shard"),
                            (["--start-at", past], "--start-at"),
                            (["--start-at", "2999-01-01T00:00:00Z"], "--start-at")):
        done = subprocess.run([LOAD, *args, "127.0.0.1:1"], capture_output=True, text=True,
                              timeout=10)
        assert done.returncode == 2, args
        assert mentioned in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# --- --metrics-listen: the load generator's own Prometheus endpoint -------------------------

def scrape_load(port: int) -> Scrape:
    return scrape_url(f"http://{LOOPBACK}:{port}/metrics")


def metered_run(target_port: int, tmp_path: Path, *args: str, during_after: float = 1.0):
    """Runs echolab-load with --metrics-listen and a linger; scrapes once `during_after` seconds
    into the run and once after the --json result is written. Returns (exit code, result,
    scrape during, scrape after)."""
    metrics_port = free_port()
    json_path = tmp_path / f"metered-{time.monotonic_ns()}.json"
    load = subprocess.Popen([LOAD, "-q", *generous(args), "--metrics-listen", f"{LOOPBACK}:{metrics_port}",
                             "--metrics-linger", "5s", "--json", str(json_path),
                             f"{LOOPBACK}:{target_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(metrics_port, process=load)
        time.sleep(during_after)
        during = scrape_load(metrics_port)
        deadline = time.monotonic() + 15
        while not (json_path.exists() and json_path.stat().st_size):
            assert time.monotonic() < deadline, "no --json result"
            time.sleep(0.1)
        time.sleep(0.2)  # written whole once the linger has begun
        after = scrape_load(metrics_port)
    finally:
        load.wait(timeout=20)
    promtool_check(during.text)
    promtool_check(after.text)
    return load.returncode, json.loads(json_path.read_text()), during, after


def assert_totals_match(scrape: Scrape, result: dict) -> None:
    assert scrape.value("echolab_load_requests_total", outcome="ok") == result["requests"]
    assert scrape.value("echolab_load_requests_total", outcome="error") == result["errors"]["total"]
    for kind in ERROR_KINDS:
        assert scrape.value("echolab_load_errors_total", kind=kind) == result["errors"][kind], kind
    assert scrape.value("echolab_load_request_duration_seconds_count") == result["requests"]
    assert scrape.value("echolab_load_request_duration_seconds_bucket", le="+Inf") == result["requests"]
    assert scrape.value("echolab_load_connections_open") == 0


def test_metrics_endpoint_follows_the_run_and_ends_on_the_json_totals(threads_server, tmp_path):
    # Scraped half a second in, with 3.5 s of the run left: beside other test files a scrape
    # meant for 1 s into a 3 s run was answered after its end (it read the final totals).
    code, result, during, after = metered_run(threads_server.port, tmp_path, "-c", "8", "-t", "2",
                                              "-d", "4s", during_after=0.5)
    assert code == 0
    ok_during = during.value("echolab_load_requests_total", outcome="ok")
    assert 0 < ok_during < result["requests"]
    assert during.value("echolab_load_connections_open") == 8
    assert during.value("echolab_load_request_duration_seconds_count") == ok_during
    assert_totals_match(after, result)
    mean_s = after.value("echolab_load_request_duration_seconds_sum") / result["requests"]
    assert mean_s * 1e6 == pytest.approx(result["latency_us"]["mean"], rel=0.01)
    labels = after.series("echolab_load_requests_total", outcome="ok")[0][0]
    assert labels["target"] == f"{LOOPBACK}:{threads_server.port}"


def test_metrics_endpoint_counts_errors_by_kind(tmp_path):
    code, result, during, after = metered_run(free_port(), tmp_path, "-c", "2", "-d", "2s")
    assert code == 1
    assert during.value("echolab_load_errors_total", kind="refused") > 0
    assert result["errors"]["refused"] > 0
    assert_totals_match(after, result)


def test_metrics_listen_usage_errors_exit_2_with_one_line():
    taken = socket.socket()
    taken.bind((LOOPBACK, 0))
    taken.listen()
    try:
        for args in (["--metrics-listen", "nowhere"], ["--metrics-listen", "127.0.0.1:99999"],
                     ["--metrics-linger", "2s"],
                     ["--metrics-listen", f"{LOOPBACK}:{taken.getsockname()[1]}"]):
            done = subprocess.run([LOAD, *args, "-d", "1s", "127.0.0.1:1"], capture_output=True,
                                  text=True, timeout=10)
            assert done.returncode == 2, (args, done.stderr)
            assert args[0] in done.stderr, done.stderr
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    finally:
        taken.close()
