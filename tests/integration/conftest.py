"""Fixtures more than one test file uses. (Plain helpers are in harness.py, scraping.py,
docker_stack.py and dashboard_queries.py; no test file imports another.)"""

import pytest

from docker_stack import engine_answers, script


@pytest.fixture(scope="session")
def engine():
    """A running Docker engine, for test_docker_image, test_compose, test_swarm and
    test_swarm_two_nodes: where none answers, scripts/docker-engine.sh starts one (or the tests
    skip, with its reason), and it is stopped again after the session. CTest runs the image's
    test first (integration.docker_image), then the other three files in one pytest session
    (integration.docker, tests/integration/CMakeLists.txt), so the engine starts and stops twice
    (about 2 s each); a pytest run of one of them starts its own."""
    was_running = engine_answers()
    if not was_running:
        started = script("docker-engine.sh", "start", timeout=600)
        if started.returncode != 0:
            pytest.skip("no Docker engine can be started here: "
                        + (started.stderr.strip().splitlines() or ["unknown reason"])[-1])
    yield
    if not was_running:
        script("docker-engine.sh", "stop", timeout=120)
