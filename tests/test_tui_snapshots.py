"""Screenshots of every screen at 80x24, compared with the SVGs in tests/__snapshots__/.

Deterministic by construction: fixed answers, a private state dir, a --root that
never appears on screen (screens name final paths), no clocks or durations, a
steady cursor, and workers awaited before the capture. Regenerate after a Textual
upgrade with `pytest tests/test_tui_snapshots.py --snapshot-update`, having looked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_helpers import answers, state_dir

from screens.preview import PreviewScreen
from screens.progress import ProgressScreen
from tui.app import CloudRigApp
from tui.procedure import get_procedure
from tui.state import StateStore

__all__ = ["state_dir"]  # the fixture, imported for pytest

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


def test_preview(snap_compare, tmp_path: Path, state_dir: Path) -> None:
    app = make_app(tmp_path, state_dir)

    async def open_preview(pilot: Pilot) -> None:
        await app.push_screen(PreviewScreen(app.workspace, get_procedure("carbonio"), answers()))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_preview)


def test_progress_finished(snap_compare, tmp_path: Path, state_dir: Path) -> None:
    app = make_app(tmp_path, state_dir)

    async def run_apply(pilot: Pilot) -> None:
        await app.push_screen(ProgressScreen(app.workspace, get_procedure("carbonio"), answers()))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_apply)


def test_dashboard(snap_compare, tmp_path: Path, state_dir: Path) -> None:
    """Opened from home with `d`: the answers and root saved by the last apply."""
    app = make_app(tmp_path, state_dir)
    session = app.workspace.session(get_procedure("carbonio"), answers(),
                                    root=app.workspace.root, dry_run=False)
    assert session.apply().outcome == "done"

    async def open_dashboard(pilot: Pilot) -> None:
        await pilot.press("d")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_dashboard)
