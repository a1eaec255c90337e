"""The two load tools, run the same way: echolab-load (every scenario) and wrk (HTTP keep-alive
throughput, the tool users already know). Both results come back in one shape:
requests_per_second, requests, duration_s, latency_us{p50,p90,p99,p99_9,max}, errors{...}."""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from . import processes

PERCENTILE_KEYS = ("p50", "p90", "p99", "p99_9", "p99_99", "max")

# A run is judged failed, and kept out of every figure, beyond these tolerances. A closed loop
# cut at its deadline leaves up to one request per connection unanswered: that much is the
# deadline, not the server; beyond it, more than 1 % of the requests unanswered or unsent is.
UNFINISHED_TOLERANCE = 0.01
# Errors (echolab-load's error kinds, wrk's socket errors) beyond 0.1 % of the requests.
ERROR_TOLERANCE = 0.001
# A timed run that measured less than 90 % of its planned duration ended early.
SHORTEST_SHARE_OF_PLAN = 0.9


class LoadToolError(RuntimeError):
    pass


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class LoadRun:
    """One load tool process started in the background; `result()` waits for it."""

    def __init__(self, tool: str, args: list[str], json_path: Path, log_path: Path,
                 reader, timeout_s: float, env=None, stdout_path: Path | None = None):
        self.tool, self.json_path, self.log_path = tool, json_path, log_path
        self.reader, self.timeout_s = reader, timeout_s
        self.stdout_path = stdout_path
        self.started = time.monotonic()
        stdout = open(stdout_path, "wb") if stdout_path else None
        try:
            self.process = processes.spawn(args, log_path=log_path, env=env, stdout=stdout)
        finally:
            if stdout:
                stdout.close()
        self.args = args

    def result(self) -> dict:
        try:
            status = self.process.wait(timeout=max(self.timeout_s - (time.monotonic() - self.started), 1))
        except subprocess.TimeoutExpired:
            processes.stop(self.process, grace_s=2)
            raise LoadToolError(f"{self.tool} did not finish within {self.timeout_s:.0f}s: "
                                f"{' '.join(self.args)}")
        processes.stop(self.process, grace_s=1)
        try:
            result = self.reader(self)
        except (OSError, ValueError, KeyError) as error:
            raise LoadToolError(f"{self.tool} exited with status {status} and no usable result "
                                f"({error}): {' '.join(self.args)}\n{_tail(self.log_path)}") from error
        result["exit_status"] = status
        return result


def _read_echolab_load(run: LoadRun) -> dict:
    data = json.loads(run.json_path.read_text())
    errors = data.get("errors", {})
    errors.setdefault("total", sum(v for k, v in errors.items() if isinstance(v, (int, float))))
    hold = data.get("hold") or None
    return {
        "tool": "echolab-load",
        "requests_per_second": float(data["requests_per_second"]),
        "requests": int(data["requests"]),
        "duration_s": float(data["duration_s"]),
        "connections": int(data.get("connections", 0)),
        "connections_open_peak": data.get("connections_open_peak"),
        "latency_us": {k: data["latency_us"].get(k) for k in PERCENTILE_KEYS},
        "connect_us": {k: (data.get("connect_us") or {}).get(k) for k in PERCENTILE_KEYS},
        "hold_latency_us": ({k: hold["latency_us"].get(k) for k in PERCENTILE_KEYS}
                            if hold and hold.get("latency_us") else None),
        "hold_requests": hold.get("requests") if hold else None,
        "errors": errors,
        "requests_unfinished": data.get("requests_unfinished"),
        # Read with .get(): older echolab-load JSON has neither.
        "requests_unsent": data.get("requests_unsent"),
        "stalls": data.get("stalls") or [],
        "failure": data.get("failure"),
        "interrupted": data.get("interrupted"),
        "attack": data.get("attack"),
        # Older echolab-load JSON has no series.
        "series": data.get("series"),
        "window_start_unix_s": (data.get("window") or {}).get("start_unix_s"),
        "raw_name": run.json_path.stem,
    }


def run_failure(result: dict, planned_s: float | None, errors_are_findings: bool = False,
                unfinished_tolerance: float = UNFINISHED_TOLERANCE) -> str | None:
    """Why a load run cannot be a figure, or None when it can: a non-zero exit status the
    counted errors do not explain, echolab-load's own `failure`, unfinished or unsent requests
    or errors beyond the tolerances above, or a run that ended early. With
    `errors_are_findings` (the slow-clients windows, where a starved server is what is
    measured) errors, and echolab-load's "no request completed", are figures, not failures.
    `unfinished_tolerance` is the share of requests that may stay owed beyond those in flight."""
    tool = result.get("tool", "the load tool")
    requests = result.get("requests") or 0
    errors = (result.get("errors") or {}).get("total", 0) or 0
    status = result.get("exit_status")
    # echolab-load's JSON names its failure; older JSON does not, but the exit status of 1
    # for a run in which no request completed is the same judgement.
    failure = result.get("failure") or ("no request completed" if tool == "echolab-load" and requests == 0 else None)
    errors_tolerated = errors_are_findings or errors <= ERROR_TOLERANCE * max(requests, 1)
    if failure and not errors_are_findings:
        return f"{tool} judged the run failed: {failure}"
    if not errors_tolerated:
        return f"{tool} counted {errors:,.0f} errors in {requests:,} requests (tolerance {ERROR_TOLERANCE:.1%})"
    # echolab-load exits 1 for any counted error or failure: explained when tolerated above.
    explained = tool == "echolab-load" and status == 1 and (errors or failure)
    if status not in (0, None) and not explained:
        return f"{tool} exited with status {status}"
    owed = (result.get("requests_unfinished") or 0) + (result.get("requests_unsent") or 0)
    in_flight = result.get("connections") or 0
    if owed - in_flight > unfinished_tolerance * max(requests, 1):
        return (f"{owed:,} requests unfinished or unsent at the end, beyond one per connection "
                f"({in_flight:,}) and {unfinished_tolerance:.0%} of {requests:,} requests")
    if result.get("interrupted"):
        return f"{tool} was interrupted"
    duration = result.get("duration_s")
    if planned_s and duration is not None and duration < SHORTEST_SHARE_OF_PLAN * planned_s:
        return f"{tool} ended early: {duration:.2f} s of the {planned_s:g} s planned"
    return None


