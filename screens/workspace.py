"""What every screen shares: the state store, the --root, and secrets typed this session.

Kept free of Textual so the rules (which root, which secrets, what a state word is)
are plain functions. Secrets typed in the wizard live only in `Workspace.secrets`
(memory) and reach the engine as SecretSource overrides; they are never saved.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from tui.secrets import SecretSource, env_name, open_store
from tui.statefile import peek_state, run_word

# Only annotations: home, the first paint, must not wait for pydantic and the engine.
if TYPE_CHECKING:
    from pydantic import BaseModel

    from tui.answers import FieldProblem
    from tui.engine import Session
    from tui.model import Event, Procedure
    from tui.state import StateStore


class Navigator(Protocol):
    """Screens the wizard leads to (preview, progress) go back to it through the app
    (tui/app.py's CloudRigApp), not by importing it: the wizard imports the preview,
    and screens/ keeps no import circle (scripts/import_cycles.py screens)."""

    def open_wizard_at(self, workspace: Workspace, procedure: Procedure,
                       answers: BaseModel | None, index: int) -> None: ...


@dataclass
class Workspace:
    """The app's shared context, handed to each screen explicitly (no global app lookups)."""

    directory: Path
    """The state directory (CLOUDRIG_STATE_DIR or the platform's)."""
    root: Path | None = None
    answers: dict[str, BaseModel] = field(default_factory=dict)
    raw_answers: dict[str, tuple[dict[str, Any], list[FieldProblem]]] = field(
        default_factory=dict)
    """Answers a file gave that do not validate, with their problems (`cloudrig wizard
    PROC --answers FILE`): the wizard opens with those fields marked."""
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    viewers: set[threading.Event] = field(default_factory=set)
    """Each progress screen's "stop viewing" event: set on quit (the runs go on)."""
    passphrase: str | None = None
    """The file secret store's passphrase, typed in the TUI this session (memory only)."""
    refresh_seconds: float = field(default_factory=lambda: refresh_from_env(os.environ))
    _store: StateStore | None = None

    @property
    def store(self) -> StateStore:
        """The state store, built on first use (it brings pydantic's models)."""
        if self._store is None:
            from tui.state import StateStore  # deferred: start-up (pydantic)

            self._store = StateStore(self.directory)
        return self._store

    def secret_source(self, procedure: Procedure, typed: bool = True) -> SecretSource:
        """Secrets from the environment, the wizard (TYPED), then the store; never a
        prompt: the TUI owns the terminal."""
        from tui.answers import secret_fields  # deferred: start-up (pydantic)

        directory = self.store.directory
        passphrase = self.passphrase
        return SecretSource(
            procedure.id,
            secret_fields(procedure.answers_model),
            open_store=lambda: open_store(directory, False, passphrase=passphrase),
            overrides=self.secrets.get(procedure.id, {}) if typed else {},
            interactive=False,
        )

    def secret_where(self, procedure: Procedure, name: str) -> str:
        """Where a secret field's value comes from now, and where one typed here goes."""
        variable = env_name(name)
        if os.environ.get(variable):
            return (f"From {variable} (set in the environment): that value is used, "
                    "a value typed here is not.")
        source = self.secret_source(procedure, typed=False)
        if source.available(name):
            return ("In the secret store: leave it empty to use that; a value typed here is "
                    "used for this session only.")
        locked = " (the secret store is locked: s on the dashboard unlocks it)" \
            if source.store_problem else ""
        return (f"Typed here: used for this session only, never saved{locked}. "
                f"`cloudrig secrets set {name}` keeps it in the store.")

    def session(
        self,
        procedure: Procedure,
        answers: BaseModel,
        *,
        root: Path | None,
        dry_run: bool,
        on_event: Callable[[Event], None] | None = None,
    ) -> Session:
        """A Session whose secrets come from the environment, the wizard, then the store
        (never a prompt: there is no terminal to prompt on under a TUI)."""
        from tui.engine import Session  # deferred: start-up (pydantic)

        return Session(
            procedure=procedure, answers=answers, secrets=self.secret_source(procedure),
            store=self.store,
            root=root, dry_run=dry_run, on_event=on_event or (lambda event: None),
        )

    def stop_viewers(self) -> None:
        """Stop following runs (on quit): each run is a process of its own and goes on."""
        for stop in list(self.viewers):
            stop.set()


def refresh_from_env(environ: Mapping[str, str]) -> int:
    """The dashboard's refresh interval: CLOUDRIG_REFRESH seconds (0: never), default 60;
    a value that is not a whole number of seconds falls back to the default."""
    raw = environ.get("CLOUDRIG_REFRESH", "").strip()
    return int(raw) if raw.isdigit() else 60


class SavedRun(NamedTuple):
    """The answers and root of the last apply, or why there are none."""

    answers: BaseModel | None
    root: Path | None
    problem: str | None


def saved_run(store: StateStore, procedure: Procedure) -> SavedRun:
    """What the dashboard checks when opened from home: the last applied answers."""
    from tui.answers import AnswersError, validate  # deferred: start-up (pydantic)

    state = store.load(procedure.id)
    if state is None or not state.answers:
        return SavedRun(None, None, f"{procedure.title} has not been applied yet: "
                        "press Escape, then Enter on it to run its wizard.")
    try:
        answers = validate(procedure.answers_model, state.answers, "saved answers")
    except AnswersError as exc:
        return SavedRun(None, None, exc.sentence)
    return SavedRun(answers, Path(state.root) if state.root else None, None)


# How counts read, in the order they are listed after "done/total".
COUNTED = (("manual", "need you"), ("staged", "staged"), ("pending", "pending"),
           ("drifted", "drifted"), ("unknown", "unknown"), ("failed", "failed"))


def counts_text(statuses: list[str]) -> str:
    """Where a procedure's steps stand, in the words home and the dashboard share:
    "10/10 done", "7/10 · 3 need you", "6/10 · 2 staged · 2 need you"."""
    total = len(statuses)
    done = statuses.count("done")
    if total and done == total:
        return f"{done}/{total} done"
    parts = [f"{done}/{total}"]
    parts += [f"{statuses.count(status)} {words}" for status, words in COUNTED
              if statuses.count(status)]
    return " · ".join(parts)


def state_word(directory: Path, procedure_id: str) -> str:
    """Where a procedure stands for the home screen, from its state file only (no
    checks, no models: home must be instant): "running" only while the run's process
    lives; the last run's outcome; after a finished apply the same counts the
    dashboard shows."""
    state = peek_state(directory, procedure_id)
    run = state.get("last_run") if state else None
    if not isinstance(run, dict):
        return "not applied"
    word = run_word(run)
    if word == "running":
        return "running"
    if run.get("kind") == "teardown":
        return "removed" if word == "done" else str(word)
    if word != "done":
        return "failed" if word == "failed" else "interrupted"
    assert state is not None
    return counts_text(recorded_statuses(state, [str(s) for s in run.get("completed") or []]))


def recorded_statuses(state: dict[str, object], steps: list[str]) -> list[str]:
    """Each step's recorded status; a manual step the operator confirmed since is done
    (as its check then says: `cloudrig confirm`)."""
    records = state.get("steps") if isinstance(state.get("steps"), dict) else {}
    confirmations = (state.get("confirmations")
                     if isinstance(state.get("confirmations"), dict) else {})
    assert isinstance(records, dict) and isinstance(confirmations, dict)
    found = []
    for step in steps:
        found_record = records.get(step)
        record = found_record if isinstance(found_record, dict) else {}
        status = str(record.get("status", "pending"))
        confirmed = confirmations.get(step)
        if status == "manual" and confirmed:
            try:
                if datetime.fromisoformat(str(confirmed)) >= datetime.fromisoformat(
                        str(record.get("at"))):
                    status = "done"
            except ValueError:
                pass
        found.append(status)
    return found
