"""Carrying plan items out: the Context a step plans, applies and checks with.

What the vocabulary (tui/model.py) describes, this does: write and remove files
(tui/files.py), run host commands (tui/commands.py), make API calls (each ApiCall's
`execute`), record what CloudRig created (the ownership record, saved before the
change), and stop at safe points when the run is asked to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from tui.errors import Interrupted
from tui.files import FileOutcome, apply_file, check_files, restore_file, teardown_file
from tui.model import (
    ApiCall,
    CheckResult,
    Command,
    Event,
    FileRemove,
    FileRestore,
    FileWrite,
    Manual,
    OwnedFile,
    OwnedObject,
    Ownership,
    PlanItem,
    Procedure,
    Remote,
)
from tui.redact import redact
from tui.runshared import RunShared

if TYPE_CHECKING:
    from tui.commands import CommandResult, CommandRunner
    from tui.secrets import SecretSupply

T = TypeVar("T")
A = TypeVar("A", bound=BaseModel)


@dataclass
class Context(Generic[A]):
    """Everything a step may use while planning, applying or checking. Generic over the
    procedure's answers model: a `Step[CarbonioAnswers]` gets a `Context[CarbonioAnswers]`
    whose `answers` is typed as such."""

    procedure: Procedure[A]
    answers: A
    secrets: SecretSupply
    runner: CommandRunner
    root: Path | None = None
    dry_run: bool = False
    on_event: Callable[[Event], None] = lambda event: None
    step_id: str | None = None
    """The step (or action) this context was made for: one Context per step."""
    purge: bool = False
    """Teardown also removes what the runbook keeps by default (tokens, policies, keys)."""
    restore: bool = False
    """Teardown also puts back each restorable file's backup from before CloudRig's
    first write (`Step.restorable`)."""
    manual: list[str] = field(default_factory=list)
    """Manual items met while applying this step (the operator still has work)."""
    skipped: list[str] = field(default_factory=list)
    """Host commands of this step not run under --root (the step is staged)."""
    only: tuple[str, ...] = ()
    """Steps the operator named with --step: a step may redo work it would otherwise
    skip as already done (e.g. set a token again) when it is asked for by name."""
    exporting_to: str | None = None
    """The host a step for another host is planned for export to (its context is made
    so): what is on this host's disk says nothing about that one (e.g. a file to merge
    into must be merged there)."""
    common: RunShared = field(default_factory=RunShared)
    """What the run's steps share, passed explicitly to each step's context: the cancel
    Event, shared clients, the ownership record, the state checks read."""

    # What a step reads of the run, under the names steps have always used.

    @property
    def cancel(self) -> threading.Event:
        """Set to stop the run at its next safe point (the run's, not the step's)."""
        return self.common.cancel

    @cancel.setter
    def cancel(self, event: threading.Event) -> None:
        self.common.cancel = event

    @property
    def stop_reason(self) -> str | None:
        """Why the run is asked to stop (e.g. "SIGTERM"), set by tui/signals.py's
        handler; the next safe point (`checkpoint`) stops the run, as a set `cancel` does."""
        return self.common.stop_reason

    @property
    def resources(self) -> dict[str, Any]:
        """Per-run objects steps share, e.g. one API client (closed by `close()`)."""
        return self.common.resources

    @property
    def previous(self) -> dict[str, Any]:
        """Each step's last recorded result (StepRecord), for checks of manual steps."""
        return self.common.previous

    @property
    def confirmations(self) -> dict[str, datetime]:
        """Steps the operator confirmed by hand (`cloudrig confirm PROC STEP`) and when:
        how a manual step's check can say "done" without CloudRig seeing the work."""
        return self.common.confirmations

    @property
    def ownership(self) -> Ownership | None:
        """What CloudRig created for this procedure (None: no record at all, e.g. state
        from before records were kept): teardown undoes only that."""
        return self.common.ownership

    @ownership.setter
    def ownership(self, record: Ownership | None) -> None:
        self.common.ownership = record

    @property
    def on_owned(self) -> Callable[[], None]:
        """Persists `ownership` (the engine saves it at once: a killed run keeps it)."""
        return self.common.on_owned

    @on_owned.setter
    def on_owned(self, save: Callable[[], None]) -> None:
        self.common.on_owned = save

    def close(self) -> None:
        """Close what the run's steps share (its API clients)."""
        self.common.close()

    def shared(self, name: str, make: Callable[[], T]) -> T:
        """One NAME per run (an API client, a value read once): made by MAKE the first
        time a step asks, then reused by every step; closed by `close()`."""
        return self.common.shared(name, make)

    def client(self, remote: Remote[A, T]) -> T:
        """The run's one client for REMOTE, made from the answers and its secret the
        first time a step asks (closed by `close()`)."""
        return self.shared(remote.key, lambda: remote.client(self.answers,
                                                             self.secret(remote.secret)))

    def reads(self, remote: Remote[A, Any]) -> bool:
        """Whether plan may read REMOTE now: it allows it and its secret is at hand
        without asking (else plan shows `remote.placeholder` calls)."""
        return remote.plan_reads and self.secrets.available(remote.secret)

    def checkpoint(self) -> None:
        """A safe point: stop here (Interrupted) when the run was asked to stop. Between
        plan items and between steps, never inside one (a token created and not yet
        written to its file would be lost)."""
        if self.stop_reason is None and not self.cancel.is_set():
            return
        raise Interrupted(f"interrupted by {self.stop_reason or 'the operator'}")

    def secret(self, name: str) -> str:
        """The value of secret field `name` (environment, store, or prompt)."""
        return self.secrets.get(name)

    def emit(self, message: str, kind: str = "info") -> None:
        self.on_event(Event(step=self.step_id, kind=kind, message=redact(message)))

    # ------------------------------------------------------------ ownership

    def _record(self) -> Ownership:
        if self.ownership is None:
            self.ownership = Ownership()
        return self.ownership

    def _record_file(self, path: str, created: bool, backup: str | None) -> None:
        """Remember, before it changes, that CloudRig creates PATH or replaces the
        version kept as BACKUP. The first record stands: its backup is the operator's."""
        if self.dry_run:
            return
        record = self._record()
        known = record.file(path)
        if known is not None and (known.created or known.backup is not None
                                  or backup is None):
            return
        record.files[path] = OwnedFile(path=path, created=created if known is None else False,
                                       backup=backup, step=self.step_id)
        self.on_owned()

    def owned_file(self, path: str) -> OwnedFile | None:
        return self.ownership.file(path) if self.ownership else None

    def creating(self, kind: str, label: str) -> None:
        """Say, before a call that creates a KIND named LABEL whose id the server gives,
        that CloudRig is creating it (a run killed before `created` is then adopted)."""
        if self.dry_run:
            return
        record = self._record()
        if record.find(kind, label=label) is None:
            record.objects.append(OwnedObject(kind=kind, id=None, label=label,
                                              step=self.step_id))
            self.on_owned()

    def created(self, kind: str, id: str, label: str = "") -> None:
        """Remember that CloudRig created the KIND with ID (for ids known before the
        call, e.g. a KV key, call it before the call)."""
        if self.dry_run:
            return
        record = self._record()
        pending = record.find(kind, label=label or id)
        if pending is not None and pending.id is None:
            pending.id = id
        elif record.find(kind, id=id) is None:
            record.objects.append(OwnedObject(kind=kind, id=id, label=label or id,
                                              step=self.step_id))
        self.on_owned()

    def create(self, kind: str, label: str, call: Callable[[], T], *,
               id: str | None = None, id_of: Callable[[T], str] | None = None) -> T:
        """Make the KIND named LABEL with CALL, recorded as CloudRig's before the call:
        by ID when it is known up front (a KV key, a config entry's name), else as being
        created, then by the id the server gave (ID_OF of CALL's result). A run killed
        in between leaves the record, and the next run adopts what it finds. A call the
        server refused outright (a 4xx: nothing was made) takes the record back."""
        if id is not None:
            fresh = not self.owns(kind, id)
            self.created(kind, id, label)
        else:
            fresh = True
            self.creating(kind, label)
        try:
            result = call()
        except Exception as exc:
            status = getattr(exc, "status", None)
            if fresh and isinstance(status, int) and 400 <= status < 500:
                self._take_back(kind, id, label)
            raise
        if id_of is not None:
            self.created(kind, id_of(result), label)
        return result

    def _take_back(self, kind: str, id: str | None, label: str) -> None:
        if self.dry_run or self.ownership is None:
            return
        self.ownership.objects = [o for o in self.ownership.objects if not (
            o.kind == kind and o.id == id and (id is not None or o.label == label))]
        self.on_owned()

    def adopt(self, kind: str, label: str, id: str) -> bool:
        """Whether the KIND with ID, found by LABEL, is CloudRig's: recorded so, or the
        one a killed run was creating (then recorded now)."""
        if self.ownership is None:
            return False
        if self.ownership.find(kind, id=id) is not None:
            return True
        pending = self.ownership.find(kind, label=label)
        if pending is None or pending.id is not None:
            return False
        if not self.dry_run:
            pending.id = id
            self.on_owned()
        return True

    def owns(self, kind: str, id: str) -> bool:
        return self.ownership is not None and self.ownership.find(kind, id=id) is not None

    def forget(self, kind: str, id: str) -> None:
        """CloudRig removed the KIND with ID: no longer its to remove."""
        if self.dry_run or self.ownership is None:
            return
        self.ownership.objects = [o for o in self.ownership.objects
                                  if not (o.kind == kind and o.id == id)]
        self.on_owned()

    def forget_file(self, path: str) -> None:
        if self.dry_run or self.ownership is None or path not in self.ownership.files:
            return
        del self.ownership.files[path]
        self.on_owned()

    # ------------------------------------------------------------ doing

    def write_file(self, item: FileWrite) -> FileOutcome:
        outcome = apply_file(item, root=self.root, dry_run=self.dry_run,
                             record=lambda created, backup: self._record_file(
                                 item.path, created, backup))
        self.emit(outcome.sentence(), "item")
        if outcome.staged and not self.dry_run:  # the owner is the target host's to set
            self.skipped.append(outcome.staged)
        return outcome

    def remove_file(self, item: FileRemove) -> None:
        """Teardown of one file, as its ownership record says: remove what CloudRig
        created, put back what it replaced, leave (and say so) what it did not write."""
        outcome = teardown_file(item, self.owned_file(item.path), self.root, self.dry_run)
        if outcome is None:
            return
        if outcome.action in ("removed", "restored"):
            self.forget_file(item.path)
        self.emit(outcome.sentence(), "item")

    def run(self, command: Command) -> CommandResult:
        result = self.runner.run(command, self.secrets, emit=self.emit)
        if result.skipped and not self.dry_run:
            self.skipped.append(result.skipped)
        return result

    def call(self, item: ApiCall) -> Any:
        if self.dry_run and item.changes_remote:
            self.emit(f"skipped (dry run): {item.method} {item.url}", "item")
            return None
        if item.execute is None:
            raise RuntimeError(f"API call {item.method} {item.url} has nothing to execute")
        result = item.execute()
        self.emit(f"{item.method} {item.url}: {item.description or 'done'}", "item")
        return result

    def check_files(self, items: list[FileWrite]) -> CheckResult:
        """Whether ITEMS are on disk as planned (the default `Step.check`)."""
        return check_files(items, self.root)

    def execute(self, items: Sequence[PlanItem]) -> None:
        """Carry out plan items in order (the default `apply`)."""
        for item in items:
            self.checkpoint()
            match item:
                case FileWrite():
                    self.write_file(item)
                case Command():
                    self.run(item)
                case ApiCall():
                    self.call(item)
                case FileRemove():
                    self.remove_file(item)
                case FileRestore():
                    owned = self.owned_file(item.path)
                    outcome = restore_file(item.path, self.root, self.dry_run,
                                           backup=owned.backup if owned else None)
                    if outcome.action == "restored":
                        self.forget_file(item.path)
                    self.emit(outcome.sentence(), "item")
                case Manual():
                    self.manual.append(item.text)
                    self.emit(f"manual: {item.text}", "warning")
