"""Memory isolation, per model: what one compromised request handler can read of the other
clients' requests (GET /leak, memory disclosure) and whose answers it can spoil by overwriting
memory its process shares (GET /corrupt, heap corruption). Both routes exist only with
--fault-injection (docs/protocol.md). Each experiment runs on servers of its own, because a
corrupted server stays corrupted.

Which process served which client is read from the kernel (/proc/net/tcp and each server
process's descriptors), so the figures can tell the leaking or corrupting process's own clients
from the others'."""

import os
import re
import secrets
import socket
import time
from pathlib import Path

from .figures import Recorder
from .processes import group_processes
from .servers import LOOPBACK, MODELS, Server

HYBRID_WORKERS = 2  # so that a worker's share is a part of the clients, not all of them
CORRUPTED_GREETING = b"Heap smashed!"
GREETING = b"Hello, World!"
EXCHANGE_TIMEOUT_S = 30.0  # "it hung": a scan of a whole process takes well under a second


def server_flags(model: str) -> list[str]:
    return ["--fault-injection", *(["--workers", str(HYBRID_WORKERS)] if model == "hybrid" else [])]


# -- which process serves a connection ---------------------------------------------------------

def group_pids(pgid: int) -> set[int]:
    """The live (not zombie) processes of the server's group."""
    return {pid for pid, fields in group_processes(pgid) if fields[0] != "Z"}


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:  # the process exited while it was read
        pass
    return inodes


def server_side_inodes(server_port: int) -> dict[int, int]:
    """client port -> inode of the server's end of each established loopback connection to it."""
    inodes = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        if state == "01" and int(local.split(":")[1], 16) == server_port:
            inodes[int(remote.split(":")[1], 16)] = inode
    return inodes


def serving_pids(server_port: int, pgid: int, clients: list[socket.socket]) -> list[int | None]:
    """The pid of the server process that holds each client's connection (None if none does)."""
    by_client_port = server_side_inodes(server_port)
    holder = {inode: pid for pid in group_pids(pgid) for inode in socket_inodes(pid)}
    return [holder.get(by_client_port.get(client.getsockname()[1])) for client in clients]


# -- HTTP on a kept connection -----------------------------------------------------------------

def get(conn: socket.socket, target: str, headers: str = "") -> tuple[bytes, bytes]:
    """One keep-alive GET: (status line, body)."""
    conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {LOOPBACK}\r\n{headers}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the answer to {target}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed inside the answer to {target}")
        body += chunk
    return head.split(b"\r\n", 1)[0], body


def connect(port: int) -> socket.socket:
    return socket.create_connection((LOOPBACK, port), timeout=EXCHANGE_TIMEOUT_S)


def parse_leak(body: bytes) -> tuple[int, set[str], str | None]:
    """The /leak answer: the scanning process's pid, the tokens it found, why it stopped early."""
    text = body.decode(errors="replace")
    pid = int(re.search(r"^pid (\d+)$", text, re.M).group(1))
    stopped = re.search(r"^stopped (.+)$", text, re.M)
    return pid, set(re.findall(r"^token (\S+)$", text, re.M)), stopped.group(1) if stopped else None


# -- memory disclosure -------------------------------------------------------------------------

def disclosure_once(port: int, pgid: int, live: int, closed: int) -> dict:
    """`live` + `closed` clients each send one request carrying a canary of their own and are
    answered; the `closed` ones then close (their buffers freed), the `live` ones stay. One more
    client asks /leak: how many of those canaries the process that serves it can read, and of
    how many clients that process served itself (a process can always read its own)."""
    prefix = "echolab" + secrets.token_hex(6)
    canaries = [f"{prefix}c{i:03d}{secrets.token_hex(8)}" for i in range(live + closed)]
    clients = [connect(port) for _ in canaries]
    try:
        for conn, canary in zip(clients, canaries):
            status, _ = get(conn, f"/?canary={canary}", f"X-Canary: {canary}\r\n")
            if not status.endswith(b"200 OK"):
                raise RuntimeError(f"a canary request was answered {status!r}")
        holders = serving_pids(port, pgid, clients)
        for conn in clients[live:]:
            conn.close()
        time.sleep(0.2)  # lets the server see the closes (no figure depends on it)
        with connect(port) as leaker:
            status, body = get(leaker, f"/leak?prefix={prefix}")
        if not status.endswith(b"200 OK"):
            raise RuntimeError(f"/leak was answered {status!r}")
    finally:
        for conn in clients[:live]:
            conn.close()
    scanner, found, stopped = parse_leak(body)
    return disclosure_figures(scanner, found, stopped, canaries, holders, live)


