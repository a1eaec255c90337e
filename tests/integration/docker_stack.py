"""The Docker engine and stack as the Docker tests drive them (test_compose, test_swarm,
test_swarm_two_nodes): the repository's scripts, the docker CLI checked for a clean exit, the
published ports, the swarm stack file. The `engine` fixture itself is in conftest.py."""

import json
import shutil
import subprocess
import time

from harness import MODELS, SOURCE_DIR, free_port, http_exchange

SCRIPTS = SOURCE_DIR / "scripts"
STACK_FILE = SOURCE_DIR / "deploy" / "swarm" / "stack.yml"
# The (server, metrics) port of each model inside its container.
SERVER_PORTS = {"prefork": (8081, 9101), "threads": (8082, 9102), "pool": (8083, 9103), "hybrid": (8084, 9104)}


def script(name: str, *args: str, env: dict | None = None,
           timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / name), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                             capture_output=True, check=False)
    return version.returncode == 0


def choose_published_ports(env: dict) -> dict[str, int]:
    """Free ports for every server, its metrics and Prometheus, set in `env` the way the compose
    file and the swarm stack read them (ECHOLAB_POOL_PORT, ...); returned by service
    ("pool", "pool_metrics", "prometheus")."""
    ports = {}
    for model in MODELS:
        ports[model] = free_port()
        ports[f"{model}_metrics"] = free_port()
        env[f"ECHOLAB_{model.upper()}_PORT"] = str(ports[model])
        env[f"ECHOLAB_{model.upper()}_METRICS_PORT"] = str(ports[f"{model}_metrics"])
    ports["prometheus"] = free_port()
    env["ECHOLAB_PROMETHEUS_PORT"] = str(ports["prometheus"])
    return ports


def checked(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def docker(*args: str, timeout: float = 60) -> str:
    return checked(subprocess.run(["docker", *args], capture_output=True, text=True,
                                  timeout=timeout, check=False))


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


def wait_for_published_port(port: int, timeout: float = 30) -> None:
    """Until the server behind a published port answers (the proxy accepts before it is up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if http_exchange(port, b"GET / HTTP/1.0\r\n\r\n", timeout=2).startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"nothing answers on published port {port}"
        time.sleep(0.3)


def inspect(container: str) -> dict:
    return json.loads(checked(subprocess.run(["docker", "inspect", container], capture_output=True,
                                             text=True, check=False)))[0]
