"""--peers: the production servers that implement each model (Apache httpd with mpm_prefork and
mpm_worker, nginx), put under the same closed-loop load as echolab's servers. They come from
compare/peers/servers.py; when the servers are not installed, the report says so."""

from dataclasses import dataclass, field

from .. import loadtools, slow_clients
from ..scenarios import Bench, load_figures, throughput_summary
from . import servers as peer_servers


@dataclass
class Peers:
    """The peers this run can load: the installed ones, the echolab model each implements, and
    what the report says about the ones missing."""

    available: bool
    names: list[str] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    message: str = ""

    def to_json(self) -> dict:
        return {"available": self.available, "names": self.names, "models": self.models,
                "message": self.message}


def discover() -> Peers:
    names = peer_servers.available()
    if not names:
        return Peers(False, message="peers unavailable: neither apache2 nor nginx is installed "
                                    "(`scripts/install-deps.sh --peers` installs them)")
    missing = [name for name in peer_servers.PEERS if name not in names]
    message = ("" if not missing else
               f"not installed here: {', '.join(missing)} (install with `scripts/install-deps.sh --peers`)")
    return Peers(True, names, {name: peer_servers.PEERS[name] for name in names}, message)


def steps(peers: Peers, bench_plan) -> int:
    per_level = 2 + (1 if loadtools.wrk_available() else 0)
    slow = len(peers.names) * len(slow_clients.ATTACKS)
    return len(peers.names) * len(bench_plan.concurrency) * per_level * bench_plan.repetitions + slow


def run_peers(bench: Bench, peers: Peers, rep: int) -> None:
    """The closed-loop matrix against every available peer, recorded as scenario "peers"."""
    plan = bench.plan
    for name in peers.names:
        peer = peer_servers.Peer(name)
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
                              lambda: throughput_summary(load_figures(run(plan.warmup_s, "peer-warmup"))))

                def measure_load() -> str:
                    figures = load_figures(run(plan.duration_s, "peer-closed"))
                    bench.recorder.add("peers", ("echolab-load", connections), name, figures)
                    return throughput_summary(figures)

                bench.attempt(rep, f"peer c={connections} echolab-load", name, measure_load)
                if loadtools.wrk_available():
                    def measure_wrk() -> str:
                        result = loadtools.wrk(peer.url(), connections, plan.load_threads, plan.duration_s,
                                               bench.wrk_script, bench.work_dir,
                                               bench.run_name("peer-wrk", name, connections, rep)).result()
                        figures = load_figures(result)
                        bench.recorder.add("peers", ("wrk", connections), name, figures)
                        return throughput_summary(figures)

                    bench.attempt(rep, f"peer c={connections} wrk", name, measure_wrk)
        finally:
            peer.stop()
