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
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from tui.statefile import peek_last_run, run_word

# Only annotations: home, the first paint, must not wait for pydantic and the engine.
if TYPE_CHECKING:
    from pydantic import BaseModel

    from tui.engine import Session
    from tui.procedure import Event, Procedure
    from tui.state import StateStore


@dataclass
class Workspace:
    """The app's shared context, handed to each screen explicitly (no global app lookups)."""

    directory: Path
    """The state directory (CLOUDRIG_STATE_DIR or the platform's)."""
    root: Path | None = None
    answers: dict[str, BaseModel] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    viewers: set[threading.Event] = field(default_factory=set)
    """Each progress screen's "stop viewing" event: set on quit (the runs go on)."""
    refresh_seconds: float = field(default_factory=lambda: refresh_from_env(os.environ))
    _store: StateStore | None = None

    @property
    def store(self) -> StateStore:
        """The state store, built on first use (it brings pydantic's models)."""
        if self._store is None:
            from tui.state import StateStore

            self._store = StateStore(self.directory)
        return self._store

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
        from tui.answers import secret_fields
        from tui.engine import Session
        from tui.secrets import SecretSource, open_store

        store = self.store
        secrets = SecretSource(
            procedure.id,
            secret_fields(procedure.answers_model),
            open_store=lambda: open_store(store.directory, False),
            overrides=self.secrets.get(procedure.id, {}),
            interactive=False,
        )
        return Session(
            procedure=procedure, answers=answers, secrets=secrets, store=store,
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
    from tui.answers import AnswersError, validate

    state = store.load(procedure.id)
    if state is None or not state.answers:
        return SavedRun(None, None, f"{procedure.title} has not been applied yet: "
                        "press Escape, then Enter on it to run its wizard.")
    try:
        answers = validate(procedure.answers_model, state.answers, "saved answers")
    except AnswersError as exc:
        return SavedRun(None, None, exc.sentence)
    return SavedRun(answers, Path(state.root) if state.root else None, None)


def state_word(directory: Path, procedure_id: str) -> str:
    """One word for the home screen, from the state file only (no checks, no models:
    home must be instant): "running" only while the run's process lives."""
    run = peek_last_run(directory, procedure_id)
    if run is None:
        return "not applied"
    word = run_word(run)
    if word == "running":
        return "running"
    if run.get("kind") == "teardown":
        return "removed" if word == "done" else str(word)
    return {"done": "done", "failed": "failed"}.get(str(word), "interrupted")
