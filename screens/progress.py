"""Progress: apply runs in a thread worker; its events arrive as messages.

The worker lives on the App (it must not die with a screen) and reports only
through `post_message`, which is thread-safe. Cancelling sets the session's cancel
event: the engine stops between plan items, saves state, and a rerun resumes.
"""

from __future__ import annotations

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
from screens.workspace import Workspace
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
        self.workspace.running.discard(self.session.ctx.cancel)
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
                self.session.ctx.cancel.set()
                self.query_one("#outcome", Static).update(
                    "Cancelling: the run stops after the current item…")

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
        self.app.push_screen(
            DashboardScreen(self.workspace, self.procedure, self.answers, self.workspace.root)
        )
