"""The boundary between the engine and its faces, proven: the engine is plain Python that the
headless daemon runs without Textual, typer or rich, and only the dashboard imports Textual.

Each import runs in a fresh interpreter, so what one module pulls in cannot hide another's.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import reorg_tui
import reorg_tui.engine

PACKAGE = Path(reorg_tui.__file__).parent
FACES = ("textual", "typer", "rich", "reorg_tui.tui", "reorg_tui.cli")
# The engine also stays free of the settings layer and of the runner that hosts it.
# And of the fleet's database driver: only a --coordinator loads it (ledger_pg.py, lazily).
ENGINE_MUST_NOT_LOAD = (*FACES, "reorg_tui.config", "reorg_tui.headless", "psycopg")
ENGINE_MODULES = sorted(
    info.name for info in pkgutil.walk_packages(reorg_tui.engine.__path__, prefix="reorg_tui.engine.")
)


PROBE = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); print(json.dumps(list(sys.modules)))"
)


def loaded_by(module: str) -> set[str]:
    """The modules in sys.modules after importing ``module`` into a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"importing {module} failed:\n{out.stderr}"
    return set(json.loads(out.stdout))


def breaches(loaded: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in loaded if any(name == f or name.startswith(f + ".") for f in forbidden))


def test_the_walk_finds_the_engine():
    assert {"reorg_tui.engine.engine", "reorg_tui.engine.retry", "reorg_tui.engine.disk"} <= set(
        ENGINE_MODULES
    )


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_an_engine_module_loads_no_face_and_no_settings_layer(module):
    assert breaches(loaded_by(module), ENGINE_MUST_NOT_LOAD) == []


def test_the_headless_runner_loads_no_face():
    # It runs under supervisord, where there is no terminal to draw on.
    assert breaches(loaded_by("reorg_tui.headless"), FACES) == []


def test_the_command_line_imports_the_dashboard_only_when_asked_for_it():
    assert breaches(loaded_by("reorg_tui.cli"), ("textual", "reorg_tui.tui")) == []


def _imported_names(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):  # function bodies too: a lazy import is still an import
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_only_the_dashboard_package_imports_textual():
    tui = PACKAGE / "tui"
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(tui):
            continue
        for name in _imported_names(ast.parse(path.read_text(), str(path))):
            if name == "textual" or name.startswith("textual."):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == []


def test_the_static_check_sees_a_lazy_import():
    tree = ast.parse("def f():\n    from textual.app import App\n\nimport textual\nfrom . import x\n")
    assert sorted(_imported_names(tree)) == ["textual", "textual.app"]


def test_only_the_postgresql_backend_imports_psycopg():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in _imported_names(ast.parse(path.read_text(), str(path))):
            if (name == "psycopg" or name.startswith("psycopg.")) and path.name != "ledger_pg.py":
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == []


SINGLE_HOST = """
import json, sys, tempfile, pathlib
from reorg_tui.config import Settings
from reorg_tui.engine.engine import Engine
root = pathlib.Path(tempfile.mkdtemp())
for name in ("s", "d", "q", "st"):
    (root / name).mkdir()
engine = Engine(Settings(source=root / "s", dest=root / "d", quarantine=root / "q", state_dir=root / "st"))
engine.snapshot()
print(json.dumps(list(sys.modules)))
"""


def test_a_single_host_engine_never_loads_the_fleet():
    out = subprocess.run([sys.executable, "-c", SINGLE_HOST], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout))
    assert "reorg_tui.engine.engine" in loaded
    assert breaches(loaded, ("psycopg", "reorg_tui.engine.fleet", "reorg_tui.engine.ledger_pg")) == []
