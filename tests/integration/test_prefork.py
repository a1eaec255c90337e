"""What sets the prefork server apart: a master and its children, each child one connection.

The behaviour every server shares (curl, raw echo, pipelining, HTTP/1.0, ab, wrk, 1,000
keep-alive connections, bad input mid-load, idle timeout, graceful shutdown) is checked for
prefork too in test_servers.py. Each test starts the server it needs and stops it after."""

import os
import re
import select
import signal
import socket
import subprocess
import time

import pytest

from harness import (GREETING, LOOPBACK, Server, children, eventually, group_processes, recv_http_response,
                     run, spawned_children)
from scraping import scrape, wait_until_read

# A small pool, so that the numbers these tests check are exact.
SMALL = ("--start-servers", "2", "--min-spare", "2", "--max-spare", "5")


def served(conn: socket.socket) -> bool:
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return recv_http_response(conn).endswith(GREETING)


def workers(server: Server, state: str) -> float:
    return scrape(server).value("echolab_workers", model="prefork", state=state)


def count_events(server: Server, pattern: str) -> int:
    return len(re.findall(pattern, server.log()))


def tcp_socket_links(links: list[str]) -> list[str]:
    """The links among `links` (from /proc/<pid>/fd) that are TCP sockets."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            inodes |= {line.split()[9] for line in lines.readlines()[1:]}
    return [link for link in links if link.startswith("socket:[") and link[8:-1] in inodes]


def serving_child(server: Server, conn: socket.socket) -> int:
    """The child holding the server side of `conn`: its socket inode, found in /proc/net/tcp
    by the two ports, in that child's descriptors."""
    client_port = conn.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local_port, remote_port = (int(address.split(":")[1], 16) for address in fields[1:3])
            if local_port == server.port and remote_port == client_port:
                inode = fields[9]
    assert inode, "the server side of the connection is not in /proc/net/tcp"
    for pid in children(server):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except FileNotFoundError:
            continue
        if f"socket:[{inode}]" in links:
            return pid
    raise AssertionError("no child holds the connection")


def sleeping_child(server: Server, conn: socket.socket) -> bool:
    """True once a child holds `conn` and sleeps in its /sleep: the request was read."""
    try:
        child = serving_child(server, conn)
        with open(f"/proc/{child}/wchan") as wchan:
            return "nanosleep" in wchan.read()
    except (AssertionError, FileNotFoundError):
        return False


def test_sigusr1_retires_a_child_after_its_connection_and_sigterm_closes_it_when_idle():
    """The master retires spares with SIGUSR1 (graceful) and stops children with SIGTERM."""
    with Server("prefork", *SMALL) as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=5) as retiring:
            assert served(retiring)
            child = serving_child(server, retiring)
            os.kill(child, signal.SIGUSR1)
            time.sleep(0.2)
            assert served(retiring) and served(retiring)  # still served to its end
            assert child in children(server)
        assert eventually(lambda: child in children(server), lambda alive: not alive) is False

        with socket.create_connection((LOOPBACK, server.port), timeout=5) as stopping:
            assert served(stopping)
            child = serving_child(server, stopping)
            os.kill(child, signal.SIGTERM)
            assert stopping.recv(1) == b""  # idle between requests: closed at once
        assert eventually(lambda: child in children(server), lambda alive: not alive) is False
        # Both exits were asked for: neither is a crash.
        assert scrape(server).value("echolab_worker_crashes_total", model="prefork") == 0


def test_the_master_runs_alone_and_never_holds_a_client_connection():
    with Server("prefork", *SMALL) as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=5) as conn:
            assert served(conn)
            master_fds = os.listdir(f"/proc/{server.process.pid}/fd")
            sockets = [os.readlink(f"/proc/{server.process.pid}/fd/{fd}") for fd in master_fds]
            # Only the listening socket: connections are accepted by the children. (The other
            # socket is the spawner's control socket, a Unix one.)
            assert len(tcp_socket_links(sockets)) == 1, sockets
        with open(f"/proc/{server.process.pid}/status") as status:
            assert "Threads:\t1\n" in status.read()  # a master that forks has no threads