def disclosure_figures(scanner: int, found: set[str], stopped: str | None, canaries: list[str],
                       holders: list[int | None], live: int) -> dict:
    figures = {"clients_live": live, "clients_closed": len(canaries) - live,
               "scan_stopped_early": 1 if stopped else 0}
    for state, picked in (("live", range(live)), ("closed", range(live, len(canaries)))):
        own = [i for i in picked if holders[i] == scanner]
        other = [i for i in picked if holders[i] != scanner]
        figures[f"{state}_own_process"] = len(own)
        figures[f"{state}_found_own_process"] = sum(canaries[i] in found for i in own)
        figures[f"{state}_other_processes"] = len(other)
        figures[f"{state}_found_other_processes"] = sum(canaries[i] in found for i in other)
    return figures


# -- heap corruption ---------------------------------------------------------------------------

def corruption_once(port: int, pgid: int, clients_wanted: int) -> dict:
    """`clients_wanted` clients connect and are answered once; one more asks /corrupt; then each
    of the first asks again: how many answers are corrupted, intact or missing, among the
    clients of the corrupting process and of the others, and whether that process survived."""
    clients = [connect(port) for _ in range(clients_wanted)]
    try:
        for conn in clients:
            if get(conn, "/")[1] != GREETING:
                raise RuntimeError("a server answered a wrong greeting before any corruption")
        with connect(port) as corrupter:
            status, _ = get(corrupter, "/corrupt")
            if not status.endswith(b"200 OK"):
                raise RuntimeError(f"/corrupt was answered {status!r}")
            corrupting = serving_pids(port, pgid, [corrupter])[0]  # answered, so accepted
            holders = serving_pids(port, pgid, clients)
            answers = [second_answer(conn) for conn in clients]
            survived = corrupting in group_pids(pgid)
    finally:
        for conn in clients:
            conn.close()
    return corruption_figures(answers, holders, corrupting, survived)


def second_answer(conn: socket.socket) -> bytes | None:
    try:
        return get(conn, "/")[1]
    except (OSError, ConnectionError):
        return None


def corruption_figures(answers: list[bytes | None], holders: list[int | None], corrupting: int | None,
                       survived: bool) -> dict:
    figures = {"clients": len(answers), "process_survived": 1 if survived else 0}
    for group, picked in (("own_process", [h == corrupting for h in holders]),
                          ("other_processes", [h != corrupting for h in holders])):
        mine = [a for a, p in zip(answers, picked) if p]
        figures[f"clients_{group}"] = len(mine)
        figures[f"corrupted_{group}"] = sum(a == CORRUPTED_GREETING for a in mine)
        figures[f"intact_{group}"] = sum(a == GREETING for a in mine)
        figures[f"no_answer_{group}"] = sum(a is None for a in mine)
    return figures


# -- in make compare ---------------------------------------------------------------------------

def plan_sizes(quick: bool) -> tuple[int, int, int]:
    """(live, closed) disclosure clients and corruption clients."""
    return (4, 2, 6) if quick else (16, 8, 24)


STEPS = 2 * len(MODELS)  # progress lines: both experiments, once per model


def run(bench, rep: int) -> None:
    """Both experiments, each model on fresh servers of its own (a corrupted server stays so).
    Once per comparison: the figures are counts of canaries and answers, with no noise to
    spread over repetitions."""
    live, closed, corrupt_clients = plan_sizes(bench.plan.quick)
    for model in MODELS:
        for scenario, label, measure in (
                ("disclosure", "memory disclosure (GET /leak)", lambda port, pgid: disclosure_once(port, pgid, live, closed)),
                ("corruption", "heap corruption (GET /corrupt)", lambda port, pgid: corruption_once(port, pgid, corrupt_clients))):
            bench.attempt(rep, label, model, lambda: measure_on_fresh_server(bench, model, scenario, measure))


