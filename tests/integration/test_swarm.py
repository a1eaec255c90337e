"""The stack on a Docker swarm of one node (this machine), for real: deploy/swarm/stack.yml
deployed by scripts/swarm-up.sh, every task running with the limits of docker-compose.yml, three
echolab-load replicas whose shards merge into one result (scripts/swarm-load.sh), Prometheus
finding every task through the swarm's DNS, and scripts/swarm-down.sh leaving nothing behind.

The test initialises the swarm (advertised on 127.0.0.1) only where the engine is in none, and
leaves it afterwards whatever happens; in a swarm it did not make, it skips rather than label
someone else's nodes. All traffic goes to 127.0.0.1 and to the stack's own overlay network."""

import json
import os
import re
import subprocess
import time

import pytest

from dashboard_queries import active_targets
from docker_stack import (STACK_FILE, SERVER_PORTS, checked, choose_published_ports, docker, inspect, script,
                          swarm_state, wait_for_published_port)
from harness import LOOPBACK, MODELS, SOURCE_DIR

STACK = "echolabtest"
SERVICES = (*MODELS, "prometheus")
REPLICAS = 3


def stack_objects(kind: str) -> list[str]:
    """IDs of the stack's containers, services, networks or configs still present."""
    listing = {"container": ["ps", "-aq"], "service": ["service", "ls", "-q"],
               "network": ["network", "ls", "-q"], "config": ["config", "ls", "-q"]}[kind]
    return docker(*listing, "--filter", f"label=com.docker.stack.namespace={STACK}").split()


# --- without an engine ---------------------------------------------------------------------

def test_stack_file_keeps_the_compose_images_limits_and_defaults():
    """One source of truth in practice: the stack's servers use docker-compose.yml's image,
    limit variables and defaults, and neither the routing mesh nor a virtual IP."""
    import yaml  # python3-yaml, a dependency of docker-compose
    compose = (SOURCE_DIR / "docker-compose.yml").read_text()
    stack_text = STACK_FILE.read_text()
    for variable in ("ECHOLAB_CPUS", "ECHOLAB_MEMORY", "ECHOLAB_NOFILE", "ECHOLAB_SOMAXCONN"):
        defaults = {match for text in (compose, stack_text)
                    for match in re.findall(r"\$\{" + variable + r":-([^}]*)\}", text)}
        assert len(defaults) == 1, (variable, defaults)
    stack = yaml.safe_load(stack_text)
    for model, (port, metrics_port) in SERVER_PORTS.items():
        service = stack["services"][model]
        assert service["image"] == "echolab:latest" and service["init"] is True
        assert service["command"][0] == f"echolab-{model}"
        assert service["deploy"]["endpoint_mode"] == "dnsrr"
        assert service["deploy"]["placement"]["constraints"] == [
            "node.labels.echolab.role.server == true"]
        assert {p["target"] for p in service["ports"]} == {port, metrics_port}
        assert all(p["mode"] == "host" for p in service["ports"])
    load = stack["services"]["echolab-load"]
    assert load["deploy"]["placement"]["constraints"] == ["node.labels.echolab.role.load == true"]
    assert load["environment"]["SLOT"] == "{{.Task.Slot}}"
    assert all(s["deploy"]["endpoint_mode"] == "dnsrr" for s in stack["services"].values())


# --- on a one-node swarm -------------------------------------------------------------------

@pytest.fixture(scope="module")
def swarm(engine):
    state = swarm_state()
    if state == "active":
        pytest.skip("this engine is already in a swarm; the test only runs in one it makes")
    assert state == "inactive", state
    had_gateway_bridge = bool(docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$").split())
    docker("swarm", "init", "--advertise-addr", LOOPBACK)
    try:
        node = docker("node", "ls", "-q").strip()
        docker("node", "update", "--label-add", "echolab.role.server=true",
               "--label-add", "echolab.role.load=true", node)
        yield
    finally:
        subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, timeout=120,
                       check=False)
        if not had_gateway_bridge:  # made by `swarm init` for the overlay networks' egress
            subprocess.run(["docker", "network", "rm", "docker_gwbridge"], capture_output=True,
                           timeout=60, check=False)


@pytest.fixture(scope="module")
def stack(swarm):
    env = dict(os.environ, ECHOLAB_STACK=STACK, ECHOLAB_KEEP_ENGINE="1")
    ports = choose_published_ports(env)
    try:
        began = time.monotonic()
        up = checked(script("swarm-up.sh", env=env, timeout=1500))
        print(f"swarm-up (build + deploy + every task running): {time.monotonic() - began:.1f} s")
        print(up)
        for model in MODELS:
            wait_for_published_port(ports[model])
        yield env, ports
    finally:
        script("swarm-down.sh", env=env, timeout=180)


