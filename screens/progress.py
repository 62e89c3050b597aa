"""Progress: apply runs in a thread worker; its events arrive as messages.

The worker lives on the App (it must not die with a screen) and reports only
through `post_message`, which is thread-safe. Every event reaches the screen through
one method, `show_event`, whatever produced it. Cancelling sets the session's cancel
event: the engine stops between plan items, saves state, and a rerun resumes.

After a failure or an interruption, `r` runs the apply again (it resumes: done steps
are skipped once their checks say so) and `e` opens the wizard on the page whose
answers the failing step uses.
"""

from __future__ import annotations

import contextlib

from pydantic import BaseModel
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from screens.choice import ChoiceScreen
from screens.confirm import ConfirmScreen
from screens.dashboard import DashboardScreen
from screens.form import page_for_problem
from screens.texts import event_text, mark_text
from screens.widgets import RunLog, TitleBar
from screens.workspace import Workspace
from tui.answers import public_answers
from tui.engine import RunResult, Session
from tui.errors import OperatorError
from tui.procedure import Event, Procedure
from tui.redact import redact
from tui.words import plural

# Event kinds → the step's mark in the list.
MARK_OF_EVENT = {"start": "running", "done": "done", "manual": "manual", "staged": "staged",
                 "skipped": "resumed", "failed": "failed"}


