"""The Grafana dashboards against the dashboard types Grafana publishes (@grafana/schema at the
release of the stack's Grafana image), type-checked by TypeScript: Grafana need not run."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import SOURCE_DIR

SCRIPT = SOURCE_DIR / "scripts" / "check-dashboard-schema.sh"
TOOL_DIR = SOURCE_DIR / "scripts" / "dashboard-schema"
DASHBOARD_DIR = SOURCE_DIR / "dashboards"
COMPOSE_FILE = SOURCE_DIR / "docker-compose.yml"
# A cold npm ci downloads three packages; a warm one and the check take seconds.
CHECK_TIMEOUT_S = 300
REGISTRY_UNREACHABLE = 3


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def check(*files: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(SCRIPT), *map(str, files)], capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT_S, env=env)
    if result.returncode == REGISTRY_UNREACHABLE:
        pytest.fail("the schema tooling could not be installed, so no dashboard was checked:\n"
                    + result.stderr[-3000:])
    return result


def verdicts(output: str) -> dict[str, str]:
    """{file name: "ok" or "FAIL"} from the check's one line per dashboard."""
    return {Path(match.group(2)).name: match.group(1)
            for match in re.finditer(r"^(ok|FAIL) +(\S+)$", output, re.MULTILINE)}


def errors_of(output: str, name: str) -> list[str]:
    """The indented error lines under the verdict line of the dashboard file `name`."""
    block = re.search(rf"^FAIL \S*/{re.escape(name)}\n((?:  .*\n?)*)", output, re.MULTILINE)
    return [line.strip() for line in block.group(1).splitlines()] if block else []


def test_the_schema_is_pinned_to_the_grafana_release_of_the_stack():
    image = re.search(r"grafana/grafana-oss:(\d+\.\d+\.\d+)", COMPOSE_FILE.read_text()).group(1)
    manifest = json.loads((TOOL_DIR / "package.json").read_text())
    lock = json.loads((TOOL_DIR / "package-lock.json").read_text())
    pinned = manifest["devDependencies"]["@grafana/schema"]
    assert pinned == image, f"@grafana/schema {pinned}, Grafana image {image}"
    assert lock["packages"]["node_modules/@grafana/schema"]["version"] == image
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["devDependencies"]["typescript"]), \
        "typescript must be pinned to one exact version"


def test_every_dashboard_matches_grafanas_published_dashboard_type():
    result = check()
    assert verdicts(result.stdout) == {path.name: "ok" for path in dashboard_files()}, \
        result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


def first_panel(dashboard: dict, panel_type: str | None = None) -> dict:
    """The first panel (inside rows too) of `panel_type`, or the first that is not a row."""
    panels = [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]
    return next(p for p in panels if (p["type"] == panel_type if panel_type else p["type"] != "row"))


def break_grid_height(dashboard: dict) -> None:
    first_panel(dashboard)["gridPos"]["h"] = str(first_panel(dashboard)["gridPos"]["h"])


def break_refresh(dashboard: dict) -> None:
    dashboard["refresh"] = 5


def break_variable_type(dashboard: dict) -> None:
    dashboard["templating"]["list"][0]["type"] = "customs"


def break_row_collapsed(dashboard: dict) -> None:
    first_panel(dashboard, "row")["collapsed"] = "false"


def break_colour_mode(dashboard: dict) -> None:
    first_panel(dashboard)["fieldConfig"]["defaults"]["color"] = {"mode": "palette"}


def break_legend_mode(dashboard: dict) -> None:
    first_panel(dashboard, "timeseries")["options"]["legend"] = {"displayMode": "tables"}


def break_query_ref_id(dashboard: dict) -> None:
    first_panel(dashboard)["targets"][0]["refId"] = 1


def break_bar_gauge_mode(dashboard: dict) -> None:
    first_panel(dashboard, "bargauge")["options"]["displayMode"] = "bars"


# A panel's path, at the top level or inside a row.
PANEL = r"panels\[\d+\](\.panels\[\d+\])?"
# One dashboard per mistake: (what is broken, the JSON path the error must name, the message).
MISTAKES = {
    "grid-height": (break_grid_height, PANEL + r"\.gridPos\.h",
                    "Type 'string' is not assignable to type 'number'"),
    "refresh": (break_refresh, r"refresh", "Type 'number' is not assignable to type 'string'"),
    "variable-type": (break_variable_type, r"templating\.list\[0\]\.type",
                      "Type '\"customs\"' is not assignable"),
    "row-collapsed": (break_row_collapsed, r"panels\[\d+\]\.collapsed",
                      "Type 'string' is not assignable to type 'boolean'"),
    "colour-mode": (break_colour_mode, PANEL + r"\.fieldConfig\.defaults\.color\.mode",
                    "Type '\"palette\"' is not assignable"),
    "legend-mode": (break_legend_mode, PANEL + r"\.options\.legend\.displayMode",
                    "Type '\"tables\"' is not assignable"),
    "query-ref-id": (break_query_ref_id, PANEL + r"\.targets\[0\]\.refId",
                     "Type 'number' is not assignable to type 'string'"),
    "bar-gauge-mode": (break_bar_gauge_mode, PANEL + r"\.options\.displayMode",
                       "Type '\"bars\"' is not assignable"),
}


def test_a_field_of_the_wrong_type_fails_the_check_naming_the_field(tmp_path):
    """One copy of the overview dashboard per mistake, checked in one run: each copy fails
    with exactly one error, on the field that was broken."""
    original = json.loads((DASHBOARD_DIR / "processes-vs-threads.json").read_text())
    copies = []
    for name, (mistake, _, _) in MISTAKES.items():
        dashboard = json.loads(json.dumps(original))
        mistake(dashboard)
        copy = tmp_path / f"{name}.json"
        copy.write_text(json.dumps(dashboard, indent=2))
        copies.append(copy)
    result = check(*copies)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert verdicts(result.stdout) == {copy.name: "FAIL" for copy in copies}, output
    for name, (_, field, message) in MISTAKES.items():
        errors = errors_of(result.stdout, f"{name}.json")
        assert len(errors) == 1, f"{name}: {errors}\n{output}"
        assert re.match(rf"{field}: .*{re.escape(message)}", errors[0]), f"{name}: {errors[0]}"


def test_an_unreachable_registry_is_reported_as_such(tmp_path):
    """A copy of the tooling with nothing installed, an empty npm cache and a registry on a
    loopback port nobody listens on: the script must say that it could not install, not that
    a dashboard failed (the tests above turn that into a failure with this message)."""
    tool_copy = tmp_path / "dashboard-schema"
    shutil.copytree(TOOL_DIR, tool_copy, ignore=shutil.ignore_patterns("node_modules"))
    unreachable = "http://127.0.0.1:9/"
    env = dict(os.environ, ECHOLAB_SCHEMA_TOOL_DIR=str(tool_copy), npm_config_registry=unreachable,
               npm_config_cache=str(tmp_path / "npm-cache"), npm_config_offline="false")
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == REGISTRY_UNREACHABLE, result.stdout + result.stderr
    assert f"is the npm registry {unreachable} reachable?" in result.stderr, result.stderr
    assert "ok " not in result.stdout and "FAIL" not in result.stdout
