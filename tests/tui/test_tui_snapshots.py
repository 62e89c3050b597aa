"""Screenshots of every screen at 80x24, compared with the SVGs in tests/__snapshots__/.

Deterministic by construction: fixed answers, a private state dir, a --root whose
path is shown as a fixed one (screens name final paths), no clocks or durations, a
steady cursor, and workers awaited before the capture. Regenerate after a Textual
upgrade with `pytest tests/test_tui_snapshots.py --snapshot-update`, having looked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.consul import FakeConsul
from textual.pilot import Pilot
from tui_helpers import answers, press, start_consul

from screens.preview import PreviewScreen
from screens.progress import ProgressScreen
from tui.app import CloudRigApp
from tui.registry import get_procedure
from tui.state import StateStore

SIZE = (80, 24)


def make_app(tmp_path: Path, state_dir: Path, **kwargs: object) -> CloudRigApp:
    return CloudRigApp(root=tmp_path / "root", store=StateStore(state_dir), **kwargs)


async def settle(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_home(snap_compare, tmp_path: Path, state_dir: Path) -> None:
    assert snap_compare(make_app(tmp_path, state_dir), terminal_size=SIZE)


def test_home_16_colours(snap_compare, tmp_path: Path, state_dir: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLORTERM")
    monkeypatch.setenv("TERM", "linux")
    assert snap_compare(make_app(tmp_path, state_dir), terminal_size=SIZE)


def test_wizard_first_page(snap_compare, tmp_path: Path, state_dir: Path) -> None:
    app = make_app(tmp_path, state_dir, procedure_id="carbonio")
    assert snap_compare(app, terminal_size=SIZE)


def test_preview(snap_compare, tmp_path: Path, state_dir: Path,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """No secrets at hand: the preview says apply cannot run yet, and which are missing."""
    monkeypatch.setattr("screens.preview.shown_root", lambda root: "/srv/stage")
    app = make_app(tmp_path, state_dir)

    async def open_preview(pilot: Pilot) -> None:
        await app.push_screen(PreviewScreen(app.workspace, get_procedure("carbonio"), answers()))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_preview)


@pytest.fixture
def fixed_consul(request: pytest.FixtureRequest, state_dir: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeConsul]:
    """A fake Consul on the port the test names: its URL appears on screen."""
    fake = start_consul(monkeypatch, request.param)
    yield fake
    fake.stop()


# Each test its own fixed port (tests run in parallel); the URL is part of the picture.
@pytest.mark.parametrize("fixed_consul", [18571], indirect=True, ids=["consul"])
def test_progress_finished(snap_compare, tmp_path: Path, fixed_consul: FakeConsul) -> None:
    app = make_app(tmp_path, tmp_path / "state")

    async def run_apply(pilot: Pilot) -> None:
        await app.push_screen(ProgressScreen(app.workspace, get_procedure("carbonio"),
                                             answers(fixed_consul.url)))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_apply)


@pytest.mark.parametrize("fixed_consul", [18572], indirect=True, ids=["consul"])
def test_dashboard(snap_compare, tmp_path: Path, fixed_consul: FakeConsul,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Opened from home with `d`: the answers and root saved by the last apply."""
    monkeypatch.setattr("screens.dashboard.clock_text", lambda moment: "12:34:56")
    app = make_app(tmp_path, tmp_path / "state")
    session = app.workspace.session(get_procedure("carbonio"), answers(fixed_consul.url),
                                    root=app.workspace.root, dry_run=False)
    assert session.apply().outcome == "done"

    async def open_dashboard(pilot: Pilot) -> None:
        await pilot.press("d")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_dashboard)


def test_keys_help(snap_compare, tmp_path: Path, state_dir: Path) -> None:
    """F1 on the wizard's first page: every key, grouped by where it acts."""
    app = make_app(tmp_path, state_dir, procedure_id="carbonio")

    async def press_f1(pilot: Pilot) -> None:
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=press_f1)


def test_wizard_rows_editor(snap_compare, tmp_path: Path, state_dir: Path) -> None:
    """A list and a mapping as rows with their counts (cloudcasa's account page)."""
    app = make_app(tmp_path, state_dir, procedure_id="cloudcasa")

    async def to_the_account_page(pilot: Pilot) -> None:
        await pilot.pause()
        await press(pilot, "ctrl+a", "ctrl+k", *"https://cc.example.com/api/v1", "tab", "tab",
                    *"not-a-real-key", "ctrl+n")
        await press(pilot, *"prod-aws", "tab", "tab", *"team", "enter", *"platform", "enter",
                    *"env", "tab", *"prod")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=to_the_account_page)


def test_terminal_too_small(snap_compare, tmp_path: Path, state_dir: Path) -> None:
    assert snap_compare(make_app(tmp_path, state_dir), terminal_size=(60, 18))
