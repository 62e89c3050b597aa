"""The TUI driven with keys only, as an operator would, under a temp --root.

Waits are on workers (`app.workers.wait_for_complete()`), never on time.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from fakes.consul import FakeConsul
from textual.widgets import DataTable, Static
from tui_helpers import (
    FINAL_PATHS,
    answers,
    carbonio_on,
    consul,
    dashboard_rows,
    files_under,
    press,
)

from screens.confirm import ConfirmScreen
from screens.dashboard import DashboardScreen
from screens.home import HomeScreen
from screens.preview import PreviewScreen
from screens.procedure_table import ProcedureTable
from screens.progress import ProgressScreen
from screens.wizard import WizardScreen
from tui.app import ANSI_THEME, CloudRigApp, pick_theme
from tui.registry import get_procedure
from tui.runlock import process_start
from tui.state import StateStore

__all__ = ["consul"]  # the fixture, imported for pytest

SECRET = "S3cret-Sauce-42"
REGISTER = "/v1/catalog/register"


def run_pid(state_dir: Path) -> int:
    """The pid the running (or last) apply recorded in state."""
    saved = StateStore(state_dir).load("carbonio")
    assert saved is not None and saved.last_run is not None and saved.last_run.pid
    return saved.last_run.pid


def text_of(widget: Static) -> str:
    return str(widget.content)


def page(app: CloudRigApp) -> int:
    assert isinstance(app.screen, WizardScreen), app.screen
    return app.screen.index


async def test_home_wizard_preview_apply_dashboard(tmp_path: Path, state_dir: Path) -> None:
    """Every answer and both secrets typed in the wizard; the token lives in memory only."""
    root = tmp_path / "root"
    fake = FakeConsul().start()
    app = CloudRigApp(root=root)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, HomeScreen)
            await pilot.press("enter")
            assert page(app) == 0
            # Consul access: the URL, (no CA file), the management token.
            await press(pilot, "ctrl+a", "ctrl+k", *fake.url, "tab", "tab",
                        *fake.management_token)
            await pilot.press("ctrl+n")
            assert page(app) == 1
            await pilot.press("ctrl+n")
            assert page(app) == 2

            # The external service page: address, then a port out of range.
            await press(pilot, "tab", *"db.example.com", "tab", "tab")
            await press(pilot, "ctrl+a", "ctrl+k", *"70000")
            error = app.screen.query_one("#error-external_port", Static)
            assert "65535" in text_of(error)
            assert error.display
            await pilot.press("ctrl+n")
            assert page(app) == 2, "Next must refuse a page with a bad value"
            assert "marked field" in text_of(app.screen.query_one("#page-status", Static))

            await press(pilot, "ctrl+a", "ctrl+k", *"5432")
            assert text_of(error) == ""
            await pilot.press("ctrl+n", "ctrl+n", "ctrl+n")
            assert page(app) == 5

            # Database page: the last page validates the whole model, then previews.
            await pilot.press("ctrl+n")
            assert page(app) == 5, "db_name and db_username are required"
            assert "required" in text_of(app.screen.query_one("#error-db_name", Static))
            assert app.focused is not None and app.focused.id == "field-db_name"
            await press(pilot, *"files", "tab", *"filesuser", "tab", *SECRET)
            await pilot.press("ctrl+n")
            assert isinstance(app.screen, PreviewScreen)
            await app.workers.wait_for_complete()
            await pilot.pause()
            preview = "\n".join(text_of(s) for s in app.screen.query(".plan-step").results(Static))
            for path in FINAL_PATHS:
                assert path in preview
            assert "+++ /etc/carbonio/gateway/service-discover/policies.json" in preview
            assert f"PUT {fake.url}/v1/acl/policy" in preview
            assert str(root) not in preview
            assert SECRET not in preview and fake.management_token not in preview
            assert [r for r in fake.log if r.method != "GET"] == []  # preview only reads

            await pilot.press("a")
            progress = app.screen
            assert isinstance(progress, ProgressScreen)
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert progress.result is not None and progress.result.outcome == "done", (
                progress.result)
            assert "Done" in str(progress.query_one("#outcome", Static).content)
            for path in FINAL_PATHS:
                assert (root / path.lstrip("/")).is_file()
            assert [p["Name"] for p in fake.policies.values()] == [
                "global-management", "carbonio-gateway-policy"]
            assert fake.kv["carbonio-files/db-password"] == SECRET.encode()

            rows = await dashboard_rows(app, pilot)
            # Staged: their host commands (useradd, chown, systemctl) not run under --root.
            assert rows == {
                "Service user and group": "staged",
                "ACL policy": "done", "Management token": "done", "Gateway token": "staged",
                "External service": "done", "Terminating gateway config entry": "done",
                "systemd unit": "staged", "Database credentials in Consul KV": "done",
                "Database role and database": "manual", "Carbonio pending setups": "manual"}
            summary = text_of(app.screen.query_one("#dash-summary", Static))
            assert summary.startswith("5/10 · 2 need you · 3 staged;"), summary

            await pilot.press("escape")
            assert isinstance(app.screen, HomeScreen)
            # Home says what the dashboard says, in the same words.
            assert str(app.screen.query_one(ProcedureTable).rows[0].state) == (
                "5/10 · 2 need you · 3 staged")
    finally:
        fake.stop()

    written = files_under(state_dir)
    assert any(p.name == "carbonio.json" for p in written)
    assert any(p.name == "cloudrig.log" for p in written)
    for path in [*written, *files_under(root)]:
        data = path.read_bytes()
        assert SECRET.encode() not in data, f"secret leaked into {path}"
        assert fake.management_token.encode() not in data, f"token leaked into {path}"
    saved = StateStore(state_dir).load("carbonio")
    assert saved is not None and "db_password" not in saved.answers
    assert "consul_token" not in saved.answers


async def test_failing_consul_call_is_one_sentence_on_screen(
        tmp_path: Path, consul: FakeConsul) -> None:
    """Consul refuses the policy (a 403 with its error text): the progress screen names the
    step and says what Consul said; the files written so far stay, state says failed."""
    consul.fail(403, "Permission denied: token with AccessorID 'x' lacks permission "
                "'acl:write'", path_prefix="/v1/acl/policy", method="PUT")
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        progress = await carbonio_on(app, pilot, ProgressScreen, answers(consul.url))
        assert isinstance(progress, ProgressScreen)
        assert progress.result is not None and progress.result.failed_step == "policy"
        outcome = str(progress.query_one("#outcome", Static).content)
        assert outcome.startswith("Failed at ACL policy:"), outcome
        assert "403" in outcome and "acl:write" in outcome
        assert "Traceback" not in outcome and "\n" not in outcome.strip()
        assert "✗ ACL policy" in str(progress.query_one("#steps", Static).content)
    saved = StateStore(tmp_path / "state").load("carbonio")
    assert saved is not None and saved.last_run is not None
    assert saved.last_run.outcome == "failed" and saved.last_run.failed_step == "policy"


async def test_wizard_prefilled_from_answers_file(tmp_path: Path, state_dir: Path) -> None:
    """`cloudrig wizard carbonio --answers FILE`: every page is prefilled; the secrets apply
    needs (no environment, no store here) are required on their pages, then Next previews."""
    app = CloudRigApp(procedure_id="carbonio", answers=answers(), root=tmp_path / "root")
    async with app.run_test() as pilot:
        await pilot.pause()
        assert page(app) == 0
        await pilot.press("ctrl+n")
        assert page(app) == 0, "the management token is needed by apply: required here"
        assert text_of(app.screen.query_one("#error-consul_token", Static)) == (
            "✗ Consul management token: is required: apply needs it")
        assert app.focused is not None and app.focused.id == "field-consul_token"
        await press(pilot, *"a-token", "ctrl+n", *["ctrl+n"] * 4)
        assert page(app) == 5
        await pilot.press("ctrl+n")
        assert page(app) == 5
        assert "is required: apply needs it" in text_of(
            app.screen.query_one("#error-db_password", Static))
        await press(pilot, *SECRET, "ctrl+n")
        assert isinstance(app.screen, PreviewScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        # Nothing listens on the default Consul URL: planning stops at the first call that
        # cannot connect (not one timeout per step) and points to the page with the URL.
        summary = text_of(app.screen.query_one("#plan-summary", Static))
        assert "Planning stopped: cannot connect to GET http://127.0.0.1:8500/" in summary
        assert summary.endswith("(f: fix it on the page Consul access).")
        views = app.screen.views
        assert views is not None and (views[-1].error or "").startswith("not planned:")
        assert not app.screen.check_action("apply", ())  # apply is not offered
        await pilot.press("a")
        assert isinstance(app.screen, PreviewScreen)
        await pilot.press("f")
        assert page(app) == 0
        assert len(app.screen_stack) == 2  # home, page 1: Escape leads home
        await pilot.press("escape")  # secrets were typed: leaving asks first
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        assert isinstance(app.screen, HomeScreen)


async def test_cancel_stops_between_items_and_rerun_resumes(
    tmp_path: Path, state_dir: Path, consul: FakeConsul, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The apply runs detached; Escape (then y) on its progress screen sends it SIGINT:
    the request under way finishes, the run stops before the next step, and a rerun from
    the TUI resumes there."""
    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "900")  # the held call must not time out
    root = tmp_path / "root"
    hold = consul.hold("PUT", REGISTER)
    procedure = get_procedure("carbonio")
    app = CloudRigApp(root=root)
    async with app.run_test() as pilot:
        await pilot.pause()
        await app.push_screen(ProgressScreen(app.workspace, procedure, answers(consul.url)))
        progress = app.screen
        assert isinstance(progress, ProgressScreen)
        assert await asyncio.to_thread(hold.wait)
        pid = run_pid(state_dir)
        assert process_start(pid) is not None and pid != os.getpid()  # a process of its own

        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.screen is progress and progress.running
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        assert "Cancelling" in str(progress.query_one("#outcome", Static).content)
        hold.release()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert progress.result is not None
        assert progress.result.outcome == "interrupted"
        # The registration under way finished; the run stopped before the next step.
        assert progress.result.failed_step == "gateway-config"
        assert len([r for r in consul.log if r.path == REGISTER]) == 1
        assert "Interrupted" in str(progress.query_one("#outcome", Static).content)
        assert "■ Terminating gateway config entry" in str(
            progress.query_one("#steps", Static).content)
        assert (root / FINAL_PATHS[1].lstrip("/")).is_file()
        assert not (root / FINAL_PATHS[2].lstrip("/")).exists()
        saved = StateStore(state_dir).load("carbonio")
        assert saved is not None and saved.last_run is not None
        assert saved.last_run.outcome == "interrupted"

        await pilot.press("escape")  # home, then run again: it resumes
        await app.push_screen(ProgressScreen(app.workspace, procedure, answers(consul.url)))
        rerun = app.screen
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(rerun, ProgressScreen)
        assert rerun.result is not None and rerun.result.outcome == "done"
        assert any("External service: done in the interrupted run" in m
                   for m in rerun.messages)
        assert len([r for r in consul.log if r.path == "/v1/acl/token"]) == 1
        assert len([r for r in consul.log if r.path == REGISTER]) == 1
        for path in FINAL_PATHS:
            assert (root / path.lstrip("/")).is_file()