def prometheus_targets(port: int) -> list[dict]:
    return active_targets(f"http://{LOOPBACK}:{port}")


def test_every_task_runs_on_its_role_with_the_compose_limits(stack):
    for service in SERVICES:
        tasks = docker("service", "ps", "--format", "{{.CurrentState}}", f"{STACK}_{service}")
        assert tasks.split()[0] == "Running", (service, tasks)
    for model in MODELS:
        [container] = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_{model}").split()
        host = inspect(container)["HostConfig"]
        assert host["NanoCpus"] == 1_000_000_000 and host["Memory"] == 6 * 1024**3, model
        assert host["Init"] is True
        assert {"Name": "nofile", "Soft": 20000, "Hard": 20000} in host["Ulimits"]
        assert host["Sysctls"]["net.core.somaxconn"] == "4096"
    # Host mode: the server's own port on the node, no ingress network in between.
    [published] = inspect(docker("ps", "-q", "--filter",
                                 f"label=com.docker.swarm.service.name={STACK}_threads").strip()
                          )["HostConfig"]["PortBindings"]["8082/tcp"]
    assert published["HostPort"] == str(stack[1]["threads"])


def test_prometheus_finds_every_server_task_through_swarm_dns(stack):
    _, ports = stack
    deadline = time.monotonic() + 40
    while True:
        try:
            targets = prometheus_targets(ports["prometheus"])
        except OSError:
            targets = []
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if all(health.get(job) == "up" for job in (*MODELS, "prometheus")):
            break
        assert time.monotonic() < deadline, targets
        time.sleep(1)
    assert all(t["health"] == "up" for t in targets), targets
    for target in targets:
        if target["labels"]["job"] in MODELS:  # a task's address on the overlay network
            assert not target["scrapeUrl"].startswith(("http://localhost", "http://127.")), target


def test_three_load_replicas_merge_into_one_result(stack, tmp_path):
    env, ports = stack
    # Every task must be running by the common start time: beside three other test files a
    # task started 11 s after the time was chosen, and 6 s left it behind ("has passed").
    env = dict(env, LOAD_REPLICAS=str(REPLICAS), LOAD_CONNECTIONS="12", LOAD_THREADS="1",
               LOAD_DURATION="4s", LOAD_START_DELAY="30", LOAD_TARGET="threads:8082",
               LOAD_RESULTS=str(tmp_path))
    load = subprocess.Popen([str(SOURCE_DIR / "scripts" / "swarm-load.sh")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # While the replicas run (or linger), Prometheus scrapes each of them too.
        deadline = time.monotonic() + 90  # only "it hung"
        load_targets = []
        while len([t for t in load_targets if t["health"] == "up"]) < REPLICAS:
            assert time.monotonic() < deadline and load.poll() is None, load_targets
            time.sleep(1)
            load_targets = [t for t in prometheus_targets(ports["prometheus"])
                            if t["labels"]["job"] == "echolab-load"]
        assert len(load_targets) == REPLICAS
        stdout, stderr = load.communicate(timeout=120)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, stderr
    shards = [json.loads((tmp_path / f"shard-{i}.json").read_text()) for i in range(1, REPLICAS + 1)]
    merged = json.loads((tmp_path / "merged.json").read_text())
    # One task per slot, each the shard of its slot, of one run of 12 connections.
    assert [(s["shard"]["index"], s["shard"]["count"]) for s in shards] == \
        [(i, REPLICAS) for i in range(1, REPLICAS + 1)]
    assert sum(s["connections"] for s in shards) == 12
    assert all(s["requests"] > 0 and s["errors"]["total"] == 0 for s in shards), shards
    assert merged["requests"] == sum(s["requests"] for s in shards)
    assert merged["errors"]["total"] == 0
    assert merged["connections"] == 12
    assert "requests/s" in stdout, stdout
    # The load service is removed once its results are in.
    assert not docker("service", "ls", "-q", "--filter", f"name={STACK}_echolab-load").split()


def test_swarm_down_leaves_no_service_network_or_container(stack):
    env, _ = stack
    checked(script("swarm-down.sh", env=env, timeout=180))
    for kind in ("service", "container", "network", "config"):
        assert stack_objects(kind) == [], kind
    assert swarm_state() == "active", "the swarm is the test's: swarm-down must not leave it"
