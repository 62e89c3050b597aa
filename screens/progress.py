"""Progress: a viewer of a run that is a process of its own.

Apply from the TUI always runs detached (tui/detach.py): this screen asks for what the
run needs (its secrets come from the wizard, the environment or the store), starts it,
then follows its events journal in a thread worker, posting them as messages
(`post_message` is thread-safe). Every event reaches the screen through one method,
`show_event`, whatever produced it. Quitting the TUI or losing the SSH link leaves
the run going; opening `cloudrig` again shows it running on home, and Enter attaches
a new viewer with the whole log so far. Cancelling sends the run SIGINT: it stops at
its next safe point, records `interrupted`, and a rerun resumes. ctrl+q during a run
asks: leave it going (and quit), or cancel it (the Escape path) and quit with its
code, 130.

After a failure or an interruption, `r` runs the apply again (it resumes: done steps
are skipped once their checks say so) and `e` opens the wizard on the page whose
answers the failing step uses.
"""

from __future__ import annotations

import contextlib
import threading
from typing import cast

from pydantic import BaseModel
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from screens.choice import ChoiceScreen
from screens.confirm import ConfirmScreen
from screens.dashboard import DashboardScreen
from screens.form import page_for_problem
from screens.keybar import KeyBar
from screens.styles import stylesheets
from screens.texts import event_text, mark_text
from screens.widgets import RunLog, TitleBar
from screens.workspace import Navigator, Workspace, saved_run
from tui.answers import public_answers
from tui.detach import cancel, launch, order_for
from tui.drafts import drop_draft
from tui.engine import RunResult, Session
from tui.errors import OperatorError
from tui.journal import RunStart, follow, journal_path
from tui.model import Event, Procedure
from tui.redact import redact
from tui.words import plural

# Event kinds → the step's mark in the list.
MARK_OF_EVENT = {"start": "running", "done": "done", "manual": "manual", "staged": "staged",
                 "skipped": "resumed", "failed": "failed"}

# What ctrl+q offers while a run goes on.
LEAVE, CANCEL = "leave", "cancel"


