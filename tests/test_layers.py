"""The layers' import rules (pyproject.toml [tool.importlinter], docs/architecture.md):
the contracts hold, a violation makes `lint-imports` fail, and no function-level
import of a project module hides a cycle."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "workflows", "rules", "notifications", "quorum_web")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# A function-level import of a project module must say why it is lazy; these are
# the only ones (file, imported module), each with its comment in place.
LAZY = {("engine/entry/cli.py", "quorum_web.app")}


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_project(dest: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    for pkg in PACKAGES:
        shutil.copytree(
            ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )


def test_contracts_hold() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_read_importing_commands_breaks_the_layers(tmp_path: Path) -> None:
    _copy_project(tmp_path)
    views = tmp_path / "engine" / "read" / "views.py"
    views.write_text(views.read_text() + "\nfrom engine.commands import service  # noqa\n")
    done = _lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Layers: each imports only from the layers below it BROKEN" in done.stdout
    assert "engine.read.views -> engine.commands.service" in done.stdout


def test_handler_importing_the_bus_breaks_its_contract(tmp_path: Path) -> None:
    _copy_project(tmp_path)
    handler = tmp_path / "engine" / "commands" / "handlers" / "grants.py"
    bus = "\nfrom engine.commands.service import Quorum  # noqa\n"
    handler.write_text(handler.read_text() + bus)
    done = _lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Handlers never import the bus" in done.stdout
    assert "BROKEN" in done.stdout


def _lazy_project_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.col_offset > 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import) and node.col_offset > 0:
            modules = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, m) for m in modules if m.split(".")[0] in PACKAGES]
    return found


def test_no_function_level_imports_of_project_modules() -> None:
    found = {
        (str(path.relative_to(ROOT)), module, line)
        for pkg in PACKAGES
        for path in sorted((ROOT / pkg).rglob("*.py"))
        for line, module in _lazy_project_imports(path)
    }
    unexplained = {f for f in found if (f[0], f[1]) not in LAZY}
    assert not unexplained, f"hoist these imports (or break the cycle): {sorted(unexplained)}"
    for file, module, line in found:
        before = (ROOT / file).read_text().splitlines()[max(0, line - 8) : line]
        assert any("Lazy on purpose" in text for text in before), (file, module, line)