def test_max_connections_is_the_worker_cap_and_the_rest_wait_in_the_backlog():
    with Server("prefork", "--max-connections", "2", "--start-servers", "1", "--min-spare", "1",
                "--max-spare", "2") as server:
        first = socket.create_connection((LOOPBACK, server.port), timeout=5)
        second = socket.create_connection((LOOPBACK, server.port), timeout=5)
        assert served(first) and served(second)
        waiting = socket.create_connection((LOOPBACK, server.port), timeout=5)
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        waiting.settimeout(0.7)
        with pytest.raises(socket.timeout):
            waiting.recv(1)  # neither refused nor answered: queued until a child is free
        assert len(children(server)) == 4  # two workers, the metrics process, the spawner
        first.close()
        waiting.settimeout(5)
        assert recv_http_response(waiting).endswith(GREETING)
        second.close()
        waiting.close()
        server.wait_for_log("event=limit_reached limit=max-workers")
        assert scrape(server).value("echolab_connections_rejected_total", model="prefork") == 0


def test_a_crash_takes_down_one_child_and_its_connection_only():
    with Server("prefork", "--fault-injection", "--start-servers", "25", "--min-spare", "5") as server:
        clients = [socket.create_connection((LOOPBACK, server.port), timeout=5) for _ in range(20)]
        try:
            for conn in clients:
                assert served(conn)
            before = children(server)
            clients[0].sendall(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                assert clients[0].recv(1) == b""
            except ConnectionResetError:
                pass
            for _ in range(3):  # the other 19 keep their connections and their children
                for conn in clients[1:]:
                    assert served(conn)
            assert server.alive()
            metrics = eventually(lambda: scrape(server), lambda m: m.value(
                "echolab_worker_crashes_total", model="prefork") == 1)
            assert metrics.value("echolab_worker_crashes_total", model="prefork") == 1
            assert metrics.value("echolab_connections_lost_total", model="prefork") == 1
            log = server.log()
            assert re.search(r"event=worker_crashed worker_pid=\d+ signal=SEGV connection_lost=true",
                             log), log
            assert "reason=replace" in log  # the master forked a child in its place
            after = eventually(lambda: children(server), lambda now: len(now) == len(before))
            assert len(after) == len(before) and after != before
        finally:
            for conn in clients:
                conn.close()


def test_idle_children_fall_back_to_max_spare_after_a_burst():
    with Server("prefork", *SMALL) as server:
        burst = [socket.create_connection((LOOPBACK, server.port), timeout=20) for _ in range(200)]
        for conn in burst:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for conn in burst:
            assert recv_http_response(conn).endswith(GREETING)
        assert workers(server, "busy") == 200  # one process per open connection
        for conn in burst:
            conn.close()
        idle = eventually(lambda: workers(server, "idle"), lambda value: value == 5, timeout=10)
        assert idle == 5
        # Five spares, the metrics process and the spawner.
        assert eventually(lambda: len(children(server)), lambda n: n == 7, timeout=5) == 7
        server.wait_for_log("event=workers_retired")


def test_a_child_is_recycled_after_max_connections_per_child():
    with Server("prefork", *SMALL, "--max-connections-per-child", "1") as server:
        spawned_before = spawned_children(server)
        for _ in range(10):
            with socket.create_connection((LOOPBACK, server.port), timeout=5) as conn:
                assert served(conn) and served(conn)  # keep-alive: still one connection
        recycled = eventually(lambda: count_events(server, r"event=worker_exited \S+ reason=recycled"),
                              lambda n: n == 10)
        assert recycled == 10
        replaced = eventually(lambda: spawned_children(server) - spawned_before, lambda n: n >= 10)
        assert replaced >= 10  # each recycled child was replaced by a new one
        metrics = scrape(server)
        assert metrics.value("echolab_connections_accepted_total", model="prefork") == 10
        assert metrics.value("echolab_requests_total", model="prefork", protocol="http") == 20


def test_no_zombie_stays_and_nothing_is_left_after_stop():
    with Server("prefork", *SMALL, "--fault-injection", "--max-connections-per-child", "2") as server:
        got = run("ab", "-q", "-n", "400", "-c", "20", server.url("/"), timeout=60)
        assert re.search(r"Failed requests:\s+0", got.stdout), got.stdout
        for _ in range(3):
            with socket.create_connection((LOOPBACK, server.port), timeout=5) as conn:
                conn.sendall(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    conn.recv(1)
                except ConnectionResetError:
                    pass
        zombies = eventually(lambda: [pid for pid, state in group_processes(server).items()
                                      if state == "Z"], lambda found: not found, timeout=3)
        assert not zombies
        assert server.terminate() == 0
        assert group_processes(server) == {}


def test_graceful_shutdown_under_load_finishes_the_request_in_flight():
    with Server("prefork", "--fault-injection") as server:
        load = subprocess.Popen(["wrk", "-t2", "-c50", "-d3s", server.url("/")],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(0.5)
            with socket.create_connection((LOOPBACK, server.port), timeout=30) as slow:
                slow.sendall(b"GET /sleep?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n")
                # wrk's traffic hides this request in the counters: its child is watched instead.
                assert eventually(lambda: sleeping_child(server, slow), bool, timeout=30)
                server.process.send_signal(signal.SIGTERM)
                reply = recv_http_response(slow)
                assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(GREETING)
                assert slow.recv(1) == b""  # then closed at its idle point
            assert server.process.wait(timeout=30) == 0  # only "it hung"
        finally:
            load.wait(timeout=30)
        assert group_processes(server) == {}
        assert "event=shutdown phase=done" in server.log()


def refused_or_answered(port: int, hung: float) -> str:
    """A new client during the drain: "refused" at connect, else "answered" (or "closed": a
    reset in the instant the port stops listening, or a child taking the queue that closed a
    connection whose request it had not yet received, seen on a loaded machine). A client left
    waiting for the deadline raises socket.timeout after `hung` seconds."""
    try:
        conn = socket.create_connection((LOOPBACK, port), timeout=hung)
    except ConnectionRefusedError:
        return "refused"
    with conn:
        reply = b""
        try:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            while not reply.endswith(GREETING):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, BrokenPipeError):
            return "closed"
        return "answered" if reply.endswith(GREETING) else "closed"


def test_the_port_refuses_new_connections_while_a_busy_child_drains():
    """Every child lets go of the listening socket as the drain starts, the busy one too: a
    new client is refused (or answered by a child still taking the queue), never left to wait
    for the busy child or the deadline's reset."""
    sleep_s = 60  # the busy child's request outlasts any stall of the machine
    with Server("prefork", *SMALL, "--fault-injection", "--shutdown-timeout", f"{sleep_s + 30}s") as server:
        request = f"GET /sleep?ms={sleep_s * 1000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        with socket.create_connection((LOOPBACK, server.port), timeout=5) as busy:
            busy.sendall(request)
            wait_until_read(server, len(request))
            server.process.send_signal(signal.SIGTERM)
            server.wait_for_log("phase=draining")
            outcomes = []
            while "refused" not in outcomes and len(outcomes) < 200:
                outcomes.append(refused_or_answered(server.port, hung=15))
                time.sleep(0.05)
            assert outcomes[-1] == "refused", outcomes
            assert not select.select([busy], [], [], 0)[0], "the busy child's request was cut"
            server.process.send_signal(signal.SIGTERM)  # a second one skips the wait
            assert server.process.wait(timeout=30) == 0
        assert re.search(r"event=shutdown phase=done \S+ killed=1", server.log()), server.log()


def test_shutdown_timeout_kills_what_is_still_running_and_exits_0():
    with Server("prefork", *SMALL, "--fault-injection", "--shutdown-timeout", "1s") as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=10) as stuck:
            request = b"GET /sleep?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n"  # outlasts any stall
            stuck.sendall(request)
            wait_until_read(server, len(request))
            started = time.monotonic()
            assert server.terminate(timeout=30) == 0  # only "it hung": far inside the sleep
            assert time.monotonic() - started > 0.9  # not before the deadline
            assert stuck.recv(1) == b""  # killed in its sleep, unanswered
        assert group_processes(server) == {}
        assert re.search(r"event=shutdown phase=done \S+ killed=1", server.log()), server.log()


def test_children_and_metrics_process_follow_a_master_killed_outright():
    with Server("prefork", *SMALL) as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=5) as conn:
            assert served(conn)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=5)
            # The held connection is closed at its idle point: the stop pipe has no writer left.
            assert conn.recv(1) == b""
        left = eventually(lambda: {pid for pid, state in group_processes(server).items()
                                   if state != "Z"}, lambda found: not found, timeout=5)
        assert not left


