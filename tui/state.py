"""Progress and answers store: what the dashboard shows and what a rerun resumes from.

State is a cache of what CloudRig last did and saw, never the truth: checks ask
the host and the remote APIs. It holds answers without secrets, the --root of the
last apply, each step's last result, and how the last run ended. One JSON file per
procedure under `$CLOUDRIG_STATE_DIR` (default: the platform's user state dir).

Beside it, `<procedure>.owned.json` records what CloudRig created (files created or
replaced, remote ids, accessors, keys: `tui.model.Ownership`), written the moment
something is created, so teardown removes only that. It is a file of its own because
it is not a cache: losing it means teardown no longer knows what is CloudRig's.
Every write is atomic; a full or read-only disk is one sentence naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tui.atomic import atomic_write, make_dirs
from tui.files import state_write_failure
from tui.model import Ownership, Status
from tui.runlock import brief_lock
from tui.statefile import state_dir, state_path

__all__ = [
    "ActionRecord",
    "ProcedureState",
    "RunRecord",
    "StateStore",
    "StepRecord",
    "answers_digest",
    "now",
    "state_dir",
]


def now() -> datetime:
    return datetime.now(UTC)


class StepRecord(BaseModel):
    status: Status
    detail: str
    at: datetime = Field(default_factory=now)


class RunRecord(BaseModel):
    kind: Literal["apply", "teardown"] = "apply"
    started: datetime = Field(default_factory=now)
    # Which process runs it: a record still "running" whose process is gone (SIGKILL,
    # a reboot) reads "interrupted" (tui/runlock.py `alive`), never "running".
    pid: int | None = None
    host: str | None = None
    process_start: int | None = None
    finished: datetime | None = None
    outcome: Literal["running", "done", "failed", "interrupted"] = "running"
    failed_step: str | None = None
    message: str | None = None
    answers_digest: str = ""
    completed: list[str] = []


class ActionRecord(BaseModel):
    """How an operator action (`cloudrig action`) last ended, and when."""

    outcome: Literal["done", "failed", "interrupted"]
    detail: str
    at: datetime = Field(default_factory=now)


class ProcedureState(BaseModel):
    procedure: str
    answers: dict[str, Any] = {}
    root: str | None = None
    steps: dict[str, StepRecord] = {}
    last_run: RunRecord | None = None
    confirmations: dict[str, datetime] = {}
    actions: dict[str, ActionRecord] = {}

    def resumable(self, digest: str) -> list[str]:
        """Steps completed by an unfinished run with the same answers.

        A run still marked "running" was killed before it could record its end (SIGKILL,
        a dropped SSH session, a reboot during a long poll): it resumes like an
        interrupted one. Skipping is safe either way: the engine skips a completed
        step only when its check says it is done right now."""
        run = self.last_run
        unfinished = ("failed", "interrupted", "running")
        if run and run.outcome in unfinished and run.answers_digest == digest:
            return list(run.completed)
        return []


def answers_digest(answers: dict[str, Any], root: str | None) -> str:
    blob = json.dumps({"answers": answers, "root": root}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class StateStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or state_dir()

    def path(self, procedure_id: str) -> Path:
        return state_path(self.directory, procedure_id)

    @property
    def log_path(self) -> Path:
        return self.directory / "cloudrig.log"

    def load(self, procedure_id: str) -> ProcedureState | None:
        try:
            return ProcedureState.model_validate_json(self.path(procedure_id).read_text())
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError):
            # A damaged cache is not fatal: checks ask the host and the remotes.
            return None

    def save(self, state: ProcedureState) -> None:
        """Write STATE whole (under the brief lock: never beside another's write)."""
        self.ensure_directory()
        with brief_lock(self.directory, state.procedure):
            self._write_state(state)

    def _write_state(self, state: ProcedureState) -> None:
        self._write(self.path(state.procedure), state.model_dump_json(indent=2).encode())

    def owned_path(self, procedure_id: str) -> Path:
        return self.directory / f"{procedure_id}.owned.json"

    def load_owned(self, procedure_id: str) -> Ownership | None:
        """What CloudRig recorded creating for PROCEDURE_ID; None when there is no
        record (never applied here, or applied before records were kept)."""
        try:
            return Ownership.model_validate_json(self.owned_path(procedure_id).read_text())
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError):
            return None  # unreadable: as good as none (teardown keeps what it cannot tell)

    def save_owned(self, procedure_id: str, ownership: Ownership) -> None:
        self._write(self.owned_path(procedure_id),
                    ownership.model_dump_json(indent=2).encode())

    def ensure_directory(self) -> None:
        try:
            make_dirs(self.directory, 0o700)
        except OSError as exc:
            raise self._failure(exc, self.directory) from None

    def _write(self, path: Path, data: bytes) -> None:
        self.ensure_directory()
        try:
            atomic_write(path, data, 0o600)
        except OSError as exc:
            raise self._failure(exc, path) from None

    @staticmethod
    def _failure(exc: OSError, path: Path) -> Exception:
        return state_write_failure(exc, path)

    def update(self, procedure_id: str,
               change: Callable[[ProcedureState], None]) -> ProcedureState:
        """Reload, CHANGE, save, under the brief lock: each writer changes only what is
        its own (a run its steps and last_run, `confirm` a confirmation), so a
        confirmation made during an apply survives the apply's next save."""
        self.ensure_directory()
        with brief_lock(self.directory, procedure_id):
            state = self.load(procedure_id) or ProcedureState(procedure=procedure_id)
            change(state)
            self._write_state(state)
        return state

    def log(self, line: str) -> None:
        """Append one (already redacted) line to the run log."""
        self.ensure_directory()
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                         0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(f"{now().isoformat(timespec='seconds')} {line}\n")
        except OSError as exc:
            raise self._failure(exc, self.log_path) from None
