"""Preview: everything apply would do, planned in a thread (planning may ask remotes).

Files show their final path, action, mode, owner and a coloured unified diff
against what is on disk under the app's root; then commands, API calls and manual
items. Nothing is changed here: the Session is a dry run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from screens.progress import ProgressScreen
from screens.texts import plan_summary, step_text
from screens.widgets import TitleBar
from screens.workspace import Workspace
from tui.procedure import Procedure
from tui.redact import redact


class PreviewScreen(Screen):
    BINDINGS = [
        Binding("a", "apply", "Apply"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, workspace: Workspace, procedure: Procedure, answers: BaseModel) -> None:
        super().__init__()
        self.workspace = workspace
        self.procedure = procedure
        self.answers = answers
        self.views: list[dict[str, Any]] | None = None

    def compose(self) -> ComposeResult:
        yield TitleBar(self.procedure.title, "preview")
        yield Static("Planning…", id="plan-summary", markup=False)
        yield VerticalScroll(id="plan")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#plan").focus()
        self.run_worker(self._plan, thread=True, exit_on_error=False, group="preview",
                        exclusive=True, name="plan")

    def _plan(self) -> list[dict[str, Any]]:
        session = self.workspace.session(self.procedure, self.answers,
                                         root=self.workspace.root, dry_run=True)
        return session.plan_view(session.plan())

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "preview":
            return
        summary = self.query_one("#plan-summary", Static)
        if event.state is WorkerState.ERROR:
            summary.update(f"Cannot plan: {redact(str(event.worker.error))}")
            summary.add_class("-error")
        elif event.state is WorkerState.SUCCESS:
            self.views = event.worker.result
            assert self.views is not None
            errors = sum(1 for step in self.views if step["error"])
            text = plan_summary(self.views)
            if errors:
                text += f"; {errors} step(s) cannot be planned"
                summary.add_class("-error")
            summary.update(text + ". Press a to apply.")
            plan = self.query_one("#plan", VerticalScroll)
            await plan.mount_all(
                Static(step_text(step), classes="plan-step") for step in self.views
            )

    def action_apply(self) -> None:
        if self.views is None:
            return
        if any(step["error"] for step in self.views):
            self.notify("Some steps cannot be planned; fix their cause first.", severity="error")
            return
        self.app.push_screen(ProgressScreen(self.workspace, self.procedure, self.answers))

    def action_back(self) -> None:
        self.app.pop_screen()
