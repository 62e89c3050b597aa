"""cloudcasa's AWS path from the TUI, keys only, against a fake CloudCasa, moto and a
stand-in kubectl (the rig of tests/test_cloudcasa_live.py, run in this process).

No root: cloudcasa writes no files and its one host command, kubectl, would be
skipped under one. Waits are on the screen's own state, polled between pauses.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from cloudcasa_rig import REGION, Rig, aws_env, moto_server, rig, stacks
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from tui_helpers import files_under, press

from screens.dashboard import DashboardScreen
from screens.home import HomeScreen
from screens.preview import PreviewScreen
from screens.progress import ProgressScreen
from screens.widgets import RunLog
from screens.wizard import WizardScreen, editor_of
from tui.app import CloudRigApp
from tui.registry import REGISTRY

__all__ = ["moto_server", "rig"]  # the fixtures, imported for pytest

ELAPSED = r"\d+(m\d\ds)?s?"


@pytest.fixture
def casa_env(rig: Rig, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """The rig's AWS endpoint and kubectl for this process; the key only as typed."""
    assert state_dir == rig.state
    for name, value in aws_env(rig.aws).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", f"{rig.tmp / 'bin'}{os.pathsep}{os.environ['PATH']}")
    for name, value in rig.kube_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLOUDRIG_SECRET_API_KEY", raising=False)
    return rig


def log_text(progress: ProgressScreen) -> str:
    """The log's lines (a URL is on a line of its own), joined with one space."""
    return re.sub(r" +", " ", " ".join(progress.query_one("#log", RunLog).lines))


def static(screen: object, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)  # type: ignore[attr-defined]


async def until(pilot: Pilot, condition, what: str, seconds: float = 90) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until `condition()` holds (checked between short pauses)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"the screen never showed {what}"
        await pilot.pause(0.05)


async def field(pilot: Pilot, app: CloudRigApp, name: str, *keys: str) -> None:
    """Tab to a field as an operator would, then type into it."""
    def at() -> bool:
        focused = app.focused
        editor = editor_of(focused)
        return focused is not None and (editor or focused).id == f"field-{name}"

    for _ in range(12):
        if at():
            break
        await pilot.press("tab")
    assert at(), app.focused
    await press(pilot, *keys)


async def open_cloudcasa(pilot: Pilot, app: CloudRigApp) -> WizardScreen:
    assert isinstance(app.screen, HomeScreen)
    await pilot.press(*["down"] * list(REGISTRY).index("cloudcasa"), "enter")
    assert isinstance(app.screen, WizardScreen)
    assert app.screen.form.procedure.id == "cloudcasa"
    return app.screen


