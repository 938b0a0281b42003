"""Project-level promises: packaging files agree, and imports flow one way."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "leadlex_nb"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_runtime_dependencies_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert {_name(d) for d in conda} - {"python", "pip"} == {_name(d) for d in project["dependencies"]}
    assert any(line.strip() in ("-e .", ".") for line in pip_section), "the package itself is installed via pip"
    python = next(d for d in conda if _name(d) == "python")
    assert project["requires-python"].lstrip(">=") in python


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_transport_imports_aiohttp_on_the_client_side() -> None:
    importers = {p.name for p in PACKAGE.glob("*.py") if "aiohttp" in _imports(p)}
    assert importers == {"transport.py"}


def test_the_sandbox_shares_no_code_with_the_client() -> None:
    for path in (PACKAGE / "sandbox").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert not node.module.startswith("leadlex_nb") or node.module.startswith("leadlex_nb.sandbox"), path


def test_the_core_runs_without_loading_tqdm_or_ipywidgets() -> None:
    code = (
        "import sys; import leadlex_nb.runner, leadlex_nb.verdicts, leadlex_nb.attribution, leadlex_nb.ids; "
        "bad = [m for m in ('tqdm', 'ipywidgets') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_importing_the_package_registers_the_accessor() -> None:
    code = "import pandas as pd, leadlex_nb; pd.DataFrame({'a': []}).leadlex; pd.Series([], dtype=object).leadlex"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_defaults_import_nothing_from_the_package() -> None:
    """Any module may read its defaults from leadlex_nb.defaults without an import cycle."""
    tree = ast.parse((PACKAGE / "defaults.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("leadlex_nb"), ast.dump(node)
        elif isinstance(node, ast.Import):
            assert not any(alias.name.startswith("leadlex_nb") for alias in node.names)


def test_the_package_ships_its_type_information() -> None:
    assert (PACKAGE / "py.typed").is_file()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in setuptools["package-data"]["leadlex_nb"]