def test_a_thousand_children_at_start_all_report_ready():
    with Server("prefork", "--start-servers", "1000", "--min-spare", "10",
                "--max-spare", "1000") as server:
        # A child marks itself idle at once; the master records its spawn time at its next
        # tick, so the two figures agree only eventually.
        metrics = eventually(lambda: scrape(server), lambda m: m.value(
            "echolab_workers", model="prefork", state="idle") == 1000 and m.value(
                "echolab_worker_spawn_seconds_count", model="prefork") >= 1000, timeout=30)
        assert metrics.value("echolab_workers", model="prefork", state="idle") == 1000
        assert metrics.value("echolab_worker_spawn_seconds_count", model="prefork") >= 1000
        assert metrics.value("echolab_processes", model="prefork") == 1002


def test_max_workers_beyond_the_kernel_limits_is_capped_with_a_warning():
    with Server("prefork", "--max-workers", "1000000", "--max-connections", "1000000",
                *SMALL) as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=5) as conn:
            assert served(conn)
        warning = re.search(r"event=limit_warning problem=\"--max-workers 1000000 capped to (\d+): "
                            r"kernel\.(pid_max|threads-max)", server.log())
        assert warning, server.log()
        with open("/proc/sys/kernel/pid_max") as pid_max:
            assert int(warning.group(1)) < int(pid_max.read())


