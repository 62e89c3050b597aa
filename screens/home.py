"""Home: every registered procedure and where it stands; Enter runs its wizard.

The State column says what the dashboard would say of the last apply, from the state
file alone (home must paint at once): "7/10 · 3 need you", "failed", "interrupted".
A procedure whose run is going on (detached: the TUI that started it may be gone)
reads "running"; Enter or d on it attaches to the run instead.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from screens.confirm import ConfirmScreen
from screens.keybar import KeyBar
from screens.procedure_table import PADDING, ProcedureTable, Row
from screens.texts import status_text
from screens.workspace import Workspace, saved_run, state_word
from tui.drafts import drop_draft, load_draft
from tui.registry import REGISTRY, get_procedure

# The other screens (and the engine behind them) are imported when first opened:
# home is the first paint, and it needs only the registry and the state files.


class HomeScreen(Screen):
    BINDINGS = [
        Binding("d", "dashboard", "Dashboard"),
    ]
    HELP = "Choose a procedure: Enter opens its wizard, d its dashboard."

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self._shown: tuple[tuple[str, ...], int] | None = None
        """The state words and State column width the table shows (None: not built)."""

    def compose(self) -> ComposeResult:
        # The summary is the first procedure's: the cursor starts there.
        yield Static("CloudRig · cloud integration runbooks", classes="titlebar")
        yield Static("Choose a procedure. Its wizard asks the runbook's questions, "
                     "previews every change, then applies it.", classes="intro")
        yield ProcedureTable(("Procedure", "Title", "State"), id="procedures")
        first = next(iter(REGISTRY.values()), None)
        yield Static(first.summary if first else "", id="summary", markup=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_states()

    def on_screen_resume(self) -> None:
        self.refresh_states()

    def on_resize(self) -> None:
        self.refresh_states()

    def refresh_states(self) -> None:
        """The table, rebuilt only when a state word or the room for them changed
        (mount, resume and every resize ask)."""
        table = self.query_one(ProcedureTable)
        rows = [(info, state_word(self.workspace.directory, info.id))
                for info in REGISTRY.values()]
        id_width = max([len(info.id) for info, _ in rows] + [len("Procedure")])
        title_width = max((len(info.title) for info, _ in rows), default=5)
        # The state takes what is left of the real width (wrapping, never cut).
        widest = max((len(word) for _, word in rows), default=5)
        room = table.size.width - id_width - title_width - 6 * PADDING
        state_width = min(widest, max(11, room))
        shown = (tuple(word for _, word in rows), state_width)
        if shown == self._shown:
            return
        self._shown = shown
        table.show([Row(info.id, info.title, status_text(word)) for info, word in rows],
                   (id_width, title_width, state_width))

    def _highlighted(self) -> str | None:
        table = self.query_one(ProcedureTable)
        return table.rows[table.cursor].key if table.rows else None

    def _show_summary(self) -> None:
        procedure_id = self._highlighted()
        summary = REGISTRY[procedure_id].summary if procedure_id else "No procedures installed."
        shown = self.query_one("#summary", Static)
        if shown.content != summary:  # an update lays the screen out again
            shown.update(summary)

    def on_procedure_table_highlighted(self, event: ProcedureTable.Highlighted) -> None:
        self._show_summary()

    def on_procedure_table_selected(self, event: ProcedureTable.Selected) -> None:
        if not self.attach(event.key):
            self.open_wizard(event.key)

    def attach(self, procedure_id: str) -> bool:
        """A procedure with a run going on: follow it (its log so far, then live) instead
        of opening its wizard or dashboard. Whether it was running."""
        if state_word(self.workspace.directory, procedure_id) != "running":
            return False
        from screens.progress import ProgressScreen  # deferred: start-up (pydantic)

        self.app.push_screen(ProgressScreen(self.workspace, get_procedure(procedure_id)))
        return True

    def open_wizard(self, procedure_id: str) -> None:
        """The procedure's wizard, from a kept draft when the operator wants it."""
        draft = None
        if procedure_id not in self.workspace.answers:  # answers given: no draft offer
            draft = load_draft(self.workspace.directory, procedure_id)
        if draft is None:
            self._start_wizard(procedure_id, None)
            return

        when = draft.saved.astimezone().strftime("%Y-%m-%d %H:%M")

        def answered(yes: bool | None) -> None:
            if not yes:
                drop_draft(self.workspace.directory, procedure_id)
            self._start_wizard(procedure_id, draft.values if yes else None)

        self.app.push_screen(ConfirmScreen(
            f"{REGISTRY[procedure_id].title}: answers you typed on {when} were kept as a "
            "draft. Continue from them? (n starts from the last applied answers and "
            "drops the draft)"), answered)

    def _start_wizard(self, procedure_id: str, draft: dict[str, object] | None) -> None:
        from screens.form import FormState  # deferred: start-up (pydantic)
        from screens.wizard import open_wizard_at  # deferred: start-up (pydantic)

        procedure = get_procedure(procedure_id)
        state = self.workspace.store.load(procedure_id)
        form = FormState.start(
            procedure,
            given=self.workspace.answers.get(procedure_id),
            saved=draft if draft is not None else (state.answers if state else None),
            secrets=self.workspace.secrets.get(procedure_id),
            raw=self.workspace.raw_answers.get(procedure_id),
        )
        # Problems from an answers file: open on the first page with one, the pages
        # before it beneath (Escape goes back through them).
        open_wizard_at(self.app, self.workspace, procedure, None, form.first_problem_page(),
                       form=form)

    def action_dashboard(self) -> None:
        from screens.dashboard import DashboardScreen  # deferred: start-up (pydantic)

        procedure_id = self._highlighted()
        if procedure_id is None or self.attach(procedure_id):
            return
        procedure = get_procedure(procedure_id)
        saved = saved_run(self.workspace.store, procedure)
        self.app.push_screen(
            DashboardScreen(self.workspace, procedure, saved.answers, saved.root, saved.problem)
        )
