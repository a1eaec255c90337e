"""make c10k MODEL=prefork: the 10,000-connection scenario against one server.

Ramps echolab-load to --connections over --ramp, holds them all (each sends one request per
--interval), scrapes the server's /metrics during the hold, and reports what holding them
costs: memory per connection (RSS and PSS), processes, threads, context switches per second,
and the latency of the requests made during the hold. The same measurement as the hold of
`make compare`, for one model at a time. Usage:
  python3 -m compare.c10k --model threads [--connections 10000 --ramp 30 --hold 20 --interval 30] [--bin-dir build/bin]"""

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from . import machine as machine_info
from . import processes, scenarios
from .plan import FULL_HOLD, make_plan
from .servers import MODELS, Server, settings_for


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m compare.c10k", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, required=True)
    parser.add_argument("--connections", type=int, default=10_000)
    full = make_plan(False, FULL_HOLD)  # the defaults: the hold of the full `make compare`
    parser.add_argument("--ramp", type=float, default=full.ramp_s, help="seconds to open them all")
    parser.add_argument("--hold", type=float, default=full.hold_s, help="seconds to hold them")
    parser.add_argument("--interval", type=float, default=full.interval_s,
                        help="seconds between two requests of one connection")
    parser.add_argument("--bin-dir", type=Path, default=Path(__file__).resolve().parents[1] / "build" / "bin")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    processes.install_cleanup()
    machine = machine_info.inspect_machine()
    capacity = machine_info.connection_capacity(machine, args.connections)
    allowed = capacity.per_model[args.model]
    if allowed.connections < args.connections:  # refused before anything starts, never mid-run
        sys.exit(f"c10k: {args.model} can hold at most {allowed.connections:,} connections here "
                 f"({allowed.binding_limit}), not {args.connections:,}: " + "; ".join(capacity.reasons))
    plan = dataclasses.replace(make_plan(False, args.connections), repetitions=1,
                               hold_connections=args.connections, ramp_s=args.ramp,
                               hold_s=args.hold, interval_s=args.interval)
    work = Path(tempfile.mkdtemp(prefix="echolab-c10k-"))
    # Never started itself: the settings every instance the hold starts is made from.
    settings = Server(args.model, args.model, args.bin_dir / f"echolab-{args.model}",
                      settings_for(args.model, args.connections), work / "logs")
    bench = scenarios.Bench(plan, args.bin_dir, work / "raw", work / "logs", None,
                            {args.model: settings}, {}, None, total_steps=1)

    def measure() -> str:
        idle, server, prestart = bench.hold_server(args.model, args.connections)
        try:
            return scenarios.hold_once(bench, 0, args.model, server, idle, prestart)
        finally:
            server.stop()

    bench.attempt(0, f"hold {args.connections:,} connections", args.model, measure)
    runs = bench.recorder.runs("hold", (args.connections,), args.model)
    if not runs:
        print(f"c10k: failed: {'; '.join(bench.failures)} (logs in {work / 'logs'})", file=sys.stderr)
        return 1
    figures = runs[0]
    for name, value in figures.items():
        print(f"{name:28} {value:,.1f}" if isinstance(value, (int, float)) else f"{name:28} {value}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, **figures}, indent=2))
    return 1 if bench.failures or figures.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
