"""The import layers of DESIGN.md hold: the vocabulary and atomic writes are leaves,
clients know nothing of procedures or fronts, only the TUI imports Textual (import-linter's
contracts in pyproject.toml), no import circle in `tui` (scripts/import_cycles.py), mypy
finds nothing wrong in tui/ and screens/ ([tool.mypy]), and every procedure carries the
title the registry lists for it."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
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


# The packages an import may be deferred for (issue 19 part 8), each a measurable share
# of a start-up; the name in the tag is what the imported module must load. Instructions
# are valgrind's count for `python -c "import X"` minus `python -c pass` (≈ 40 M), Python
# 3.11: `cloudrig list` is ≈ 47 M over `pass`.
STARTUP_HEAVY = {
    # the list
    "textual": "the TUI; the non-TUI commands never load it",
    "pydantic": "≈ 350 M with BaseModel: every model, answers, state, the engine",
    "httpx": "≈ 500 M: the API clients",
    "psycopg": "the live PostgreSQL path only",
    "pycdlib": "the config drive only",
    "boto3": "the AWS path only (botocore is its core)",
    # the same cost outside the list, each on one path only
    "keyring": "≈ 310 M: the secret store, opened only when a secret is not in the environment",
    "keyrings": "≈ 320 M (keyrings.cryptfile: argon2, AES): the file secret store",
    "aiohttp": "≈ 1150 M: `cloudrig serve` only",
    "textual_serve": "≈ 1350 M (aiohttp): `cloudrig serve` only",
    "dns": "≈ 370 M (dnspython): atmosphere's DNS check only",
    "segno": "≈ 170 M: cloudcasa's QR code in a browser only",
    "platformdirs": "≈ 70 M: only without CLOUDRIG_STATE_DIR",
}
_LOADS = {"boto3": ("boto3", "botocore")}
TAG = re.compile(r"# deferred: start-up \(([a-z_0-9]+)\)")


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


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The modules NODE (in MODULE, dotted) imports, relative imports resolved; `from P
    import N` as P.N (`_loads` falls back to P when N is not a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module.rsplit(".", node.level)[0] if node.level else ""
    return [".".join(part for part in (base, node.module, node.names[0].name) if part)]


def _deferred_imports(top: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Every function-level import under TOP as (where, imported module, the package its
    tag names), and those whose line carries no `# deferred: start-up (PACKAGE)` tag for
    a package of STARTUP_HEAVY."""
    found, untagged = [], []
    for path in sorted(top.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        parts = path.relative_to(top.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in _local_imports(ast.parse(text)):
            where = f"{path.relative_to(top.parent)}:{node.lineno}"
            tag = TAG.search(lines[node.lineno - 1])
            if tag is None or tag.group(1) not in STARTUP_HEAVY:
                untagged.append(f"{where}: {lines[node.lineno - 1].strip()}")
                continue
            found += [(where, name, tag.group(1)) for name in _imported(node, module)]
    return found, untagged


# One interpreter that has imported nothing of CloudRig forks a child per module: each
# child imports its module from a clean slate and says which packages are then loaded.
LOADS_SCRIPT = """
import importlib, os, sys
for module in sys.argv[1:]:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:  # `from P import N`, N not a module: P
            importlib.import_module(module.rpartition(".")[0])
        loaded = " ".join({name.split(".")[0] for name in sys.modules})
        os.write(write, f"{module} {loaded}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        print(answer.read())
    os.wait()
"""


def _loads(modules: set[str]) -> dict[str, set[str]]:
    """module → the STARTUP_HEAVY packages importing it loads, each from a fresh start
    (what it costs a start-up that has loaded none yet)."""
    result = subprocess.run([sys.executable, "-c", LOADS_SCRIPT, *sorted(modules)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert result.returncode == 0, result.stderr
    heavy = {name for package in STARTUP_HEAVY for name in _LOADS.get(package, (package,))}
    loaded = {}
    for line in result.stdout.splitlines():
        module, *names = line.split()
        loaded[module] = set(names) & heavy
    assert set(loaded) == modules, result.stderr
    return loaded


def test_imports_inside_functions_are_only_for_start_up_and_say_so() -> None:
    """An import inside a function is only for a start-up-heavy package (`cloudrig list`
    and the first paint stay fast): its line says which, `# deferred: start-up
    (pydantic)`, and importing what it imports really loads that package (a CloudRig
    module counts by what it pulls in). None is left to dodge an import circle or to
    save a standard-library module."""
    for package in ("tui", "screens"):
        found, untagged = _deferred_imports(INSTALLED.parent / package)
        assert untagged == []
        loads = _loads({module for _where, module, _tag in found})
        wrong = [f"{where}: {module} loads none of {tag} ({sorted(loads[module])})"
                 for where, module, tag in found
                 if not set(_LOADS.get(tag, (tag,))) & loads[module]]
        assert wrong == []


def test_the_deferral_check_finds_an_untagged_or_needless_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "m.py").write_text(textwrap.dedent("""\
        def fine():
            import json  # deferred: start-up (pydantic)
            import csv  # heavy: keeps it fast
            from . import other  # deferred: start-up (rust)
        def hiding():
            from pkg import other
    """))
    found, untagged = _deferred_imports(package)
    assert untagged == ["pkg/m.py:3: import csv  # heavy: keeps it fast",
                        "pkg/m.py:4: from . import other  # deferred: start-up (rust)",
                        "pkg/m.py:6: from pkg import other"]
    assert found == [("pkg/m.py:2", "json", "pydantic")]
    assert _loads({"json", "json.dumps"}) == {"json": set(), "json.dumps": set()}


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


TESTS = REPO / "tests"
TEST_LAYERS = ("unit", "procedures", "tui", "reliability")


def test_the_tests_are_in_layers_and_import_only_support() -> None:
    """Every test module is in a layer folder with its conftest.py; a test module never
    imports another (what two layers share is in tests/support, on sys.path)."""
    stray = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert not stray, f"test modules outside a layer folder: {stray}"
    assert not list((TESTS / "support").rglob("test_*.py"))
    modules = {p.stem for layer in TEST_LAYERS for p in (TESTS / layer).glob("test_*.py")}
    assert len(modules) > 60
    crossing = []
    for layer in TEST_LAYERS:
        assert (TESTS / layer / "conftest.py").is_file(), f"tests/{layer} has no conftest.py"
        for path in (TESTS / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                crossing += [f"{layer}/{path.name}: {n}" for n in names
                             if n.split(".")[0] in modules]
    assert not crossing, f"test modules importing test modules: {crossing}"