async def test_quitting_leaves_the_run_going_and_home_attaches_to_it(
    tmp_path: Path, state_dir: Path, consul: FakeConsul, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctrl+q mid-apply ends the TUI, not the run; a new TUI shows it running on home,
    Enter follows it (the log so far, then live) to its end."""
    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "900")
    root = tmp_path / "root"
    hold = consul.hold("PUT", REGISTER)
    app = CloudRigApp(root=root)
    async with app.run_test() as pilot:
        await pilot.pause()
        await app.push_screen(ProgressScreen(app.workspace, get_procedure("carbonio"),
                                             answers(consul.url)))
        assert await asyncio.to_thread(hold.wait)
        await pilot.press("ctrl+q")  # asks: leave the run going (the first choice)
        await pilot.press("enter")
    assert app.return_code == 0
    pid = run_pid(state_dir)
    assert process_start(pid) is not None, "the run ended with the TUI"

    again = CloudRigApp(root=root)
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = again.screen.query_one(ProcedureTable)
        assert str(table.rows[0].state) == "running"
        await pilot.press("enter")  # attaches instead of opening the wizard
        viewer = again.screen
        assert isinstance(viewer, ProgressScreen) and viewer.answers is None
        # The journal's events so far reach the screen: the run holds at the catalog
        # registration, after the gateway token step (staged under --root).
        for _ in range(2000):
            if any(m.startswith("Gateway token: ") for m in viewer.messages):
                break
            await pilot.pause(0.05)
        assert any("Gateway token: " in m for m in viewer.messages), viewer.messages
        assert any("ACL policy: applied" in m for m in viewer.messages)
        assert viewer.running
        assert f"pid {pid}" in str(viewer.query_one("#outcome", Static).content)
        hold.release()
        await again.workers.wait_for_complete()
        await pilot.pause()
        assert viewer.result is not None and viewer.result.outcome == "done", viewer.result
        assert "Done" in str(viewer.query_one("#outcome", Static).content)
        assert any("Database credentials in Consul KV: applied" in m for m in viewer.messages)
        await pilot.press("escape")
        assert isinstance(again.screen, HomeScreen)
        # The counts the dashboard would show: the run ended (no longer "running").
        assert str(again.screen.query_one(ProcedureTable).rows[0].state).startswith("5/10 · ")
    assert len(consul.kv) == 3


async def test_dashboard_from_home_without_state(tmp_path: Path, state_dir: Path) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("d")
        assert isinstance(app.screen, DashboardScreen)
        await app.workers.wait_for_complete()
        assert "not been applied" in text_of(app.screen.query_one("#dash-summary", Static))


@pytest.mark.parametrize(
    ("environ", "theme"),
    [
        ({"TERM": "xterm-256color"}, None),
        ({"TERM": "xterm", "COLORTERM": "truecolor"}, None),
        ({"TERM": "linux"}, ANSI_THEME),
        ({"TERM": "xterm"}, ANSI_THEME),
        ({"TERM": "xterm-256color", "CLOUDRIG_ANSI": "1"}, ANSI_THEME),
        ({"TEXTUAL_COLOR_SYSTEM": "truecolor"}, None),
        ({"TERM": "xterm-256color", "COLORTERM": "truecolor", "NO_COLOR": "1"}, ANSI_THEME),
    ],
)
def test_theme_follows_the_terminal(environ: dict[str, str], theme: str | None) -> None:
    assert pick_theme(environ) == theme


@pytest.mark.parametrize(("environ", "theme"), [
    ({"TERM": "xterm"}, ANSI_THEME),
    ({"TERM": "xterm-256color", "NO_COLOR": "1"}, ANSI_THEME),
    ({"TERM": "xterm-256color"}, "textual-dark"),
])
async def test_the_app_starts_in_its_theme_with_one_stylesheet_parse(
        environ: dict[str, str], theme: str, tmp_path: Path, state_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The theme is there from the start (its classes, its colours in the first frame),
    and the stylesheet is parsed once: setting the theme after construction made Textual
    re-parse every stylesheet before the first paint."""
    from textual.css.stylesheet import Stylesheet

    for name in ("TERM", "COLORTERM", "NO_COLOR", "CLOUDRIG_ANSI", "TEXTUAL_COLOR_SYSTEM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    reparses: list[Stylesheet] = []
    original = Stylesheet.reparse
    monkeypatch.setattr(Stylesheet, "reparse",
                        lambda sheet: (reparses.append(sheet), original(sheet))[1])
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert app.theme == theme
        assert f"-theme-{theme}" in app.classes and "-dark-mode" in app.classes
        assert reparses == []
        app.theme = "textual-light"  # changing it later still restyles everything
        await pilot.pause()
        assert len(reparses) == 1 and "-theme-textual-light" in app.classes


async def test_failed_step_is_named_in_red(
    tmp_path: Path, state_dir: Path, consul: FakeConsul
) -> None:
    consul.fail(403, "Permission denied: token with AccessorID 'x' lacks permission "
                "'acl:write'", path_prefix="/v1/acl/policy", method="PUT")
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test() as pilot:
        await pilot.pause()
        progress = await carbonio_on(app, pilot, ProgressScreen, answers(consul.url))
        assert isinstance(progress, ProgressScreen)
        assert progress.result is not None and progress.result.failed_step == "policy"
        outcome = progress.query_one("#outcome", Static).content
        assert "Failed at ACL policy: " in str(outcome) and "acl:write" in str(outcome)
        assert "red" in str(outcome.style)
        assert "✗ ACL policy" in str(progress.query_one("#steps", Static).content)
        await pilot.press("d")
        assert isinstance(app.screen, DashboardScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#checks", DataTable)
        row = [c.step for c in app.screen.checks].index("policy")
        assert [str(c) for c in table.get_row_at(row)[:2]] == ["ACL policy", "pending"]


async def test_dashboard_checks_again_on_its_own_and_says_when(
        tmp_path: Path, consul: FakeConsul) -> None:
    """A change behind CloudRig's back shows up without a key press; each row has a time."""
    app = CloudRigApp(root=tmp_path / "root")
    app.workspace.refresh_seconds = 0.2
    session = app.workspace.session(get_procedure("carbonio"), answers(consul.url),
                                    root=app.workspace.root, dry_run=False)
    assert session.apply().outcome == "done"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("d")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#checks", DataTable)
        row = [c.step for c in app.screen.checks].index("policy")
        assert str(table.get_row_at(row)[:2][1]) == "done"
        first = app.screen.checks[row].checked_at
        assert first is not None
        assert str(table.get_row_at(row)[2]) == first.astimezone().strftime("%H:%M:%S")
        assert "every 0.2 s" in text_of(app.screen.query_one("#dash-summary", Static))

        policy = next(p for p in consul.policies.values()
                      if p["Name"] == "carbonio-gateway-policy")
        policy["Rules"] = 'key_prefix "" { policy = "write" }'
        for _ in range(100):  # the interval fires; wait for its worker, not for a time
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            if app.screen.checks[row].status.value == "drifted":
                break
        assert app.screen.checks[row].checked_at > first, "not checked again"
        assert app.screen.checks[row].status.value == "drifted", app.screen.checks[row]
