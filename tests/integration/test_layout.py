"""The layout of the integration tests: no test file imports another. CTest runs each file in a
pytest process of its own, and a test module imported by another would be collected twice in a
run of several files and drag its fixtures in; what two files share is in harness.py,
scraping.py, docker_stack.py, dashboard_queries.py or conftest.py."""

import ast
from pathlib import Path

HERE = Path(__file__).resolve().parent


def imported_test_modules(path: Path) -> list[str]:
    """`line: module` for every test_* module the file imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {name}" for name in names if name.split(".")[0].startswith("test_")]
    return found


def test_no_test_file_imports_another():
    offenders = {path.name: imports for path in sorted(HERE.glob("test_*.py"))
                 if (imports := imported_test_modules(path))}
    assert not offenders, f"test files importing test modules (move the shared code out): {offenders}"


def test_the_check_names_an_importing_file(tmp_path):
    offender = tmp_path / "test_offender.py"
    offender.write_text("import os\nfrom test_servers import GREETING\n\ndef f():\n    import test_metrics\n")
    assert imported_test_modules(offender) == ["2: test_servers", "5: test_metrics"]