class ProgressScreen(Screen):
    CSS_PATH = stylesheets("progress")
    BINDINGS = [
        Binding("escape,ctrl+c", "cancel", "Cancel"),
        Binding("r", "retry", "Resume"),
        Binding("e", "edit", "Edit answers"),
        Binding("d", "dashboard", "Dashboard"),
        Binding("escape", "home", "Home"),
    ]
    HELP = ("The apply, step by step, and its log. The run is a process of its own: "
            "ctrl+q may leave it going (home or `cloudrig attach` follows it again). "
            "Escape cancels after the current item; what is done stays done and a rerun "
            "resumes from there.")

    class Started(Message):
        """The run's `run` record: who runs it and its steps."""

        def __init__(self, header: RunStart) -> None:
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
        yield KeyBar()

    def on_mount(self) -> None:
        if self.answers is not None:
            drop_draft(self.workspace.directory, self.procedure.id)  # the answers are in state
        log = self.query_one(RunLog)
        log.on_copy = self._copy
        log.focus()  # the keys that scroll it work at once
        self.workspace.viewers.add(self.stop_viewing)
        self.app.run_worker(self._view, thread=True, exit_on_error=False, group="apply",
                            name=f"apply {self.procedure.id}")

    def on_unmount(self) -> None:
        self.stop_viewing.set()  # the run goes on; only this viewer ends
        self.workspace.viewers.discard(self.stop_viewing)

    def _view(self) -> RunResult | None:
        """Runs in the worker thread: never touches widgets. Starts the run (with
        answers), then follows its journal to its end."""
        if self.session is not None:
            try:
                try:
                    order = order_for(self.session, passphrase=self.workspace.passphrase)
                finally:
                    self.session.close()
                self.pid = launch(order)
            except OperatorError as exc:  # e.g. a secret no source could give, the lock
                return self._finish(RunResult(outcome="failed", message=redact(exc.sentence)))
        path = journal_path(self.workspace.directory, self.procedure.id)
        for record in follow(path, stop=self.stop_viewing):
            kind = record.get("type")
            if kind == "run":
                self.post_message(self.Started(RunStart.from_record(record)))
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
        self.pid = header.pid if header.pid is not None else self.pid
        if header.steps:  # a new viewer of a run: its own list of steps
            self.titles = dict(header.steps)
            self.marks = {step: self.marks.get(step, "waiting") for step in self.titles}
            self.query_one("#steps", Static).update(self._steps_text())
        if self.running:
            self.query_one("#outcome", Static).update(
                f"Applying in the background (pid {self.pid}): Escape cancels after the "
                "current item; ctrl+q may leave it running.")

    def on_progress_screen_run_event(self, message: RunEvent) -> None:
        self.show_event(message.event)

    def show_event(self, event: Event) -> None:
        """The one entry point for a run's events (live, or read back from the journal):
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
            self.workspace.stop_viewers()
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
        """ctrl+q while the run goes on: leave it going (it is a process of its own)
        and quit, or cancel it as Escape does and quit with its code (130) once it has
        stopped at its safe point; Escape stays."""
        if not self.running:
            return False

        def chosen(choice: str | None) -> None:
            if choice == LEAVE:
                self.workspace.stop_viewers()
                self.app.exit(0)
            elif choice == CANCEL and self.running:
                self._cancel(quit_after=True)

        self.app.push_screen(ChoiceScreen(
            "The apply goes on in a process of its own. Quit how?",
            [(LEAVE, "Quit, leave the run going (home or `cloudrig attach` follows it)"),
             (CANCEL, "Cancel the run, then quit (it stops after the current item; what "
                      "is done stays done)")]), chosen)
        return True

    def action_cancel(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes and self.running:
                self._cancel(quit_after=False)

        self.app.push_screen(
            ConfirmScreen("Cancel the run? It stops after the current item; what is done "
                          "stays done and a rerun resumes from there."),
            answered,
        )

    def _cancel(self, quit_after: bool) -> None:
        """Ask the run to stop at its next safe point (SIGINT to its process)."""
        try:
            asked = cancel(self.workspace.directory, self.procedure.id)
        except OperatorError as exc:
            self.notify(exc.sentence, severity="error")
            return
        self.quit_when_stopped = quit_after
        self.query_one("#outcome", Static).update(
            "Cancelling: the run stops after the current item…" if asked else
            "The run is no longer going; waiting for its last events…")

    def _answers(self) -> BaseModel | None:
        """The run's answers: those this screen started it with, or (a viewer attached
        later) those its state recorded."""
        if self.answers is not None:
            return self.answers
        return saved_run(self.workspace.store, self.procedure).answers

    def action_retry(self) -> None:
        """Apply again with the same answers: the engine resumes after what is done."""
        answers = self._answers()
        if answers is None:
            self.notify("The last run's answers cannot be read back; open the wizard.",
                        severity="error")
            return
        self.app.switch_screen(ProgressScreen(self.workspace, self.procedure, answers))

    def action_edit(self) -> None:
        """Back to the wizard, on the page whose answers the failing step uses."""
        answers = self._answers()
        if answers is None:
            self.notify("The last run's answers cannot be read back; open the wizard.",
                        severity="error")
            return
        result = self.result
        fields: list[str] = []
        if result is not None and result.failed_step in self.titles:
            step = self.procedure.step(result.failed_step)
            fields = list(getattr(step, "fields", ()) or ())
            if self.session is not None:
                with contextlib.suppress(Exception):
                    fields += sorted(step.needs_secrets(self.session.context(step)))
        page = page_for_problem(self.procedure, public_answers(answers),
                                result.message or "" if result else "", fields)
        cast(Navigator, self.app).open_wizard_at(
            self.workspace, self.procedure, answers, page)

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
        if self.answers is not None:
            self.app.push_screen(DashboardScreen(self.workspace, self.procedure, self.answers,
                                                 self.workspace.root))
            return
        saved = saved_run(self.workspace.store, self.procedure)
        self.app.push_screen(DashboardScreen(self.workspace, self.procedure, saved.answers,
                                             saved.root, saved.problem))

    def palette_commands(self) -> list[tuple[str, str, object]]:
        log = self.query_one(RunLog)
        return [("Toggle wrap", "Wrap the log's lines, or not", log.action_toggle_wrap),
                ("Copy a link or command", "From the log to the clipboard (OSC 52)",
                 log.action_copy)]