def measure_on_fresh_server(bench, model: str, scenario: str, measure) -> str:
    binary = bench.bin_dir / f"echolab-{model}"
    server = Server(f"{model}-{scenario}", model, binary, server_flags(model), bench.log_dir).start()
    try:
        figures = measure(server.port, server.process.pid)
    finally:
        bench.extra_servers[server.name] = server.command
        server.stop()
    bench.recorder.add(scenario, (), model, figures)
    return summary(scenario, figures)


def summary(scenario: str, f: dict) -> str:
    if scenario == "disclosure":
        return (f"read live/closed canaries: its own process's clients' "
                f"{f['live_found_own_process']}/{f['live_own_process']}, "
                f"{f['closed_found_own_process']}/{f['closed_own_process']}; other processes' "
                f"{f['live_found_other_processes']}/{f['live_other_processes']}, "
                f"{f['closed_found_other_processes']}/{f['closed_other_processes']}")
    return (f"corrupted {f['corrupted_own_process']}/{f['clients_own_process']} of its own process's "
            f"clients, {f['corrupted_other_processes']}/{f['clients_other_processes']} of the others'")


def share(found: float | None, total: float | None) -> str:
    return "-" if found is None or total is None else f"{found:.0f} of {total:.0f}"


def disclosure_table(recorder: Recorder) -> list[str]:
    if not any(recorder.runs("disclosure", (), m) for m in MODELS):
        return []
    lines = ["| model | live canaries read: other processes' clients | its own process's | "
             "closed connections' canaries: other processes' | its own process's |",
             "|---|---|---|---|---|"]
    for model in MODELS:
        m = lambda name: recorder.median("disclosure", (), model, name)  # noqa: E731
        lines.append(f"| {model} | {share(m('live_found_other_processes'), m('live_other_processes'))} | "
                     f"{share(m('live_found_own_process'), m('live_own_process'))} | "
                     f"{share(m('closed_found_other_processes'), m('closed_other_processes'))} | "
                     f"{share(m('closed_found_own_process'), m('closed_own_process'))} |")
    return lines


def corruption_table(recorder: Recorder) -> list[str]:
    if not any(recorder.runs("corruption", (), m) for m in MODELS):
        return []
    lines = ["| model | corrupted answers: the corrupting process's clients | other processes' clients | "
             "no answer | the corrupting process survived |", "|---|---|---|---|---|"]
    for model in MODELS:
        m = lambda name: recorder.median("corruption", (), model, name)  # noqa: E731
        missing = [m("no_answer_own_process"), m("no_answer_other_processes")]
        survived = m("process_survived")
        lines.append(f"| {model} | {share(m('corrupted_own_process'), m('clients_own_process'))} | "
                     f"{share(m('corrupted_other_processes'), m('clients_other_processes'))} | "
                     f"{'-' if None in missing else f'{sum(missing):.0f}'} | "
                     f"{'-' if survived is None else ('yes' if survived else 'no')} |")
    return lines


def section(recorder: Recorder) -> str:
    disclosure, corruption = disclosure_table(recorder), corruption_table(recorder)
    if not disclosure and not corruption:
        return "## Memory isolation\n\nNot measured.\n"
    return "\n".join([
        "## Memory isolation\n",
        "### Memory disclosure (GET /leak)\n",
        "Clients each send one request carrying a random canary; some then close (their buffers freed), "
        "the others stay open. One more client asks `GET /leak`, a compromised handler that reads every "
        "readable mapping of its own process: the canaries it finds, split by whether the client was "
        "served by the scanning process itself or by another one (hybrid runs "
        f"{HYBRID_WORKERS} workers).\n",
        *(disclosure or ["Not measured."]), "",
        "### Heap corruption (GET /corrupt)\n",
        "Clients connect and are answered once; one more sends `GET /corrupt`, which overwrites the greeting "
        "its process keeps in one heap block for every connection; then each client asks again. A corrupted "
        "answer is `Heap smashed!` instead of `Hello, World!`.\n",
        *(corruption or ["Not measured."]), ""])
