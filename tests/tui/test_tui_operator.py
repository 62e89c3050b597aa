"""The operator's experience at 80×24 (issue 18), driven with keys as an operator would.

Nothing hidden (the log and the dashboard fit the real width, and re-fit it), one truth
on every screen (home, apply, dashboard, status say the same), every key findable (F1,
ctrl+p), nothing lost on leaving (drafts), a failure leads somewhere (r, e, f). Waits
are on workers and events, never on time. What is only true in a real terminal is in
tests/test_ssh_terminal.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
import threading
from pathlib import Path

import pytest
from fakes.consul import FakeConsul
from rich.console import Console
from textual.geometry import Region
from textual.widgets import DataTable, Input, Static, TextArea
from textual.worker import WorkerCancelled
from tui_helpers import answers, carbonio_on, consul, press

from screens.choice import ChoiceScreen
from screens.confirm import ConfirmScreen
from screens.dashboard import DashboardScreen
from screens.detail import DetailScreen
from screens.form import FormState, operator_text
from screens.help import HelpScreen, TooSmallScreen
from screens.home import HomeScreen
from screens.layout import fit_width
from screens.preview import PreviewScreen
from screens.procedure_table import ProcedureTable
from screens.progress import ProgressScreen
from screens.secret import SecretScreen
from screens.texts import DiffBlock, step_text
from screens.widgets import RunLog, Working, log_lines
from screens.wizard import WizardScreen
from screens.workspace import counts_text, state_word
from tui.answers import AnswersError, field_spec
from tui.app import CloudRigApp
from tui.drafts import draft_path
from tui.engine import StepView
from tui.errors import UsageError
from tui.model import Event
from tui.registry import REGISTRY, get_procedure
from tui.secrets import open_store
from tui.state import ProcedureState, RunRecord, StateStore, StepRecord

__all__ = ["consul"]  # the fixture, imported for pytest


def text_of(widget: Static) -> str:
    return str(widget.content)


def rows_of(widget: Static) -> list[str]:
    """The rows a Static renders at its current width (all of them, scrolled or not)."""
    size = widget.outer_size
    return [strip.text.rstrip() for strip in
            widget.render_lines(Region(0, 0, size.width, size.height))]


def words(text: str) -> list[str]:
    return text.split()


async def settle(app: CloudRigApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()


async def applied(app: CloudRigApp, pilot, consul: FakeConsul) -> ProgressScreen:  # type: ignore[no-untyped-def]
    progress = await carbonio_on(app, pilot, ProgressScreen, answers(consul.url))
    assert isinstance(progress, ProgressScreen)
    assert progress.result is not None and progress.result.outcome == "done", progress.result
    return progress


# ---------------------------------------------------------------- 1, 3: the log


LONG = ("Carbonio Files on the Files nodes reads its database credentials from Consul KV "
        "under carbonio-files/ and connects through the terminating gateway on port 20000")
URL = ("https://console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/"
       "quickcreate?templateURL=https%3A%2F%2Fexample.s3.amazonaws.com%2Fcc.yaml")


async def test_run_log_wraps_to_the_visible_width_and_rewraps(
        tmp_path: Path, consul: FakeConsul) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        progress = await applied(app, pilot, consul)
        # One entry point for events, whatever produced them.
        progress.show_event(Event(step="unit", kind="info", message=LONG))
        progress.show_event(Event(step="unit", kind="warning",
                                  message=f"open {URL} to launch the stack"))
        await pilot.pause()
        log = progress.query_one(RunLog)
        body = log.query_one(Static)
        logged = [m for m in progress.messages]

        def check(width_limit: int) -> list[str]:
            rows = rows_of(body)
            assert max(len(r) for r in rows) <= body.outer_size.width <= width_limit
            shown = " ".join(rows)
            joined = "".join(r.strip() for r in rows)
            for message in logged:
                for word in words(message):
                    assert word in shown or word in joined, (word, message)
            return rows

        narrow = check(80 - 4)
        # Laid out at the visible width (inside the log's border and scrollbar).
        assert body.outer_size.width == log.scrollable_content_region.width
        # The URL stands on lines of its own: it is never split between words.
        url_rows = [r.strip() for r in narrow if r.strip().startswith("https://")]
        assert url_rows and "".join(r.strip() for r in narrow).count(URL) == 1
        assert log_lines(progress.query_one(RunLog).text)  # (a Text splits without loss)

        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        await pilot.pause()
        wide = check(100 - 4)
        assert body.outer_size.width > 76 and len(wide) < len(narrow)  # re-wrapped

        # c copies the link (OSC 52); with several, the operator picks one.
        log.focus()
        await pilot.press("c")
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("enter")  # the newest first: the URL
        assert app.clipboard == URL

        # Below 80×24 a notice stands in for the screen; back at size, the screen again.
        await pilot.resize_terminal(60, 18)
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        assert "Terminal too small: 60×18" in text_of(app.screen.query_one("#too-small",
                                                                          Static))
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert app.screen is progress
        check(80 - 4)


def test_log_lines_put_each_url_on_its_own_line() -> None:
    from rich.text import Text

    parts = [t.plain for t in log_lines(Text(f"  open {URL} then press Enter"))]
    assert parts == ["  open", f"    {URL}", "    then press Enter"]


# ---------------------------------------------------------------- 2, 4, 5: the dashboard


async def test_dashboard_detail_fits_the_real_width_and_opens(
        tmp_path: Path, consul: FakeConsul) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        progress = await applied(app, pilot, consul)
        # The apply list says staged where --root left host commands unrun.
        steps = text_of(progress.query_one("#steps", Static))
        assert "◇ Service user and group" in steps and "staged" in steps
        outcome = text_of(progress.query_one("#outcome", Static))
        # Staged: the service user, the gateway token's owner and the unit.
        assert outcome.startswith("Done: 5 steps applied, 3 staged under --root"), outcome
        assert "2 need you" in outcome

        await pilot.press("d")
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await settle(app, pilot)
        table = dashboard.query_one("#checks", DataTable)

        def fits() -> int:
            inner = table.scrollable_content_region.width
            used = sum(c.get_render_width(table) for c in table.columns.values())
            assert used == inner, (used, inner)  # every column inside, nothing unused
            columns = list(table.columns.values())
            detail = columns[-1].width
            assert detail == fit_width(table, [c.width for c in columns[:-1]])
            return detail

        at_80 = fits()
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        await pilot.pause()
        assert fits() == at_80 + 20  # the 20 columns more go to the detail
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert fits() == at_80

        # Enter on a row: the step's whole detail.
        table.focus()
        await pilot.press("down", "enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        check = dashboard.checks[1]
        assert detail.text == check.detail and detail.title_text == check.title
        await pilot.press("escape")
        assert app.screen is dashboard

        # Home: the same counts, in the same words, as the dashboard's summary.
        summary = text_of(dashboard.query_one("#dash-summary", Static))
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        home_state = str(app.screen.query_one(ProcedureTable).rows[0].state)
        assert home_state == counts_text([c.status.value for c in dashboard.checks])
        assert summary.startswith(home_state + ";")


def test_home_words_for_failed_and_interrupted_runs(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert state_word(tmp_path, "carbonio") == "not applied"
    for outcome in ("failed", "interrupted", "running"):
        store.save(ProcedureState(procedure="carbonio", last_run=RunRecord(outcome=outcome)))
        assert state_word(tmp_path, "carbonio") == (
            "failed" if outcome == "failed" else "interrupted")
    steps = {"a": StepRecord(status="done", detail=""),
             "b": StepRecord(status="manual", detail=""),
             "c": StepRecord(status="manual", detail="")}
    store.save(ProcedureState(procedure="carbonio", steps=steps,
                              last_run=RunRecord(outcome="done", completed=list(steps))))
    assert state_word(tmp_path, "carbonio") == "1/3 · 2 need you"
    # A manual step the operator confirmed since (`cloudrig confirm`) is done, as its
    # check then says.
    state = store.load("carbonio")
    assert state is not None
    state.confirmations["b"] = steps["b"].at.replace(year=steps["b"].at.year + 1)
    store.save(state)
    assert state_word(tmp_path, "carbonio") == "2/3 · 1 need you"
    assert counts_text(["done"] * 10) == "10/10 done"


# ---------------------------------------------------------------- 6: unknown, secrets


async def test_unknown_checks_offer_the_secret_and_the_store_passphrase(
        tmp_path: Path, consul: FakeConsul, monkeypatch: pytest.MonkeyPatch) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await applied(app, pilot, consul)
        await pilot.press("escape")
        # A new session: no token in the environment, none typed, the store locked.
        monkeypatch.delenv("CLOUDRIG_SECRET_CONSUL_TOKEN")
        monkeypatch.setenv("CLOUDRIG_SECRETS_PASSPHRASE", "pass phrase 1")
        open_store(app.workspace.directory, False).set("carbonio.consul_token",
                                                      consul.management_token)
        monkeypatch.delenv("CLOUDRIG_SECRETS_PASSPHRASE")
        await pilot.press("d")
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await settle(app, pilot)
        statuses = {c.step: c.status.value for c in dashboard.checks}
        assert statuses["policy"] == "unknown" and "failed" not in statuses.values()
        policy = next(c for c in dashboard.checks if c.step == "policy")
        assert policy.needs == ["consul_token"]
        assert policy.detail.startswith("needs Consul management token")
        assert "s enters the secret" in text_of(dashboard.query_one("#dash-summary", Static))

        await pilot.press("s")
        ask = app.screen
        assert isinstance(ask, SecretScreen)
        assert ask.locked  # the store could unlock it: its passphrase is offered first
        await press(pilot, *"pass phrase 1", "ctrl+s")
        await settle(app, pilot)
        assert app.screen is dashboard
        statuses = {c.step: c.status.value for c in dashboard.checks}
        assert statuses["policy"] == "done", statuses
        assert app.workspace.passphrase == "pass phrase 1"
        assert "consul_token" not in app.workspace.secrets.get("carbonio", {})

        # Without the store: typed here, kept for the session only.
        app.workspace.passphrase = None
        await pilot.press("r")
        await settle(app, pilot)
        assert {c.step: c.status.value for c in dashboard.checks}["policy"] == "unknown"
        await pilot.press("s")
        await press(pilot, "tab", *consul.management_token, "ctrl+s")
        await settle(app, pilot)
        assert {c.step: c.status.value for c in dashboard.checks}["policy"] == "done"
    for path in app.workspace.directory.rglob("*"):
        if path.is_file() and path.name != "secrets.cfg":
            assert consul.management_token.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------- 7: where secrets go


async def test_secret_fields_say_where_their_value_goes(
        tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = CloudRigApp(procedure_id="carbonio", root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        where = text_of(app.screen.query_one("#box-consul_token .field-where", Static))
        assert where.startswith("Typed here: used for this session only, never saved")
        assert "`cloudrig secrets set consul_token` keeps it in the store" in where
        await pilot.press("escape")
    monkeypatch.setenv("CLOUDRIG_SECRET_CONSUL_TOKEN", "from-the-environment")
    app = CloudRigApp(procedure_id="carbonio", root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        where = text_of(app.screen.query_one("#box-consul_token .field-where", Static))
        assert where == ("From CLOUDRIG_SECRET_CONSUL_TOKEN (set in the environment): that "
                         "value is used, a value typed here is not.")
        box = app.screen.query_one("#box-consul_token")
        assert not box.required  # the environment has it: not required here


# ---------------------------------------------------------------- 8: keys and help


async def test_f1_lists_every_key_and_ctrl_p_goes_to_a_page(
        tmp_path: Path, state_dir: Path) -> None:
    app = CloudRigApp(procedure_id="carbonio", root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        await pilot.press("f1")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        listed = {(key, what) for _, key, what in help_screen.rows}
        for expected in (("^n", "Next"), ("^t", "Test connection"), ("esc", "Back"),
                         ("⏎", "Next field"), ("^q", "Quit"), ("tab", "Next field"),
                         ("^p", "palette")):
            assert any(key == expected[0] and expected[1].lower() in what.lower()
                       for key, what in listed), (expected, listed)
        assert any(where == "the focused field" for where, _, _ in help_screen.rows)
        await pilot.press("escape")
        assert app.screen is wizard

        # The command palette: go to a page by name.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await press(pilot, *"page 3")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, WizardScreen) and app.screen.index == 2
        assert [type(s).__name__ for s in app.screen_stack[1:]] == ["WizardScreen"] * 3


# ---------------------------------------------------------------- 10: drafts and quit


async def test_leaving_a_wizard_keeps_a_draft_offered_next_time(
        tmp_path: Path, state_dir: Path) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        assert isinstance(app.screen, WizardScreen)
        await press(pilot, "ctrl+a", "ctrl+k", *"http://10.1.2.3:8500", "tab", "tab",
                    *"typed-token")
        await pilot.press("ctrl+q")  # ctrl+q asks too
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, WizardScreen)
        await pilot.press("escape")  # page 1 with typed answers: asks
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        assert isinstance(app.screen, HomeScreen)
    path = draft_path(state_dir, "carbonio")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    kept = json.loads(path.read_text())
    assert kept["values"]["consul_url"] == "http://10.1.2.3:8500"
    assert b"typed-token" not in path.read_bytes()  # secrets are never drafted

    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        offer = app.screen
        assert isinstance(offer, ConfirmScreen) and "kept as a draft" in str(offer.question)
        await pilot.press("y")
        assert isinstance(app.screen, WizardScreen)
        assert app.screen.query_one("#field-consul_url", Input).value == "http://10.1.2.3:8500"
        assert app.screen.query_one("#field-consul_token", Input).value == ""
        await pilot.press("ctrl+q")  # nothing typed since: quits at once
    assert app.return_code == 0


async def test_ctrl_q_during_an_apply_cancels_it_then_exits_130(
        tmp_path: Path, state_dir: Path, consul: FakeConsul,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ctrl+q mid-apply asks (the run is a process of its own: leave it, or cancel it);
    cancelling takes Escape's path: the run stops at its next safe point, records
    interrupted, and the TUI exits with its code, 130."""
    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "900")
    hold = consul.hold("PUT", "/v1/catalog/register")
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.push_screen(ProgressScreen(app.workspace, get_procedure("carbonio"),
                                             answers(consul.url)))
        assert await asyncio.to_thread(hold.wait)
        await pilot.press("ctrl+q")
        choose = app.screen
        assert isinstance(choose, ChoiceScreen)
        assert [key for key, _label in choose.choices] == ["leave", "cancel"]
        await pilot.press("down", "enter")  # cancel the run, then quit
        await pilot.pause()
        hold.release()  # the held request ends; the next safe point stops the run
        # The viewer follows the run to its end, then the app exits with its code; the
        # exit cancels what workers remain, which the wait reports as WorkerCancelled
        # when the exit comes first (no ordering between the two is promised).
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
    assert app.return_code == 130
    saved = StateStore(state_dir).load("carbonio")
    assert saved is not None and saved.last_run is not None
    assert saved.last_run.outcome == "interrupted"


