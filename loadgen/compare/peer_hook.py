"""--peers: the production servers that implement each model (Apache httpd with mpm_prefork and
mpm_worker, nginx), put under the same closed-loop load as echolab's servers. They come from
loadgen/peers/peers.py; when that script or the servers are missing, the report says so."""

import importlib.util
from pathlib import Path

import loadtools
from scenarios import Bench, load_figures, _throughput_summary

PEER_SCRIPT = Path(__file__).resolve().parents[1] / "peers" / "peers.py"


def load_peer_module():
    """loadgen/peers/peers.py as a module, or (None, why not)."""
    if not PEER_SCRIPT.exists():
        return None, f"peers unavailable: {PEER_SCRIPT} does not exist"
    spec = importlib.util.spec_from_file_location("echolab_peers", PEER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a broken peer script must not stop the comparison
        return None, f"peers unavailable: {PEER_SCRIPT} failed to load ({error})"
    if not all(hasattr(module, name) for name in ("available", "Peer", "PEERS")):
        return None, f"peers unavailable: {PEER_SCRIPT} lacks available(), Peer or PEERS"
    return module, None


def discover() -> dict:
    """{"available": bool, "names": [...], "models": {name: model}, "message": str}."""
    module, problem = load_peer_module()
    if module is None:
        return {"available": False, "names": [], "models": {}, "message": problem}
    names = list(module.available())
    missing = [name for name in module.PEERS if name not in names]
    message = ("" if not missing else
               f"not installed here: {', '.join(missing)} (install with `scripts/install-deps.sh --peers`)")
    if not names:
        return {"available": False, "names": [], "models": {},
                "message": "peers unavailable: neither apache2 nor nginx is installed "
                           "(`scripts/install-deps.sh --peers` installs them)"}
    return {"available": True, "names": names, "models": {n: module.PEERS[n] for n in names},
            "message": message, "module": module}


def steps(peers: dict, bench_plan) -> int:
    per_level = 2 + (1 if loadtools.wrk_available() else 0)
    slow = len(peers["names"]) * 2  # the slow-clients experiment's two attacks
    return len(peers["names"]) * len(bench_plan.concurrency) * per_level * bench_plan.repetitions + slow


def run_peers(bench: Bench, peers: dict, rep: int) -> None:
    """The closed-loop matrix against every available peer, recorded as scenario "peers"."""
    module = peers["module"]
    plan = bench.plan
    for name in peers["names"]:
        peer = module.Peer(name)
        try:
            peer.start()
        except Exception as error:  # the peer's own start-up problem, reported, not fatal
            bench.failures.append(f"peer {name} did not start: {error}")
            continue
        try:
            target = f"127.0.0.1:{peer.port}"
            path = "/" + peer.url().split("/", 3)[3]
            for connections in plan.concurrency:
                base = ["--connections", str(connections), "--threads", str(plan.load_threads), "--path", path]

                def run(duration_s: float, label: str) -> dict:
                    return loadtools.echolab_load(bench.load_binary, target, base + ["--duration", f"{duration_s:g}s"],
                                                  bench.work_dir, bench.run_name(label, name, connections, rep),
                                                  timeout_s=duration_s + 60).result()

                bench.attempt(rep, f"peer warm-up c={connections}", name,
                              lambda: _throughput_summary(load_figures(run(plan.warmup_s, "peer-warmup"))))

                def measure_load() -> str:
                    figures = load_figures(run(plan.duration_s, "peer-closed"))
                    bench.recorder.add("peers", ("echolab-load", connections), name, figures)
                    return _throughput_summary(figures)

                bench.attempt(rep, f"peer c={connections} echolab-load", name, measure_load)
                if loadtools.wrk_available():
                    def measure_wrk() -> str:
                        result = loadtools.wrk(peer.url(), connections, plan.load_threads, plan.duration_s,
                                               bench.wrk_script, bench.work_dir,
                                               bench.run_name("peer-wrk", name, connections, rep)).result()
                        figures = load_figures(result)
                        bench.recorder.add("peers", ("wrk", connections), name, figures)
                        return _throughput_summary(figures)

                    bench.attempt(rep, f"peer c={connections} wrk", name, measure_wrk)
        finally:
            peer.stop()