def echolab_load(binary: Path, target: str, options: list[str], work_dir: Path, name: str,
                 timeout_s: float, progress: bool = False) -> LoadRun:
    """Starts echolab-load; `options` are its flags (--connections, --duration, ...). With
    `progress`, its once-a-second progress lines go to the run's .log (see per_second)."""
    json_path = work_dir / f"{name}.json"
    json_path.unlink(missing_ok=True)
    quiet = [] if progress else ["--quiet"]
    args = [str(binary), *options, *quiet, "--json", str(json_path), target]
    return LoadRun("echolab-load", args, json_path, work_dir / f"{name}.log", _read_echolab_load,
                   timeout_s, stdout_path=work_dir / f"{name}.txt")


_PROGRESS_LINE = re.compile(r"^\[\s*(\d+)s\]\s+(\d+) open\s+(\d+) req/s\s+(\d+) errors", re.MULTILINE)


def per_second(log_text: str) -> list[dict]:
    """echolab-load's progress lines ("[  3s]  100 open  24567 req/s  0 errors"): for each
    second, the connections open, the requests completed in that second and the errors so far."""
    return [{"second": int(s), "open": int(o), "requests": int(r), "errors": int(e)}
            for s, o, r, e in _PROGRESS_LINE.findall(log_text)]


_WRK_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _wrk_time_us(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text}")
    return float(match.group(1)) * _WRK_UNITS_US[match.group(2)]


def parse_wrk_text(text: str) -> dict:
    """wrk's own --latency summary: used when the JSON reporter script wrote nothing."""
    percentiles = {}
    for label, key in (("50", "p50"), ("90", "p90"), ("99", "p99")):
        match = re.search(rf"^\s+{label}(?:\.0+)?%\s+(\S+)", text, re.MULTILINE)
        percentiles[key] = _wrk_time_us(match.group(1)) if match else None
    latency_line = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", text, re.MULTILINE)
    percentiles["max"] = _wrk_time_us(latency_line.group(1)) if latency_line else None
    requests = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not requests or not rps:
        raise ValueError("no 'requests in' / 'Requests/sec' line in wrk's output")
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket_errors:
        for key, value in zip(("connect", "read", "write", "timeout"), socket_errors.groups()):
            errors[key] = int(value)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non_2xx:
        errors["status"] = int(non_2xx.group(1))
    errors["total"] = sum(errors.values())
    return {"requests_per_second": float(rps.group(1)), "requests": int(requests.group(1)),
            "duration_s": _wrk_time_us(requests.group(2) + requests.group(3)) / 1e6,
            "latency_us": percentiles, "errors": errors}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def parse_wrk_json(data: dict) -> dict:
    """The JSON of loadgen/wrk/json_report.lua: the keys of echolab-load's, in microseconds."""
    latency = data["latency_us"]
    errors = dict(data.get("errors") or {})
    errors.setdefault("total", sum(v for v in errors.values() if isinstance(v, (int, float))))
    return {"requests_per_second": float(data["requests_per_second"]), "requests": int(data["requests"]),
            "duration_s": _number(data.get("duration_s")),
            "latency_us": {key: _number(latency.get(key)) for key in PERCENTILE_KEYS}, "errors": errors}


def _read_wrk(run: LoadRun) -> dict:
    if run.json_path.exists() and run.json_path.stat().st_size > 0:
        result = parse_wrk_json(json.loads(run.json_path.read_text()))
        result["source"] = "json_report.lua"
    else:
        # Run without the reporter script: wrk's own summary has p50/p90/p99 and max only.
        result = parse_wrk_text(run.stdout_path.read_text(errors="replace"))
        result["source"] = "wrk --latency"
    result["tool"] = "wrk"
    return result


def wrk_available() -> str | None:
    return shutil.which("wrk")


def wrk(url: str, connections: int, threads: int, duration_s: float, script: Path | None,
        work_dir: Path, name: str) -> LoadRun:
    json_path = work_dir / f"{name}.json"
    json_path.unlink(missing_ok=True)
    args = [wrk_available() or "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s",
            "--latency", "--timeout", "10s"]
    if script is not None and script.exists():
        args += ["-s", str(script)]
    args.append(url)
    env = dict(os.environ, WRK_JSON=str(json_path))
    return LoadRun("wrk", args, json_path, work_dir / f"{name}.log", _read_wrk,
                   timeout_s=duration_s + 60, env=env, stdout_path=work_dir / f"{name}.txt")