# ---------------------------------------------------------------- 11: after a failure


async def test_after_a_failure_e_edits_the_page_and_r_resumes(
        tmp_path: Path, consul: FakeConsul) -> None:
    consul.fail(403, "Permission denied: lacks permission 'acl:write'",
                path_prefix="/v1/acl/policy", method="PUT")
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        failed = await carbonio_on(app, pilot, ProgressScreen, answers(consul.url))
        assert isinstance(failed, ProgressScreen) and failed.result is not None
        assert failed.result.failed_step == "policy"
        assert "(r: resume, e: edit the answers)" in text_of(failed.query_one("#outcome",
                                                                             Static))
        assert failed.check_action("retry", ()) and failed.check_action("edit", ())
        await pilot.press("r")  # the fault was once: the rerun goes through
        rerun = app.screen
        assert isinstance(rerun, ProgressScreen) and rerun is not failed
        await settle(app, pilot)
        assert rerun.result is not None and rerun.result.outcome == "done"
        assert not rerun.check_action("retry", ())

    consul.fail(403, "Permission denied", path_prefix="/v1/acl/policy", method="PUT")
    app = CloudRigApp(root=tmp_path / "root2")
    another = answers(consul.url).model_copy(update={"gateway_name": "gw-two"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await carbonio_on(app, pilot, ProgressScreen, another)
        assert app.screen.result.failed_step == "policy"  # type: ignore[attr-defined]
        # The policy step uses the management token: its page is Consul access.
        await pilot.press("e")
        wizard = app.screen
        assert isinstance(wizard, WizardScreen) and wizard.index == 0
        assert wizard.query_one("#field-consul_url", Input).value == consul.url
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


async def test_preview_jumps_to_steps_and_offers_apply_only_when_planned(
        tmp_path: Path, consul: FakeConsul, monkeypatch: pytest.MonkeyPatch) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        preview = await carbonio_on(app, pilot, PreviewScreen, answers(consul.url))
        assert isinstance(preview, PreviewScreen)
        summary = text_of(preview.query_one("#plan-summary", Static))
        root = tmp_path / "root"
        # What apply will really do under --root, and where the files go.
        assert summary.startswith(f"Staging under {root}: files are written there")
        assert "commands to run (" in summary and "not run under --root)" in summary
        assert summary.endswith("Press a to apply.")
        plan = "\n".join(str(s.content) for s in preview.query(".plan-step").results(Static))
        assert "skip useradd -r -M -g carbonio-gateway" in plan
        assert "(not run: --root" in plan and "skipped: dry run" not in plan
        await pilot.press("g")
        choose = app.screen
        assert isinstance(choose, ChoiceScreen)
        assert [label.strip() for _, label in choose.choices][:2] == [
            "Management token", "Service user and group"]
        await pilot.press("end", "enter")
        await pilot.pause()
        scroller = preview.query_one("#plan")
        assert scroller.scroll_y > 0  # at the last step
        assert not preview.check_action("next_problem", ())

    # A step that cannot be planned: x jumps to it, apply is not offered.
    from tui.errors import OperatorError
    from tui.procedures.carbonio import steps as carbonio_steps

    def refuses(self, ctx):  # type: ignore[no-untyped-def]
        raise OperatorError("Consul refused to read the catalog (403)")

    monkeypatch.setattr(carbonio_steps.GatewayConfig, "plan", refuses)
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        preview = await carbonio_on(app, pilot, PreviewScreen, answers(consul.url))
        assert "1 step cannot be planned (x: next, f: fix)." in text_of(
            preview.query_one("#plan-summary", Static))
        assert not preview.check_action("apply", ())
        await pilot.press("a")
        assert app.screen is preview
        await pilot.press("x")
        await pilot.pause()
        assert preview.problem_at == next(i for i, v in enumerate(preview.views or [])
                                          if v.error)


async def test_planning_shows_a_spinner_with_its_time(
        tmp_path: Path, consul: FakeConsul, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.engine import Session

    inside, release = threading.Event(), threading.Event()
    real_plan = Session.plan

    def held(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        inside.set()
        release.wait(30)
        return real_plan(self, *args, **kwargs)

    monkeypatch.setattr(Session, "plan", held)
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.push_screen(PreviewScreen(app.workspace, get_procedure("carbonio"),
                                            answers(consul.url)))
        assert await asyncio.to_thread(inside.wait, 30)
        working = app.screen.query_one("#planning", Working)
        assert working.display and working.what == "Planning 10 steps…"
        assert str(working.content).endswith(" s")  # spinner, what, seconds so far
        release.set()
        await settle(app, pilot)
        assert not working.display


# ---------------------------------------------------------------- 12: honest labels


def test_diff_lines_keep_their_gutter_when_wrapped() -> None:
    long_line = "+" + "x" * 70
    console = Console(width=40, color_system=None, record=True)
    console.print(DiffBlock(f"--- a\n+++ a\n@@ -1 +1 @@\n-old\n{long_line}\n"))
    rows = console.export_text().splitlines()
    added = [r for r in rows if "x" in r]
    assert len(added) == 2 and all(r.startswith("    +") for r in added), rows
    assert "".join(r[5:] for r in added) == "x" * 70


def test_user_data_shows_as_text_in_the_preview() -> None:
    body = json.dumps({"id": "vm-1", "userdata": "#cloud-config\nhostname: web-1\n"})
    plain = step_text(StepView.model_validate({
        "step": "userdata", "title": "The instance's user data", "error": None, "items": [
            {"kind": "api", "method": "GET", "url": "http://cs/client/api",
             "description": "set it", "body": body, "skipped": None}]})).plain
    assert "userdata: |\n        #cloud-config\n        hostname: web-1" in plain


def test_wizard_texts_name_answers_by_their_titles() -> None:
    """No answers-file key of another field in what the wizard shows; page titles and
    step titles read as words."""
    for procedure_id in REGISTRY:
        procedure = get_procedure(procedure_id)
        model = procedure.answers_model
        keys = [n for n in model.model_fields if "_" in n]
        for page in procedure.pages:
            shown = operator_text(page.help, model)
            assert not [k for k in keys if k in shown.split()], (procedure_id, page.title)
            for name in page.fields:
                help_text = operator_text(field_spec(model, name).help, model, name)
                leftover = [k for k in keys if k != name and (
                    f"<{k}>" in help_text or f" {k} " in f" {help_text} ")]
                assert not leftover, (procedure_id, name, leftover)
        for step in procedure.steps:  # a title, not the step's id
            assert step.title != step.id, (procedure_id, step.title)
    carbonio = get_procedure("carbonio")
    assert [p.title for p in carbonio.pages][1:4] == [
        "Gateway name and directory", "The external service", "TLS to the database"]
    assert operator_text("when consul_url is https", carbonio.answers_model) == (
        "when ‹Consul HTTP API› is https")


# ---------------------------------------------------------------- 13: editors, modes


async def test_cloudstack_iso_mode_skips_the_api_pages_and_edits_user_data_as_lines(
        tmp_path: Path, state_dir: Path) -> None:
    procedure = get_procedure("cloudstack")
    form = FormState.start(procedure)
    assert form.pages() == [0, 1, 2, 3]  # update (the default): no config drive page
    form.set("mode", "iso")
    assert form.pages() == [0, 3, 4]
    app = CloudRigApp(procedure_id="cloudstack", root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("space", "down", "enter")  # mode: iso
        assert app.screen.form.values["mode"] == "iso"  # type: ignore[attr-defined]
        await pilot.press("ctrl+n")
        wizard = app.screen
        assert isinstance(wizard, WizardScreen) and wizard.page.title == "User data"
        assert "2/3 User data" in text_of(wizard.query_one(".titlebar", Static))
        area = wizard.query_one("#field-user_data", TextArea)
        area.focus()
        await press(pilot, *"#cloud-config", "enter", *"hostname: web-1")
        assert area.text == "#cloud-config\nhostname: web-1"
        assert "Enter: new line" in text_of(wizard.query_one("#page-status", Static))
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, WizardScreen) and app.screen.page.title == "Config drive"
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, WizardScreen) and app.screen.index == 0


async def test_test_connection_on_the_credentials_page(
        tmp_path: Path, state_dir: Path, consul: FakeConsul,
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = CloudRigApp(procedure_id="carbonio", root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await press(pilot, "ctrl+a", "ctrl+k", *consul.url, "ctrl+t")
        await settle(app, pilot)
        status = text_of(app.screen.query_one("#page-status", Static))
        assert status == (f"✓ Consul at {consul.url} answered; the management token is valid "
                          "(policies: global-management)")
        monkeypatch.setenv("CLOUDRIG_SECRET_CONSUL_TOKEN", "00000000-0000-0000-0000-0000000000aa")
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        status = text_of(app.screen.query_one("#page-status", Static))
        assert status.startswith("✗ ") and "token" in status.lower(), status
        assert "00000000-0000-0000-0000-0000000000aa" not in status


# ---------------------------------------------------------------- 14: invalid answers


async def test_wizard_opens_on_invalid_answers_with_them_marked(
        tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("consul_url: http://127.0.0.1:8500\nexternal_address: db.example.com\n"
                   "external_port: 70000\ndb_name: files\n")
    seen: dict[str, object] = {}
    monkeypatch.setattr("tui.app.run_app", lambda **kwargs: seen.update(kwargs) or 0)
    assert cli.main(["wizard", "carbonio", "--answers", str(bad)]) == 0  # not exit 2
    raw = seen["raw_answers"]
    assert isinstance(raw, tuple) and raw[0]["external_port"] == 70000
    assert {p.field for p in raw[1]} == {"external_port", "db_username"}

    app = CloudRigApp(procedure_id="carbonio", raw_answers=raw, root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        wizard = app.screen
        assert isinstance(wizard, WizardScreen) and wizard.index == 2  # the first problem
        assert len(app.screen_stack) == 4  # home, pages 1 and 2 beneath
        error = text_of(wizard.query_one("#error-external_port", Static))
        assert error.startswith("✗ Database port: ") and "65535" in error
        assert "2 problems" in text_of(wizard.query_one("#page-status", Static))
        await pilot.press("ctrl+n")
        assert app.screen is wizard  # still marked: Next refuses
        wizard.query_one("#field-external_port", Input).focus()
        await press(pilot, "ctrl+a", "ctrl+k", *"5432", "ctrl+n")
        assert isinstance(app.screen, WizardScreen) and app.screen.index == 3


def test_secrets_in_a_file_still_exit_before_any_screen(tmp_path: Path, state_dir: Path
                                                        ) -> None:
    from tui import cli

    bad = tmp_path / "secret.yaml"
    bad.write_text("consul_token: s3cret\n")
    with pytest.raises(UsageError) as caught:
        cli.cmd_tui(cli.build_parser().parse_args(["wizard", "carbonio", "--answers",
                                                   str(bad)]))
    assert "secrets never go in answers files" in str(caught.value)
    assert not isinstance(caught.value, AnswersError)

