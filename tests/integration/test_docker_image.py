"""The servers' image, which every Docker test runs, built from the sources first and alone:
after a change to the C++ sources the build compiles the servers and the load generator,
about two minutes of two cores on a quiet machine and five beside three other test files, so
CTest runs this test before any other integration test (integration.docker_image, see
CMakeLists.txt). Then each binary runs in the image, and a server answers the load generator
inside one container without a network.

Where no Docker engine answers, scripts/docker-engine.sh starts one; only when none can be
started is the test skipped, with the reason."""

import json
import subprocess

from docker_stack import checked, script
from harness import MODELS

IMAGE = "echolab:latest"
# Each binary in the image, and a flag its usage must name.
USAGE = {**{f"echolab-{model}": "--listen" for model in MODELS}, "echolab-load": "--connections"}


def run_in_image(*command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", IMAGE, *command],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_the_image_builds_and_its_server_answers_the_load_generator_inside_it(engine):
    checked(script("docker-build.sh", timeout=1500))
    for binary, flag in USAGE.items():
        usage = run_in_image(binary, "--help")
        assert usage.returncode == 0 and flag in usage.stdout, (binary, usage.stdout[-2000:], usage.stderr[-2000:])
    # The server's start line is its readiness signal (as for the tests outside Docker); the
    # wait and the run are bounded, and nothing leaves the container's own loopback.
    served = run_in_image("bash", "-c", """
        cd /tmp
        echolab-pool --listen 127.0.0.1:8083 --metrics-listen 127.0.0.1:9103 2>server.log &
        timeout 30 bash -c 'until grep -q "event=start " server.log; do sleep 0.05; done' || exit 3
        echolab-load -q -c 2 -d 1s --json result.json 127.0.0.1:8083 >&2 && cat result.json""")
    assert served.returncode == 0, (served.stdout[-2000:], served.stderr[-2000:])
    result = json.loads(served.stdout)
    assert result["requests"] > 0 and result["errors"]["total"] == 0, result
