"""Operator actions in the TUI: the dashboard's `a` shows what the procedure's action
will do in the generic confirm screen and runs it only on `y` (cloudblue's
rotate-vap-token, under the --root of a CLI apply, against the fake Connect API).

Waits are on workers (`app.workers.wait_for_complete()`), never on time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudblue_rig import started_rig
from textual.widgets import Static

from screens.confirm import ConfirmScreen
from screens.dashboard import DashboardScreen
from screens.workspace import saved_run
from tui.app import CloudRigApp
from tui.registry import get_procedure
from tui.state import StateStore

KEY = b"-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with started_rig(tmp_path) as rig:
        for name, value in rig.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CLOUDRIG_REFRESH", "0")
        yield rig


def summary(app: CloudRigApp) -> str:
    return str(app.screen.query_one("#dash-summary", Static).content)


async def open_dashboard(app: CloudRigApp, procedure_id: str) -> DashboardScreen:
    procedure = get_procedure(procedure_id)
    saved = saved_run(app.workspace.store, procedure)
    screen = DashboardScreen(app.workspace, procedure, saved.answers, saved.root, saved.problem)
    await app.push_screen(screen)
    await app.workers.wait_for_complete()
    return screen


async def press_and_settle(app: CloudRigApp, pilot, key: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press(key)
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_dashboard_action_shows_what_it_does_and_runs_only_on_yes(rig) -> None:
    assert rig.apply().returncode == 0
    key = rig.root / "etc" / "cloudblue-connector" / "connector.pem"
    key.write_bytes(KEY)
    app = CloudRigApp(store=StateStore(rig.state))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        dashboard = await open_dashboard(app, "cloudblue")
        assert dashboard.check_action("actions", ()) is True

        await press_and_settle(app, pilot, "a")
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.question)
        assert "Delete /etc/cloudblue-connector/connector.pem" in question
        assert "remove /etc/cloudblue-connector/connector.pem" in question
        assert "cloudblue-password-manager --set-vap-token" in question
        await press_and_settle(app, pilot, "n")
        assert app.screen is dashboard
        assert key.read_bytes() == KEY
        assert "not run" in summary(app)

        await press_and_settle(app, pilot, "a")
        await press_and_settle(app, pilot, "y")
        assert app.screen is dashboard
        assert not key.exists()
        assert "Rotate the Application Management token: done" in summary(app)
        state = StateStore(rig.state).load("cloudblue")
        assert state is not None and state.actions["rotate-vap-token"].outcome == "done"


async def test_procedures_without_actions_hide_the_binding(rig) -> None:
    app = CloudRigApp(store=StateStore(rig.state))
    async with app.run_test() as pilot:
        await pilot.pause()
        dashboard = await open_dashboard(app, "carbonio")
        assert dashboard.check_action("actions", ()) is False
        await pilot.press("a")  # nothing happens
        assert app.screen is dashboard


async def test_choice_screen_returns_the_chosen_id_or_none(rig) -> None:
    """With more than one action the dashboard asks which first (ChoiceScreen)."""
    from screens.choice import ChoiceScreen

    chosen: list[str | None] = []
    app = CloudRigApp(store=StateStore(rig.state))
    async with app.run_test() as pilot:
        await pilot.pause()
        for keys in (("down", "enter"), ("escape",)):
            app.push_screen(ChoiceScreen("Which action?", [("one", "First"), ("two", "Second")]),
                            chosen.append)
            await pilot.pause()
            await pilot.press(*keys)
            await pilot.pause()
    assert chosen == ["two", None]