@pytest.mark.parametrize("flags, named", [
    (("--min-spare", "10", "--max-spare", "5"), "--min-spare"),
    (("--start-servers", "20", "--max-workers", "10", "--min-spare", "1", "--max-spare", "2"),
     "--start-servers"),
    (("--max-workers", "0"), "--max-workers"),
])
def test_inconsistent_process_flags_are_named_with_exit_2(flags, named):
    got = run(*Server("prefork", *flags, metrics=False).args)
    assert got.returncode == 2
    assert named in got.stderr and len(got.stderr.strip().splitlines()) == 1


def test_a_metrics_port_in_use_fails_the_start_with_exit_1():
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        server = Server("prefork", *SMALL, metrics=False)
        got = run(*server.args, "--metrics-listen", f"{LOOPBACK}:{taken.getsockname()[1]}",
                  timeout=20)
    assert got.returncode == 1
    assert "event=metrics_failed" in got.stderr and "Address already in use" in got.stderr
    assert "event=fatal" in got.stderr


def anonymous_page_frames(pid: int) -> set[int]:
    """The physical page frames of `pid`'s anonymous pages (private mappings with anonymous
    memory), from /proc/<pid>/pagemap; empty when the frames are hidden (no CAP_SYS_ADMIN)."""
    ranges = []
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                start, end = (int(bound, 16) for bound in fields[0].split("-"))
                private = fields[1].endswith("p")
            elif fields[0] == "Anonymous:" and int(fields[1]) > 0 and private:
                ranges.append((start, end))
    frames = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for start, end in ranges:
            pagemap.seek(start // 4096 * 8)
            data = pagemap.read((end - start) // 4096 * 8)
            for offset in range(0, len(data), 8):
                entry = int.from_bytes(data[offset:offset + 8], "little")
                if entry >> 63 and entry & ((1 << 55) - 1):  # present, with a frame number
                    frames.add(entry & ((1 << 55) - 1))
    return frames


def is_zero_page(frame: int) -> bool:
    """The kernel's zero page, which every process maps where it read memory never written."""
    with open("/proc/kpageflags", "rb") as flags:
        flags.seek(frame * 8)
        return bool(int.from_bytes(flags.read(8), "little") >> 24 & 1)  # KPF_ZERO_PAGE


def test_a_child_maps_no_anonymous_page_of_the_master():
    # Every anonymous page the master had at fork time would be reachable from every child,
    # and the kernel's reverse-map walks of it (reclaim, DAMON) would visit every child: the
    # children come from the exec'd spawner instead, which shares nothing with the master.
    with Server("prefork", *SMALL) as server:
        with socket.create_connection((LOOPBACK, server.port), timeout=5) as conn:
            assert served(conn)
            master = anonymous_page_frames(server.process.pid)
            if not master:
                pytest.skip("page frame numbers need CAP_SYS_ADMIN")
            child = serving_child(server, conn)
            shared = {frame for frame in master & anonymous_page_frames(child)
                      if not is_zero_page(frame)}
            assert not shared, f"{len(shared)} anonymous pages of the master mapped by a child"


def spawner_of(server: Server) -> int:
    """The spawner, by its name: the children it forks share its command line."""
    for pid in children(server):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == "echolab-spawner":
                    return pid
        except FileNotFoundError:
            continue
    raise AssertionError("no spawner among the master's children")


def test_a_spawner_killed_outright_is_replaced_and_children_still_come():
    with Server("prefork", *SMALL) as server:
        first = spawner_of(server)
        os.kill(first, signal.SIGKILL)
        server.wait_for_log("event=spawner_exited")
        # More connections than spares: the master must fork again, through a new spawner.
        conns = [socket.create_connection((LOOPBACK, server.port), timeout=10) for _ in range(6)]
        try:
            for conn in conns:
                assert served(conn)
            assert spawner_of(server) != first
        finally:
            for conn in conns:
                conn.close()