async def test_aws_path_from_the_tui_then_a_second_apply_creates_nothing(
        casa_env: Rig) -> None:
    rig, casa = casa_env, casa_env.casa
    key = casa.api_key
    casa.hold_active = True  # CloudCasa sees the stack late: the wait is watched live
    app = CloudRigApp()
    shots: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await open_cloudcasa(pilot, app)
        # CloudCasa access: the fake's URL replaces the SaaS default; the key as a secret.
        await field(pilot, app, "api_url", "ctrl+a", "ctrl+k", *f"{casa.url}/api/v1")
        await field(pilot, app, "api_key", *key)
        assert app.focused.password  # type: ignore[union-attr]
        shots.append(app.export_screenshot())
        await pilot.press("ctrl+n")
        # The account, with its tags typed as a mapping (a key and a value per row).
        await field(pilot, app, "account_name", *"prod-aws")
        await field(pilot, app, "description", *"Created from the TUI")
        await field(pilot, app, "tags", *"team", "enter", *"platform", "enter", *"env",
                    "enter", *"prod")
        assert static(app.screen, "#error-tags") == ""
        await pilot.press("ctrl+n")
        await field(pilot, app, "aws_region", *REGION)
        await pilot.press("ctrl+n")
        # One cluster through a named context, the other through its ARN (the default).
        await field(pilot, app, "kube_contexts", *"prod-eks", "enter", *"prod")
        assert static(app.screen, "#error-kube_contexts") == ""
        await pilot.press("ctrl+n")
        await field(pilot, app, "poll_interval", "ctrl+a", "ctrl+k", *"0.05")
        await field(pilot, app, "poll_timeout", "ctrl+a", "ctrl+k", *"60")
        await pilot.press("ctrl+n")

        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        planned = "\n".join(str(s.content) for s in preview.query(".plan-step").results(Static))
        assert f"POST {casa.url}/api/v1/cloudaccounts" in planned
        assert "CreateStack" in planned and "CAPABILITY_IAM" in planned
        assert rig.changes() == []  # the preview only reads
        shots.append(app.export_screenshot())

        await pilot.press("a")
        progress = app.screen
        assert isinstance(progress, ProgressScreen)

        # Live, while the run goes on: each wait has its line with the elapsed time.
        def waiting_for_active() -> bool:
            return "waiting for cloud account prod-aws to become ACTIVE: PENDING" in log_text(
                progress)

        await until(pilot, waiting_for_active, "the wait for ACTIVE")
        assert progress.running
        shown = log_text(progress)
        for expected in (
            rf"waiting for cloud account prod-aws to reach PENDING: no status yet "
            rf"\(elapsed {ELAPSED}, up to 1m00s\)",
            rf"cloud account prod-aws to reach PENDING: PENDING \(after {ELAPSED}\)",
            rf"stack cloudcasa to be created: CREATE_COMPLETE \(after {ELAPSED}\)",
            rf"waiting for cloud account prod-aws to become ACTIVE: PENDING "
            rf"\(elapsed {ELAPSED}, up to 1m00s\)",
        ):
            assert re.search(expected, shown), (expected, shown)
        # Every poll shows on screen, not only changes: the live line counts them.
        polls: list[int] = []

        def polled_again() -> bool:
            found = re.search(r"poll (\d+)", static(progress, "#waiting"))
            if found and (not polls or int(found.group(1)) > polls[-1]):
                polls.append(int(found.group(1)))
            return len(polls) >= 3

        await until(pilot, polled_again, "a poll counter going up")
        waiting = static(progress, "#waiting")
        line = progress.query_one("#waiting", Static).region
        assert line.height >= 1 and line.bottom <= 24, line  # on the 80x24 screen
        assert re.search(rf"cloud account prod-aws to become ACTIVE: PENDING · poll \d+ · "
                         rf"{ELAPSED} of up to 1m00s", waiting), waiting
        shots.append(app.export_screenshot())

        casa.hold_active = False
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert progress.result is not None and progress.result.outcome == "done", (
            progress.result)
        assert static(progress, "#waiting") == ""  # no wait left on screen
        assert static(progress, "#outcome").startswith("Done:")
        assert re.search(rf"cloud account prod-aws to become ACTIVE: ACTIVE \(after {ELAPSED}\)",
                         log_text(progress))
        shots.append(app.export_screenshot())
        shots.append("\n".join([log_text(progress), *progress.messages]))

        account = casa.account_named("prod-aws")
        assert account is not None and account["status"]["state"] == "ACTIVE"
        assert account["tags"] == {"team": "platform", "env": "prod"}
        assert len(casa.docs["cloudaccounts"]) == 1
        [stack] = stacks(rig.aws)
        assert stack["name"] == "cloudcasa" and stack["status"] == "CREATE_COMPLETE"
        assert stack["params"]["CCAccountId"] == account["_id"]
        assert sorted(casa.agents_fetched) == ["dev-eks", "prod-eks"]

        await pilot.press("d")
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = dashboard.query_one("#checks", DataTable)
        rows = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1])
                for i in range(table.row_count)}
        assert rows and set(rows.values()) == {"done"}, rows
        shots.append(app.export_screenshot())

        # Again from home: the wizard is prefilled (tags in their rows), the key is kept
        # for the session, and the second apply creates nothing.
        await pilot.press("escape")
        wizard = await open_cloudcasa(pilot, app)
        assert wizard.form.display("tags") == {"team": "platform", "env": "prod"}
        await pilot.press(*["ctrl+n"] * 5)
        assert isinstance(app.screen, PreviewScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        before = len(casa.log)
        await pilot.press("a")
        rerun = app.screen
        assert isinstance(rerun, ProgressScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert rerun.result is not None and rerun.result.outcome == "done", rerun.result
        assert rig.posts(before) == [f"/api/v1/cloudaccounts/{account['_id']}/action/inventory"]
        assert len(casa.docs["cloudaccounts"]) == 1 and len(stacks(rig.aws)) == 1
        assert len(rig.kubectl_log.read_text().splitlines()) == 2
        shots.append(app.export_screenshot())
        shots.append(log_text(rerun))

    for shot in shots:
        assert key not in shot, "the API key was shown on screen"
    written = files_under(rig.state)
    assert any(p.name == "cloudcasa.json" for p in written)
    for path in written:
        assert key.encode() not in path.read_bytes(), f"the API key leaked into {path}"
    # The log keeps each wait's changes, not a line per poll.
    log = (rig.state / "cloudrig.log").read_text()
    assert "waiting for cloud account prod-aws to become ACTIVE: PENDING (elapsed" in log
    assert " · poll " not in log


async def test_cancel_during_a_poll_then_the_next_apply_resumes_it(casa_env: Rig) -> None:
    """Escape during the wait for ACTIVE stops within one poll; the rerun from the TUI
    resumes at that wait and creates nothing."""
    from screens.confirm import ConfirmScreen
    from tui.procedures.cloudcasa import CloudCasaAnswers
    from tui.registry import get_procedure

    rig, casa = casa_env, casa_env.casa
    casa.hold_active = True
    answers = CloudCasaAnswers(**rig.answers)
    procedure = get_procedure("cloudcasa")
    app = CloudRigApp()
    app.workspace.secrets["cloudcasa"] = {"api_key": casa.api_key}  # as the wizard keeps it
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.push_screen(ProgressScreen(app.workspace, procedure, answers))
        progress = app.screen
        assert isinstance(progress, ProgressScreen)
        await until(pilot, lambda: "become ACTIVE: PENDING · poll" in static(progress,
                                                                             "#waiting"),
                    "the wait for ACTIVE")
        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert progress.result is not None and progress.result.outcome == "interrupted"
        assert progress.result.failed_step == "active"
        assert static(progress, "#waiting") == ""
        assert "■ Account ACTIVE" in static(progress, "#steps")
        assert static(progress, "#outcome").startswith(
            "Interrupted at Account ACTIVE: stopped while waiting for cloud account prod-aws "
            "to become ACTIVE; rerun apply to resume")

        casa.hold_active = False
        before = len(casa.log)
        await pilot.press("escape")
        await app.push_screen(ProgressScreen(app.workspace, procedure, answers))
        rerun = app.screen
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(rerun, ProgressScreen)
        assert rerun.result is not None and rerun.result.outcome == "done", rerun.result
        assert rig.posts(before) == [
            f"/api/v1/cloudaccounts/{casa.account_named('prod-aws')['_id']}/action/inventory"]
        assert len(casa.docs["cloudaccounts"]) == 1 and len(stacks(rig.aws)) == 1
        for title in ("Cloud account", "Registration started (PENDING)",
                      "CloudFormation stack"):
            assert any(f"{title}: done in the interrupted run" in m for m in rerun.messages)
        assert re.search(rf"cloud account prod-aws to become ACTIVE: ACTIVE \(after {ELAPSED}\)",
                         log_text(rerun))
