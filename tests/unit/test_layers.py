"""The import layers of DESIGN.md hold: the vocabulary and atomic writes are leaves,
clients know nothing of procedures or fronts, only the TUI imports Textual (import-linter's
contracts in pyproject.toml), no import circle in `tui` (scripts/import_cycles.py), mypy
finds nothing wrong in tui/ and screens/ ([tool.mypy]), and every procedure carries the
title the registry lists for it."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import tui
from tui.registry import REGISTRY, get_procedure

REPO = Path(__file__).resolve().parents[2]
INSTALLED = Path(tui.__file__).parent


def _cycles_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_cycles",
                                                  REPO / "scripts" / "import_cycles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_layer_contracts_are_kept() -> None:
    """`lint-imports` on the package the tests import: every contract kept."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "PYTHONSAFEPATH": "1"}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    for contract in ("tui.model) is a leaf", "tui.atomic) are a leaf",
                     "API clients know nothing", "only tui.app and screens import Textual",
                     "without a circle", "the engine's modules are layered",
                     "knows nothing of the engine"):
        assert contract in result.stdout


def test_mypy_finds_nothing_wrong_in_tui_and_screens() -> None:
    """mypy with pyproject.toml's [tool.mypy] settings (every function typed, no implicit
    Optional, no stale `type: ignore`) on the checkout's tui/ and screens/, against the
    dependencies installed beside the tests: no error."""
    mypy = Path(sys.executable).with_name("mypy")
    result = subprocess.run([str(mypy), "--config-file", str(REPO / "pyproject.toml")],
                            cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONSAFEPATH": "1"}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found in "), result.stdout


@pytest.mark.parametrize("package", ["tui", "screens"])
def test_no_import_circle_among_a_packages_modules(
        package: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Neither package's modules import each other in a circle, not even through a
    function-level import (the preview and progress screens reach the wizard through
    the app)."""
    script = _cycles_script()
    assert script.main([str(INSTALLED.parent / package)]) == 0
    assert capsys.readouterr().out.startswith("no import cycle among ")


def test_the_cycle_script_finds_a_circle_held_by_a_function_level_import(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What tui/procedure.py and tui/files.py were: a module-level import one way, one
    inside a function the other way. An import under `if TYPE_CHECKING:` never runs
    and makes no circle."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(textwrap.dedent("""\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from pkg.context import Context
        def check(items):
            from pkg.files import check_files
            return check_files(items)
    """))
    (package / "files.py").write_text("from pkg.model import check\n")
    (package / "context.py").write_text("from pkg import model\n")
    script = _cycles_script()
    assert script.main([str(package)]) == 1
    assert capsys.readouterr().out == "import cycle: pkg.files -> pkg.model -> pkg.files\n"
    (package / "model.py").write_text("def check(items):\n    return items\n")
    assert script.main([str(package)]) == 0


def _tagged(lines: list[str], lineno: int) -> bool:
    """A `# heavy:` tag on the line, on an import line just above it, or on a comment
    line just above that run of imports (blank lines between groups included)."""
    at = lineno - 1
    while at >= 0:
        line = lines[at].strip()
        if "# heavy:" in line:
            return True
        if at != lineno - 1 and line and not line.startswith(("import ", "from ")):
            return False
        at -= 1
    return False


def _local_imports(node: ast.AST, in_function: bool = False
                   ) -> list[ast.Import | ast.ImportFrom]:
    """Imports inside a function (not under `if TYPE_CHECKING:`, which never runs)."""
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
            continue
        if isinstance(child, ast.Import | ast.ImportFrom) and in_function:
            found.append(child)
        found += _local_imports(child, in_function or isinstance(
            child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))
    return found


def _untagged_local_imports(top: Path) -> list[str]:
    found = []
    for path in sorted(top.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        found += [f"{path.relative_to(top.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}"
                  for node in _local_imports(ast.parse(text)) if not _tagged(lines, node.lineno)]
    return found


def test_imports_inside_functions_are_only_for_start_up_and_say_so() -> None:
    """An import inside a function is for a start-up-heavy package (textual, pydantic,
    httpx, psycopg, pycdlib, boto3…: `cloudrig list` and the first paint stay fast) and
    is tagged `# heavy: why`; none is left to dodge an import circle."""
    assert _untagged_local_imports(INSTALLED) == []


def test_the_tag_check_finds_an_untagged_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text(textwrap.dedent("""\
        def fine():
            # heavy: boto3
            import boto3
            import botocore
            import json  # heavy: keeps it fast
        def hiding():
            from pkg import other
    """))
    assert _untagged_local_imports(package) == ["pkg/m.py:7: from pkg import other"]


@pytest.mark.parametrize(("module", "loaded"), [
    ("tui.model", {"tui", "tui.errors", "tui.model", "tui.resources"}),
    ("tui.atomic", {"tui", "tui.atomic"}),
])
def test_the_leaves_load_nothing_else_of_cloudrig(module: str, loaded: set[str]) -> None:
    """At run time too: importing a leaf loads no other CloudRig module."""
    code = (f"import sys, {module}; print(' '.join(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('tui', 'screens'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONSAFEPATH": "1"}, timeout=60, check=True)
    assert set(result.stdout.split()) == loaded


@pytest.mark.parametrize("procedure_id", sorted(REGISTRY))
def test_each_procedure_carries_the_title_the_registry_lists(procedure_id: str) -> None:
    """`Procedure` has its own title and summary (no look-up in the registry); the
    registry repeats them so `cloudrig list` imports no procedure: they must agree."""
    procedure = get_procedure(procedure_id)
    info = REGISTRY[procedure_id]
    assert (procedure.id, procedure.title, procedure.summary) == (
        info.id, info.title, info.summary)