class ProgressScreen(Screen):
    BINDINGS = [
        Binding("escape,ctrl+c", "cancel", "Cancel"),
        Binding("r", "retry", "Resume"),
        Binding("e", "edit", "Edit answers"),
        Binding("d", "dashboard", "Dashboard"),
        Binding("escape", "home", "Home"),
    ]
    HELP = ("The apply, step by step, and its log. Escape cancels after the current "
            "item; what is done stays done and a rerun resumes from there.")

    class RunEvent(Message):
        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    class Finished(Message):
        def __init__(self, result: RunResult) -> None:
            super().__init__()
            self.result = result

    def __init__(self, workspace: Workspace, procedure: Procedure, answers: BaseModel) -> None:
        super().__init__()
        self.workspace = workspace
        self.procedure = procedure
        self.answers = answers
        self.session: Session = workspace.session(
            procedure, answers, root=workspace.root, dry_run=False,
            on_event=lambda event: self.post_message(self.RunEvent(event)),
        )
        self.marks = {step.id: "waiting" for step in self.session.active_steps()}
        self.titles = {step.id: step.title for step in self.session.active_steps()}
        self.result: RunResult | None = None
        self.messages: list[str] = []
        self.quit_when_stopped = False

    @property
    def running(self) -> bool:
        return self.result is None

    def compose(self) -> ComposeResult:
        yield TitleBar(self.procedure.title, "apply")
        yield Static(self._steps_text(), id="steps")
        yield RunLog(id="log")
        waiting = Static("", id="waiting", markup=False)
        waiting.display = False
        yield waiting
        yield Static("Applying… Escape cancels after the current item.", id="outcome",
                     markup=False)
        yield Footer()

    def on_mount(self) -> None:
        from tui.drafts import drop_draft

        drop_draft(self.workspace.directory, self.procedure.id)  # the answers are in state
        log = self.query_one(RunLog)
        log.on_copy = self._copy
        log.focus()  # the keys that scroll it work at once
        self.workspace.running.add(self.session.ctx.cancel)
        self.app.run_worker(self._apply, thread=True, exit_on_error=False, group="apply",
                            name=f"apply {self.procedure.id}")

    def _apply(self) -> RunResult:
        """Runs in the worker thread: never touches widgets."""
        try:
            result = self.session.apply()
        except OperatorError as exc:  # e.g. a secret no source could give: one sentence
            result = RunResult(outcome="failed", message=redact(exc.sentence))
        except Exception as exc:  # Session.apply turns step errors into results already
            result = RunResult(outcome="failed", message=redact(f"internal error: {exc}"))
        self.post_message(self.Finished(result))
        return result

    # ------------------------------------------------------------ updates

    def _steps_text(self) -> Text:
        width = max((len(title) for title in self.titles.values()), default=0)
        lines = [mark_text(state, self.titles[step], width)
                 for step, state in self.marks.items()]
        return Text("\n").join(lines)

    def _waiting(self, text: str) -> None:
        line = self.query_one("#waiting", Static)
        line.update(text)
        line.display = bool(text)

    def on_progress_screen_run_event(self, message: RunEvent) -> None:
        self.show_event(message.event)

    def show_event(self, event: Event) -> None:
        """The one entry point for a run's events (live from the worker, or read back):
        the step's mark, the live wait line, and the log."""
        # One live line for the wait under way, rewritten at every poll (the log keeps
        # only its changes); whatever happens next ends the wait.
        self._waiting(event.message if event.kind == "poll" else "")
        if event.kind == "poll":
            return
        if event.step in self.marks:
            state = MARK_OF_EVENT.get(event.kind)
            if state:
                self.marks[event.step] = state
                self.query_one("#steps", Static).update(self._steps_text())
        self.messages.append(event.message)
        self.query_one(RunLog).write(event_text(event.kind, event.message))

    def on_progress_screen_finished(self, message: Finished) -> None:
        self.show_result(message.result)

    def show_result(self, result: RunResult) -> None:
        """How the run ended: the outcome line, and the keys that apply now."""
        self.result = result
        self.workspace.running.discard(self.session.ctx.cancel)
        self._waiting("")
        outcome = self.query_one("#outcome", Static)
        if result.outcome == "done":
            words = list(result.steps.values())
            staged, waiting = words.count("staged"), words.count("manual")
            applied = len(self.marks) - staged - waiting
            parts = [f"Done: {plural(applied, 'step')} applied"]
            if staged:
                parts.append(f"{staged} staged under --root (◇: run their host commands "
                             "on the target host)")
            if waiting:
                parts.append(f"{waiting} need you (◆, see the log)")
            style = "bold cyan" if staged or waiting else "bold green"
            outcome.update(Text(", ".join(parts) + ". Press d for the dashboard.",
                                style=style))
        else:
            if result.failed_step in self.marks and result.outcome == "interrupted":
                self.marks[result.failed_step] = "interrupted"
                self.query_one("#steps", Static).update(self._steps_text())
            step = self.titles.get(result.failed_step or "", result.failed_step or "the run")
            first = (result.message or "").splitlines()[0] if result.message else ""
            style = "bold yellow" if result.outcome == "interrupted" else "bold red"
            outcome.update(Text(f"{result.outcome.capitalize()} at {step}: {first} "
                                "(r: resume, e: edit the answers)", style=style))
        self.refresh_bindings()
        if self.quit_when_stopped:
            self.app.exit(result.exit_code, return_code=result.exit_code)

    # ------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running
        if action in ("dashboard", "home"):
            return not self.running
        if action in ("retry", "edit"):
            return self.result is not None and self.result.outcome != "done"
        return True

    def request_quit(self) -> bool:
        """ctrl+q while the run goes on: the same question as Escape; once the run has
        stopped at its safe point the app exits with the run's code (130)."""
        if not self.running:
            return False
        self._ask_cancel(quit_after=True)
        return True

    def action_cancel(self) -> None:
        self._ask_cancel(quit_after=False)

    def _ask_cancel(self, quit_after: bool) -> None:
        def answered(yes: bool | None) -> None:
            if yes and self.running:
                self.quit_when_stopped = quit_after
                self.session.ctx.cancel.set()
                self.query_one("#outcome", Static).update(
                    "Cancelling: the run stops after the current item…")

        then = " CloudRig then quits." if quit_after else ""
        self.app.push_screen(
            ConfirmScreen("Cancel the run? It stops after the current item; what is done "
                          f"stays done and a rerun resumes from there.{then}"),
            answered,
        )

    def action_retry(self) -> None:
        """Apply again with the same answers: the engine resumes after what is done."""
        self.app.switch_screen(ProgressScreen(self.workspace, self.procedure, self.answers))

    def action_edit(self) -> None:
        """Back to the wizard, on the page whose answers the failing step uses."""
        from screens.wizard import open_wizard_at

        result = self.result
        fields: list[str] = []
        if result is not None and result.failed_step in self.titles:
            step = self.procedure.step(result.failed_step)
            fields = list(getattr(step, "fields", ()) or ())
            with contextlib.suppress(Exception):
                fields += sorted(step.needs_secrets(self.session.ctx))
        page = page_for_problem(self.procedure, public_answers(self.answers),
                                result.message or "" if result else "", fields)
        open_wizard_at(self.app, self.workspace, self.procedure, self.answers, page)

    def _copy(self, links: list[str]) -> None:
        if not links:
            self.notify("No link or command in the log yet.")
            return
        if len(links) == 1:
            self._copied(links[0])
            return
        self.app.push_screen(
            ChoiceScreen("Copy which one? (to the terminal's clipboard)",
                         [(str(i), link) for i, link in enumerate(links)]),
            lambda key: self._copied(links[int(key)]) if key is not None else None)

    def _copied(self, link: str) -> None:
        self.app.copy_to_clipboard(link)
        self.notify(f"Copied: {link}", timeout=4)

    def action_home(self) -> None:
        while len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_dashboard(self) -> None:
        self.action_home()
        self.app.push_screen(
            DashboardScreen(self.workspace, self.procedure, self.answers, self.workspace.root)
        )

    def palette_commands(self) -> list[tuple[str, str, object]]:
        log = self.query_one(RunLog)
        return [("Toggle wrap", "Wrap the log's lines, or not", log.action_toggle_wrap),
                ("Copy a link or command", "From the log to the clipboard (OSC 52)",
                 log.action_copy)]
