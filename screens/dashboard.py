"""Dashboard: every step's check, run concurrently in a thread so the screen stays live.

Checks ask the host and the remote APIs where each step stands right now; state is
never taken as the truth here. They run again every `Workspace.refresh_seconds`
(CLOUDRIG_REFRESH, default 60; 0 turns it off) and on `r`, and each row says when
its check ran, so a stale answer is never mistaken for a fresh one.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from screens.texts import status_text
from screens.widgets import TitleBar
from screens.workspace import Workspace
from tui.engine import StepCheck
from tui.procedure import Procedure
from tui.redact import redact

STATUS_WIDTH = 7  # "drifted", the longest status
CHECKED_WIDTH = 8  # HH:MM:SS


def clock_text(moment: datetime | None) -> str:
    """A check's time on this host's clock (the operator's frame of reference)."""
    return moment.astimezone().strftime("%H:%M:%S") if moment else "—"


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        workspace: Workspace,
        procedure: Procedure,
        answers: BaseModel | None,
        root: Path | None,
        problem: str | None = None,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.procedure = procedure
        self.answers = answers
        self.root = root
        self.problem = problem
        self.checks: list[StepCheck] = []

    def compose(self) -> ComposeResult:
        yield TitleBar(self.procedure.title, "dashboard")
        yield Static(self.problem or "", id="dash-summary", markup=False)
        yield DataTable(id="checks", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        if self.problem:
            self.query_one("#dash-summary").add_class("-error")
        self.action_refresh()
        if self.workspace.refresh_seconds > 0 and self.answers is not None:
            self.set_interval(self.workspace.refresh_seconds, self._recheck_on_timer,
                              name="dashboard refresh")

    def _recheck_on_timer(self) -> None:
        # Never pile up: a slow API keeps one check run at a time. Quietly: the table
        # and its summary stay readable until the new results replace them.
        if not any(w.group == "dashboard" and w.is_running for w in self.workers):
            self.action_refresh(quiet=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "refresh":
            return self.answers is not None
        return True

    def action_refresh(self, quiet: bool = False) -> None:
        if self.answers is None:
            return
        if not quiet:
            count = len(self.procedure.steps)
            self.query_one("#dash-summary", Static).update(f"Checking {count} steps…")
        self.run_worker(self._check, thread=True, exit_on_error=False, group="dashboard",
                        exclusive=True, name="checks")

    def _check(self) -> list[StepCheck]:
        assert self.answers is not None
        session = self.workspace.session(self.procedure, self.answers, root=self.root,
                                         dry_run=True)
        return session.check()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "dashboard":
            return
        summary = self.query_one("#dash-summary", Static)
        if event.state is WorkerState.ERROR:
            summary.update(f"Cannot check: {redact(str(event.worker.error))}")
            summary.add_class("-error")
        elif event.state is WorkerState.SUCCESS:
            self.show(event.worker.result or [])

    def show(self, checks: list[StepCheck]) -> None:
        self.checks = checks
        table = self.query_one("#checks", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        # Fit the screen: long titles and details wrap inside their cells (80 columns).
        title_width = min(max((len(c.title) for c in checks), default=10), 22)
        detail_width = max(20, table.size.width - title_width - STATUS_WIDTH
                           - CHECKED_WIDTH - 9)
        table.add_column("Step", width=title_width, key="step")
        table.add_column("Status", width=STATUS_WIDTH, key="status")
        table.add_column("Checked", width=CHECKED_WIDTH, key="checked")
        table.add_column("Detail", width=detail_width, key="detail")
        for check in checks:
            table.add_row(Text(check.title), status_text(check.status.value),
                          Text(clock_text(check.checked_at), style="dim"),
                          Text(check.detail), key=check.step, height=None)
        if checks:
            table.move_cursor(row=min(max(row, 0), len(checks) - 1))
        done = sum(1 for c in checks if c.status.value == "done")
        summary = self.query_one("#dash-summary", Static)
        summary.remove_class("-error")
        every = self.workspace.refresh_seconds
        again = f"checked again every {every:g} s; r now" if every > 0 else "r checks again"
        summary.update(f"{done} of {len(checks)} steps done; {again}.")

    def action_back(self) -> None:
        self.app.pop_screen()
