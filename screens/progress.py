"""Progress: a viewer of a run that is a process of its own.

Apply from the TUI always runs detached (tui/detach.py): this screen asks for what the
run needs (its secrets come from the wizard, the environment or the store), starts it,
then follows its events journal in a thread worker, posting them as messages
(`post_message` is thread-safe). Quitting the TUI or losing the SSH link leaves the
run going; opening `cloudrig` again shows it running on home, and Enter attaches a
new viewer with the whole log so far. Cancelling sends the run SIGINT: it stops at
its next safe point, records `interrupted`, and a rerun resumes.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from screens.confirm import ConfirmScreen
from screens.dashboard import DashboardScreen
from screens.texts import event_text, mark_text
from screens.widgets import TitleBar
from screens.workspace import Workspace, saved_run
from tui.engine import RunResult, Session
from tui.errors import OperatorError
from tui.procedure import Event, Procedure
from tui.redact import redact


class ProgressScreen(Screen):
    BINDINGS = [
        Binding("escape,ctrl+c", "cancel", "Cancel"),
        Binding("d", "dashboard", "Dashboard"),
        Binding("escape", "home", "Home"),
    ]

    class Started(Message):
        """The run's `run` record: who runs it and its steps."""

        def __init__(self, header: dict[str, Any]) -> None:
            super().__init__()
            self.header = header

    class RunEvent(Message):
        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    class Finished(Message):
        def __init__(self, result: RunResult) -> None:
            super().__init__()
            self.result = result

    def __init__(self, workspace: Workspace, procedure: Procedure,
                 answers: BaseModel | None = None) -> None:
        """With ANSWERS, start an apply and follow it; without, attach to the procedure's
        running (or last) run."""
        super().__init__()
        self.workspace = workspace
        self.procedure = procedure
        self.answers = answers
        self.session: Session | None = None
        steps = list(procedure.steps)
        if answers is not None:
            self.session = workspace.session(procedure, answers, root=workspace.root,
                                             dry_run=False)
            steps = self.session.active_steps()
        self.marks = {step.id: "waiting" for step in steps}
        self.titles = {step.id: step.title for step in steps}
        self.result: RunResult | None = None
        self.messages: list[str] = []
        self.pid: int | None = None
        self.stop_viewing = threading.Event()

    @property
    def running(self) -> bool:
        return self.result is None

    def compose(self) -> ComposeResult:
        yield TitleBar(self.procedure.title, "apply")
        yield Static(self._steps_text(), id="steps")
        yield RichLog(id="log", wrap=True, markup=False, highlight=False)
        waiting = Static("", id="waiting", markup=False)
        waiting.display = False
        yield waiting
        yield Static("Applying… Escape cancels after the current item.", id="outcome",
                     markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.workspace.viewers.add(self.stop_viewing)
        self.app.run_worker(self._view, thread=True, exit_on_error=False, group="apply",
                            name=f"apply {self.procedure.id}")

    def on_unmount(self) -> None:
        self.stop_viewing.set()  # the run goes on; only this viewer ends
        self.workspace.viewers.discard(self.stop_viewing)

    def _view(self) -> RunResult | None:
        """Runs in the worker thread: never touches widgets. Starts the run (with
        answers), then follows its journal to its end."""
        from tui.journal import follow, journal_path

        if self.session is not None:
            from tui.detach import launch, order_for

            try:
                try:
                    order = order_for(self.session)
                finally:
                    self.session.ctx.close()
                self.pid = launch(order)
            except OperatorError as exc:  # e.g. a secret no source could give, the lock
                return self._finish(RunResult(outcome="failed", message=redact(exc.sentence)))
        path = journal_path(self.workspace.directory, self.procedure.id)
        for record in follow(path, stop=self.stop_viewing):
            kind = record.get("type")
            if kind == "run":
                self.post_message(self.Started(record))
            elif kind == "event":
                self.post_message(self.RunEvent(Event.model_validate(record)))
            elif kind == "end":
                return self._finish(RunResult(
                    outcome=record.get("outcome", "interrupted"),
                    failed_step=record.get("failed_step"), message=record.get("message"),
                    steps=record.get("steps") or {}))
        if self.stop_viewing.is_set():
            return None
        return self._finish(RunResult(outcome="failed", message=(
            f"{self.procedure.id} has no run to follow here yet")))

    def _finish(self, result: RunResult) -> RunResult:
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

    def on_progress_screen_started(self, message: Started) -> None:
        header = message.header
        self.pid = header.get("pid") if isinstance(header.get("pid"), int) else self.pid
        steps = [tuple(pair) for pair in header.get("steps") or [] if len(pair) == 2]
        if steps:  # a new viewer of a run: its own list of steps
            self.titles = {str(step): str(title) for step, title in steps}
            self.marks = {step: self.marks.get(step, "waiting") for step in self.titles}
            self.query_one("#steps", Static).update(self._steps_text())
        if self.running:
            self.query_one("#outcome", Static).update(
                f"Applying in the background (pid {self.pid}): Escape cancels after the "
                "current item; ctrl+q leaves it running.")

    def on_progress_screen_run_event(self, message: RunEvent) -> None:
        event = message.event
        # One live line for the wait under way, rewritten at every poll (the log keeps
        # only its changes); whatever happens next ends the wait.
        self._waiting(event.message if event.kind == "poll" else "")
        if event.kind == "poll":
            return
        if event.step in self.marks:
            state = {"start": "running", "done": "done", "manual": "manual",
                     "skipped": "resumed", "failed": "failed"}.get(event.kind)
            if state:
                self.marks[event.step] = state
                self.query_one("#steps", Static).update(self._steps_text())
        self.messages.append(event.message)
        self.query_one("#log", RichLog).write(event_text(event.kind, event.message))

    def on_progress_screen_finished(self, message: Finished) -> None:
        result = self.result = message.result
        self._waiting("")
        outcome = self.query_one("#outcome", Static)
        if result.outcome == "done" and result.waiting:
            outcome.update(Text(f"Done: {len(self.marks) - len(result.waiting)} steps applied, "
                                f"{len(result.waiting)} need you (◆, see the log). "
                                "Press d for the dashboard.", style="bold cyan"))
        elif result.outcome == "done":
            outcome.update(Text(f"Done: {len(self.marks)} steps applied. "
                                "Press d for the dashboard.", style="bold green"))
        else:
            if result.failed_step in self.marks and result.outcome == "interrupted":
                self.marks[result.failed_step] = "interrupted"
                self.query_one("#steps", Static).update(self._steps_text())
            step = self.titles.get(result.failed_step or "", result.failed_step or "the run")
            first = (result.message or "").splitlines()[0] if result.message else ""
            style = "bold yellow" if result.outcome == "interrupted" else "bold red"
            outcome.update(Text(f"{result.outcome.capitalize()} at {step}: {first}",
                                style=style))
        self.refresh_bindings()

    # ------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running
        if action in ("dashboard", "home"):
            return not self.running
        return True

    def action_cancel(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes and self.running:
                from tui.detach import cancel

                try:
                    asked = cancel(self.workspace.directory, self.procedure.id)
                except OperatorError as exc:
                    self.notify(exc.sentence, severity="error")
                    return
                self.query_one("#outcome", Static).update(
                    "Cancelling: the run stops after the current item…" if asked else
                    "The run is no longer going; waiting for its last events…")

        self.app.push_screen(
            ConfirmScreen("Cancel the run? It stops after the current item; what is done "
                          "stays done and a rerun resumes from there."),
            answered,
        )

    def action_home(self) -> None:
        while len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_dashboard(self) -> None:
        self.action_home()
        if self.answers is not None:
            self.app.push_screen(DashboardScreen(self.workspace, self.procedure, self.answers,
                                                 self.workspace.root))
            return
        saved = saved_run(self.workspace.store, self.procedure)
        self.app.push_screen(DashboardScreen(self.workspace, self.procedure, saved.answers,
                                             saved.root, saved.problem))
