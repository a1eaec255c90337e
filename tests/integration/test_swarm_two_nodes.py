"""The swarm stack over two Docker engines of this machine: the servers on this engine's node,
the echolab-load replicas on a second dockerd that the test runs in a network namespace of its
own, joined to the swarm over a veth pair. The load crosses the overlay network (VXLAN) between
the two nodes, as it would between two machines.

The namespace, its addresses (10.231.0.1 and .2, on the veth pair only), the second engine and
its files are the test's, and removed afterwards whatever happens; it skips where the engine is
already in a swarm, or where namespaces cannot be made."""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import MODELS, SOURCE_DIR
from docker_stack import checked, choose_published_ports, docker, script, swarm_state

STACK = "echolabtest2n"
NAMESPACE = "echolabtest-n2"
HOST_ADDRESS, NODE2_ADDRESS = "10.231.0.1", "10.231.0.2"
HOST_VETH, NODE2_VETH = "echolabt-v0", "echolabt-v1"


def run(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert done.returncode == 0, f"{args}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def second_engine(engine):
    """A dockerd in a network namespace of its own, reached over a veth pair; yields its socket."""
    if not shutil.which("ip") or swarm_state() != "inactive":
        pytest.skip("needs iproute2 and an engine in no swarm")
    files = Path(tempfile.mkdtemp(prefix="echolab-n2-"))
    socket_path = files / "docker.sock"
    dockerd = None
    try:
        run("ip", "netns", "add", NAMESPACE)
        run("ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", NODE2_VETH)
        run("ip", "link", "set", NODE2_VETH, "netns", NAMESPACE)
        run("ip", "addr", "add", f"{HOST_ADDRESS}/30", "dev", HOST_VETH)
        run("ip", "link", "set", HOST_VETH, "up")
        for command in (["ip", "addr", "add", f"{NODE2_ADDRESS}/30", "dev", NODE2_VETH],
                        ["ip", "link", "set", NODE2_VETH, "up"], ["ip", "link", "set", "lo", "up"]):
            run("ip", "netns", "exec", NAMESPACE, *command)
        # nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroups dockerd needs.
        log = open(files / "dockerd.log", "w")
        dockerd = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{NAMESPACE}", "dockerd", "--data-root",
             str(files / "data"), "--exec-root", str(files / "exec"), "--pidfile",
             str(files / "dockerd.pid"), "-H", f"unix://{socket_path}", "--iptables=false",
             "--ip-masq=false", "--bridge=none"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while run("docker", "-H", f"unix://{socket_path}", "version", check=False).returncode:
            assert dockerd.poll() is None and time.monotonic() < deadline, \
                (files / "dockerd.log").read_text()[-2000:]
            time.sleep(0.5)
        yield f"unix://{socket_path}"
    finally:
        if dockerd is not None:
            run("docker", "-H", f"unix://{socket_path}", "swarm", "leave", "--force", check=False)
            dockerd.terminate()
            try:
                dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                dockerd.kill()
                dockerd.wait(timeout=10)
        run("ip", "netns", "del", NAMESPACE, check=False)
        run("ip", "link", "del", HOST_VETH, check=False)
        shutil.rmtree(files, ignore_errors=True)


@pytest.fixture(scope="module")
def two_node_swarm(second_engine):
    had_gateway_bridge = bool(docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$").split())
    docker("swarm", "init", "--advertise-addr", HOST_ADDRESS)
    try:
        token = docker("swarm", "join-token", "-q", "worker").strip()
        run("docker", "-H", second_engine, "swarm", "join", "--token", token, "--advertise-addr",
            NODE2_ADDRESS, f"{HOST_ADDRESS}:2377", timeout=120)
        manager = docker("node", "ls", "-q", "--filter", "role=manager").strip()
        [worker] = docker("node", "ls", "-q", "--filter", "role=worker").split()
        docker("node", "update", "--label-add", "echolab.role.server=true", manager)
        docker("node", "update", "--label-add", "echolab.role.load=true", worker)
        # No registry in between: the load node gets the image from this engine.
        save = subprocess.Popen(["docker", "save", "echolab:latest"], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "-H", second_engine, "load"], stdin=save.stdout,
                              capture_output=True, timeout=300, check=False)
        save.wait(timeout=60)
        assert load.returncode == 0, load.stderr
        yield manager, worker
    finally:
        subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, timeout=120,
                       check=False)
        if not had_gateway_bridge:
            subprocess.run(["docker", "network", "rm", "docker_gwbridge"], capture_output=True,
                           timeout=60, check=False)


def test_load_replicas_on_the_second_node_load_the_servers_on_the_first(two_node_swarm, tmp_path):
    manager, worker = two_node_swarm
    env = dict(os.environ, ECHOLAB_STACK=STACK, ECHOLAB_KEEP_ENGINE="1")
    choose_published_ports(env)
    try:
        checked(script("swarm-up.sh", env=env, timeout=1500))
        for model in MODELS:
            assert docker("inspect", "--format", "{{.NodeID}}",
                          docker("service", "ps", "-q", f"{STACK}_{model}").split()[0]).strip() == manager
        # Every task must be running by the common start time: beside three other test files
        # one started 11 s after the time was chosen, and 6 s left it behind ("has passed").
        load_env = dict(env, LOAD_REPLICAS="2", LOAD_CONNECTIONS="8", LOAD_THREADS="1",
                        LOAD_DURATION="3s", LOAD_START_DELAY="30", LOAD_RESULTS=str(tmp_path))
        # Every load task on the second node, seen while the service still exists.
        loading = subprocess.Popen([str(SOURCE_DIR / "scripts" / "swarm-load.sh")], env=load_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        nodes = set()
        deadline = time.monotonic() + 30
        while len(nodes) < 2 and time.monotonic() < deadline and loading.poll() is None:
            tasks = run("docker", "service", "ps", "-q", f"{STACK}_echolab-load", check=False)
            nodes = {(task, docker("inspect", "--format", "{{.NodeID}}", task).strip())
                     for task in tasks.stdout.split()}
            time.sleep(0.5)
        stdout, stderr = loading.communicate(timeout=120)
        assert loading.returncode == 0, stderr
        assert {node for _, node in nodes} == {worker}, nodes
        shards = [json.loads((tmp_path / f"shard-{i}.json").read_text()) for i in (1, 2)]
        merged = json.loads((tmp_path / "merged.json").read_text())
        assert all(s["requests"] > 0 and s["errors"]["total"] == 0 for s in shards), shards
        assert merged["requests"] == sum(s["requests"] for s in shards)
    finally:
        checked(script("swarm-down.sh", env=env, timeout=180))
    assert not docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}").split()
