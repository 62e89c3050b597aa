"""Dashboard: every step's check, run concurrently in a thread so the screen stays live.

Checks ask the host and the remote APIs where each step stands right now; state is
never taken as the truth here. They run again every `Workspace.refresh_seconds`
(CLOUDRIG_REFRESH, default 60; 0 turns it off) and on `r`, and each row says when
its check ran, so a stale answer is never mistaken for a fresh one.

`a` offers the procedure's operator actions (`Procedure.actions`, e.g. rotate a
token): what the chosen one will do is shown in the confirm screen, and it runs
only on `y`, in a thread, then the checks run again.

Enter on a row shows the step's whole detail. A check that needs a secret not at
hand says "unknown — needs …": `s` asks for it here (this session only), and a
locked secret store can be unlocked with its passphrase, since the TUI owns the
terminal.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from screens.choice import ChoiceScreen
from screens.confirm import ConfirmScreen
from screens.detail import DetailScreen
from screens.keybar import KeyBar
from screens.layout import fit_width
from screens.secret import SecretScreen
from screens.texts import PlanText, status_text, step_text
from screens.widgets import TitleBar, Working
from screens.workspace import Workspace, counts_text
from tui.engine import RunResult, StepCheck
from tui.engine.reports import last_run_view
from tui.model import Action, Procedure
from tui.redact import redact
from tui.state import StateStore
from tui.words import plural

STATUS_WIDTH = 7  # "drifted", "unknown", the longest statuses
CHECKED_WIDTH = 8  # HH:MM:SS
TITLE_WIDTH = 22  # at most: long titles wrap in their cell


def clock_text(moment: datetime | None) -> str:
    """A check's time on this host's clock (the operator's frame of reference)."""
    return moment.astimezone().strftime("%H:%M:%S") if moment else "—"


class ChecksTable(DataTable):
    """The checks; Enter shows a row's whole detail."""

    BINDINGS = [Binding("enter", "select_cursor", "Detail")]


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("a", "actions", "Actions"),
        Binding("s", "secrets", "Enter secret"),
        Binding("escape", "back", "Back"),
    ]
    HELP = ("Where every step stands now, from its check on this host and the remote "
            "APIs (not from what CloudRig remembers). Enter shows a step's detail.")

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
        self.note = ""  # how the last action ended: kept under the summary across checks

    def compose(self) -> ComposeResult:
        yield TitleBar(self.procedure.title, "dashboard")
        yield Static(self.problem or "", id="dash-summary", markup=False)
        yield Working(id="checking")
        yield ChecksTable(id="checks", cursor_type="row")
        yield KeyBar()

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
        if action == "actions":  # hidden for procedures without actions
            return bool(self.procedure.actions) and self.answers is not None
        if action == "secrets":  # only when a check is waiting for one
            return any(c.needs for c in self.checks)
        return True

    def action_refresh(self, quiet: bool = False) -> None:
        if self.answers is None:
            return
        if not quiet:
            count = len(self.procedure.steps)
            self.query_one("#checking", Working).start(f"Checking {plural(count, 'step')}…")
        self.run_worker(self._check, thread=True, exit_on_error=False, group="dashboard",
                        exclusive=True, name="checks")

    def _check(self) -> list[StepCheck]:
        assert self.answers is not None
        session = self.workspace.session(self.procedure, self.answers, root=self.root,
                                         dry_run=True)
        return session.check()

    # ------------------------------------------------------------ actions

    def action_actions(self) -> None:
        actions = self.procedure.actions
        if self.answers is None or not actions:
            return
        if len(actions) == 1:
            self._plan_action(actions[0].id)
            return
        choices = [(a.id, f"{a.title}: {a.help}") for a in actions]
        self.app.push_screen(ChoiceScreen(f"{self.procedure.title}: which action?", choices),
                             self._plan_action)

    def _plan_action(self, action_id: str | None) -> None:
        if action_id is None:
            return
        action = self.procedure.action(action_id)
        self.run_worker(lambda: self._describe(action), thread=True, exit_on_error=False,
                        group="action-plan", exclusive=True, name=action.id)

    def _describe(self, action: Action) -> tuple[Action, PlanText | None, str | None]:
        """The confirm question with what the action will do, or why it cannot."""
        assert self.answers is not None
        session = self.workspace.session(self.procedure, self.answers, root=self.root,
                                         dry_run=False)
        try:
            planned = session.action_plan(action)
            question = action.confirmation(session.context(action))
        finally:
            session.close()
        if planned.error:
            return action, None, planned.error
        text = PlanText().append(question + "\n\n", style="bold")
        text.add(step_text(session.plan_view([planned])[0]))
        return action, text, None

    def _run_action(self, action: Action) -> RunResult:
        assert self.answers is not None
        session = self.workspace.session(self.procedure, self.answers, root=self.root,
                                         dry_run=False)
        return session.run_action(action)

    def _action_planned(self, planned: tuple[Action, PlanText | None, str | None]) -> None:
        action, question, problem = planned
        if question is None:
            self._say(f"{action.title}: cannot plan: {problem}", error=True)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                self._say(f"{action.title}: not run.")
                return
            self._say(f"{action.title}: running…")
            self.run_worker(lambda: self._run_action(action), thread=True, exit_on_error=False,
                            group="action-run", exclusive=True, name=action.id)

        self.app.push_screen(ConfirmScreen(question), answered)

    def _action_ran(self, name: str, result: RunResult) -> None:
        action = self.procedure.action(name)
        ended = "done" if result.outcome == "done" else f"{result.outcome}: {result.message}"
        self.note = redact(f"\n{action.title}: {ended}")
        self._say(self.note.strip(), error=result.outcome != "done")
        self.action_refresh(quiet=True)

    def _say(self, message: str, error: bool = False) -> None:
        summary = self.query_one("#dash-summary", Static)
        summary.update(redact(message))
        summary.set_class(error, "-error")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group = event.worker.group
        if group in ("action-plan", "action-run"):
            if event.state is WorkerState.ERROR:
                error = event.worker.error
                self._say(f"{event.worker.name}: {getattr(error, 'sentence', error)}",
                          error=True)
            elif event.state is WorkerState.SUCCESS:
                result = event.worker.result
                assert result is not None  # both workers return a value
                if group == "action-plan":
                    self._action_planned(result)
                else:
                    self._action_ran(event.worker.name, result)
            return
        if group != "dashboard":
            return
        summary = self.query_one("#dash-summary", Static)
        if event.state in (WorkerState.ERROR, WorkerState.SUCCESS):
            self.query_one("#checking", Working).stop()
        if event.state is WorkerState.ERROR:
            summary.update(f"Cannot check: {redact(str(event.worker.error))}")
            summary.add_class("-error")
        elif event.state is WorkerState.SUCCESS:
            self.show(event.worker.result or [])

    def on_resize(self) -> None:
        if self.checks:
            self.show(self.checks)

    def show(self, checks: list[StepCheck]) -> None:
        self.checks = checks
        table = self.query_one("#checks", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        # Fit the real width (the table keeps its scrollbar's gutter, so a scrollbar
        # appearing later takes nothing from the text): long titles and details wrap
        # inside their cells, at 80 columns or 200.
        title_width = min(max((len(c.title) for c in checks), default=10), TITLE_WIDTH)
        detail_width = max(12, fit_width(table, [title_width, STATUS_WIDTH, CHECKED_WIDTH]))
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
        summary = self.query_one("#dash-summary", Static)
        summary.remove_class("-error")
        every = self.workspace.refresh_seconds
        again = f"checked again every {every:g} s; r now" if every > 0 else "r checks again"
        counts = counts_text([c.status.value for c in checks])
        needs = "; s enters the secret a check needs" if any(c.needs for c in checks) else ""
        summary.update(f"{counts}; {again}{needs}." + self.note + self._run_note())
        self.refresh_bindings()

    def _run_note(self) -> str:
        """The last run, when it is going on or was cut short: "running (pid N on HOST
        since HH:MM)" only while its process lives, else "interrupted"."""
        state = StateStore(self.workspace.directory).load(self.procedure.id)
        run = last_run_view(state.last_run if state else None)
        if run is None or run.outcome not in ("running", "interrupted"):
            return ""
        return f"\nLast run: {run.detail}."

    # ------------------------------------------------------------ detail and secrets

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        check = next((c for c in self.checks if c.step == event.row_key.value), None)
        if check is None:
            return

        self.app.push_screen(DetailScreen(
            check.title, f"{check.status.value} · checked {clock_text(check.checked_at)}",
            check.detail))

    def action_secrets(self) -> None:
        """Ask for the secrets the unknown checks need (and the store's passphrase
        when it is locked); kept for this session only, then the checks run again."""
        needs = list(dict.fromkeys(n for c in self.checks for n in c.needs))
        if not needs:
            return
        source = self.workspace.secret_source(self.procedure)
        source.available(needs[0])  # opens the store: is it locked?
        locked = bool(source.store_problem) and "passphrase" in (source.store_problem or "")
        fields = [(name, self._title(name)) for name in needs]

        def entered(values: dict[str, str] | None) -> None:
            if not values:
                return
            passphrase = values.pop("", None)
            if passphrase:
                self.workspace.passphrase = passphrase
            typed = {k: v for k, v in values.items() if v}
            self.workspace.secrets.setdefault(self.procedure.id, {}).update(typed)
            self.action_refresh()

        self.app.push_screen(SecretScreen(
            f"{self.procedure.title}: secrets the checks need. Kept in memory for this "
            "session only, never saved.", fields, locked), entered)

    def _title(self, name: str) -> str:
        info = self.procedure.answers_model.model_fields.get(name)
        return info.title if info is not None and info.title else name

    def action_back(self) -> None:
        self.app.pop_screen()
