"""The files that cannot import compare/models.py agree with it: each model, with its binary and
ports, in the compose stack, the swarm stack, both Prometheus configurations, both dashboards'
model variable, the Dockerfile, the Makefile and the scripts. A failure names the model and the
file, so that a new model is added everywhere at once (docs/architecture.md lists the files)."""

import json
import re

import pytest
import yaml

from compare import charts, run
from compare.models import NAMES, REGISTRY
from harness import SOURCE_DIR

MODELS = pytest.mark.parametrize("model", REGISTRY, ids=NAMES)


def load_yaml(path: str) -> dict:
    return yaml.safe_load((SOURCE_DIR / path).read_text())


def server_command(model) -> list[str]:
    return [model.binary, "--listen", f"0.0.0.0:{model.port}", "--metrics-listen", f"0.0.0.0:{model.metrics_port}"]


@MODELS
@pytest.mark.parametrize("stack", ["docker-compose.yml", "deploy/swarm/stack.yml"])
def test_every_stack_runs_the_model_on_its_ports(model, stack):
    services = load_yaml(stack)["services"]
    assert model.name in services, f"{stack} has no service {model.name}"
    service = services[model.name]
    assert service["command"] == server_command(model), f"{stack}: {model.name}'s command"
    published = json.dumps(service["ports"])
    for port in (model.port, model.metrics_port):
        assert str(port) in published, f"{stack}: {model.name} does not publish {port}"


def test_compose_starts_prometheus_after_every_model():
    assert set(load_yaml("docker-compose.yml")["services"]["prometheus"]["depends_on"]) >= set(NAMES)


@MODELS
@pytest.mark.parametrize("config", ["deploy/prometheus/prometheus.yml", "deploy/swarm/prometheus.yml"])
def test_every_prometheus_configuration_scrapes_the_model(model, config):
    jobs = {job["job_name"]: job for job in load_yaml(config)["scrape_configs"]}
    assert model.name in jobs, f"{config} has no job {model.name}"
    assert str(model.metrics_port) in json.dumps(jobs[model.name]), f"{config}: {model.name}'s metrics port"


@MODELS
@pytest.mark.parametrize("dashboard", ["dashboards/processes-vs-threads.json", "dashboards/echolab-server.json"])
def test_every_dashboard_offers_the_model(model, dashboard):
    variables = json.loads((SOURCE_DIR / dashboard).read_text())["templating"]["list"]
    choices = next(v for v in variables if v["name"] == "model")["query"].split(",")
    assert model.name in choices, f"{dashboard}: the model variable has no {model.name}"


@MODELS
def test_the_image_exposes_and_the_makefile_builds_the_model(model):
    exposed = re.search(r"^EXPOSE (.*)$", (SOURCE_DIR / "Dockerfile").read_text(), re.MULTILINE).group(1).split()
    assert {str(model.port), str(model.metrics_port)} <= set(exposed), f"Dockerfile: {model.name}'s ports"
    targets = re.search(r"^COMPARE_TARGETS = (.*)$", (SOURCE_DIR / "Makefile").read_text(), re.MULTILINE)
    assert model.binary in targets.group(1).split(), f"Makefile: COMPARE_TARGETS has no {model.binary}"
    assert model.binary in run.BINARIES


@MODELS
@pytest.mark.parametrize("script", ["scripts/docker-load.sh", "scripts/docker-up.sh", "scripts/swarm-up.sh"])
def test_every_script_knows_the_model(model, script):
    text = (SOURCE_DIR / script).read_text()
    assert re.search(rf"\b{model.name}\b", text), f"{script} does not name {model.name}"


@MODELS
def test_every_chart_colours_the_model(model):
    assert charts.colour(model.name) == model.colour
