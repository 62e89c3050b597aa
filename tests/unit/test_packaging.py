"""The wheel carries everything CloudRig needs at run time, found via importlib.resources.

Templates and styles live at the top of the repository (DESIGN.md layout) and are
mapped into `tui/_data/` by pyproject.toml's force-include; these tests build the
real wheel and look inside it, then run the wheel's code away from the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import tui
from tui.resources import data_dir

REPO = Path(__file__).resolve().parents[2]
CARBONIO_TEMPLATES = {
    "policies.json.j2",
    "external-service.json.j2",
    "gateway-config.hcl.j2",
    "gateway.service.j2",
}
BUILD_TIMEOUT = 300  # seconds: pip fetches hatchling into an isolated build env


def _shipped(directory: str) -> set[str]:
    """Files of the checkout's `directory` as the wheel must name them."""
    base = REPO / directory
    return {
        f"tui/_data/{directory}/{p.relative_to(base).as_posix()}"
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _sources(package: str) -> set[str]:
    base = REPO / package
    return {
        p.relative_to(REPO).as_posix()
        for p in base.rglob("*.py")
        if "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}\n{result.stderr}"
    wheels = list(out.glob("cloudrig-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.slow
def test_wheel_has_the_four_carbonio_templates(names: set[str]) -> None:
    shipped = {n.rsplit("/", 1)[1] for n in names
               if n.startswith("tui/_data/templates/carbonio/") and n.endswith(".j2")}
    assert shipped >= CARBONIO_TEMPLATES


@pytest.mark.slow
def test_wheel_has_every_template_and_asset_of_the_checkout(names: set[str]) -> None:
    expected = _shipped("templates") | _shipped("assets")
    assert expected <= names, sorted(expected - names)


@pytest.mark.slow
def test_wheel_has_the_styles(names: set[str]) -> None:
    styles = {p.name for p in (REPO / "assets").rglob("*.tcss")}
    if not styles:
        pytest.skip("no .tcss in assets/ yet")
    shipped = {n.rsplit("/", 1)[1] for n in names
               if n.startswith("tui/_data/assets/") and n.endswith(".tcss")}
    assert styles <= shipped


@pytest.mark.slow
def test_wheel_has_the_code_and_the_console_script(wheel: Path, names: set[str]) -> None:
    assert {"tui/cli.py", "tui/__init__.py", "screens/__init__.py"} <= names
    assert _sources("tui") | _sources("screens") <= names
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(entry_points).decode()
    assert "cloudrig = tui.cli:main" in text


def _unpacked(wheel: Path, tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """The wheel unpacked under TMP_PATH/site (away from the checkout), a carbonio
    answers file, and an environment that imports only the unpacked code."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    answers = tmp_path / "answers.yaml"
    answers.write_text("external_address: db.example.com\n"
                       "db_name: files\ndb_username: files\n")
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1",
           "CLOUDRIG_STATE_DIR": str(tmp_path / "state")}
    return site, answers, env


@pytest.mark.slow
def test_the_wheel_alone_lists_and_renders(wheel: Path, tmp_path: Path) -> None:
    """Unpacked away from the checkout, the wheel's own code finds its own templates."""
    site, answers, env = _unpacked(wheel, tmp_path)
    script = (
        "import sys, tui, tui.resources as r; from tui.cli import main\n"
        "print(tui.__file__); print(r.data_dir('templates'))\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "render", "carbonio", "--answers", str(answers),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )
    assert run.returncode == 0, run.stderr
    module, templates = run.stdout.splitlines()[:2]
    assert Path(module).is_relative_to(site)
    assert Path(templates) == site / "tui" / "_data" / "templates"
    rendered = {p.name for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert rendered == {"policies.json", "carbonio-files-db-external.json",
                        "gateway-config.hcl", "carbonio-gateway.service"}


def test_installed_data_dirs_resolve() -> None:
    templates = data_dir("templates")
    assert {p.name for p in (templates / "carbonio").glob("*.j2")} >= CARBONIO_TEMPLATES
    assert data_dir("assets").is_dir()


@pytest.mark.skipif(not os.environ.get("CLOUDRIG_TESTING_INSTALLED"),
                    reason="only when scripts/test.sh runs the tests against an installed wheel")
def test_tests_import_the_installed_package_not_the_checkout() -> None:
    module = Path(tui.__file__).resolve()
    assert not module.is_relative_to(REPO / "tui"), module
    assert data_dir("templates") == module.parent / "_data" / "templates"


@pytest.mark.parametrize(
    "example", sorted((REPO / "assets" / "examples").glob("*.yaml")), ids=lambda p: p.stem
)
def test_example_answers_are_valid_for_their_procedure(example: Path) -> None:
    """assets/examples/<procedure>.yaml: valid answers (no secrets), shipped in the wheel."""
    from tui.answers import load_file
    from tui.registry import get_procedure

    procedure = get_procedure(example.stem)
    load_file(procedure.answers_model, example)
    assert (data_dir("assets") / "examples" / example.name).is_file()


@pytest.mark.slow
def test_the_wheel_alone_exports_ansible(wheel: Path, names: set[str], tmp_path: Path) -> None:
    """`cloudrig export ansible` renders its templates from the unpacked wheel."""
    from tui.export_ansible import FILES, TEMPLATES

    shipped = {n.rsplit("/", 1)[1] for n in names
               if n.startswith(f"tui/_data/templates/{TEMPLATES}/")}
    assert set(FILES.values()) <= shipped, sorted(set(FILES.values()) - shipped)
    _, answers, env = _unpacked(wheel, tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "tui", "export", "ansible", "carbonio", "--answers",
         str(answers), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )
    assert run.returncode == 0, run.stderr
    written = {p.relative_to(tmp_path / "out").as_posix()
               for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert written == set(FILES)
