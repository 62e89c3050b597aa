"""The fixed parts of one session and the one place a step's Context is made.

A `Scope` is a procedure with validated answers, its frozen run options, the state
store, and what the run's steps share (`RunShared`: cancel, clients, ownership, the
state checks read). Planning, running and checking (this package's other modules)
each take a Scope; none of them keeps a Context across steps: `context()` makes a
fresh one per step, so a step never sees another's id, export host or manual lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from tui.commands import CommandRunner
from tui.context import Context
from tui.errors import OperatorError
from tui.journal import Journal
from tui.model import Action, Event, Ownership, Procedure, Step
from tui.redact import redact
from tui.runshared import RunShared
from tui.secrets import SecretSource
from tui.state import ProcedureState, StateStore

from .options import RunOptions


def internal_error(unit: Step | Action, exc: BaseException) -> str:
    """A bug met in a step or action, as the one sentence the operator sees."""
    kind = "action" if isinstance(unit, Action) else "step"
    return (f"{kind} {unit.id} hit an internal error ({type(exc).__name__}: {redact(str(exc))}); "
            "the traceback is in the log, rerun with --debug to see it")


@dataclass
class Scope:
    """One procedure with validated answers, run options, and its steps' shared run."""

    procedure: Procedure
    answers: BaseModel
    secrets: SecretSource
    store: StateStore
    options: RunOptions = field(default_factory=RunOptions)
    on_event: Callable[[Event], None] = lambda event: None
    on_started: Callable[[], None] | None = None
    """Called once a run is under way (lock held, secrets had, journal started)."""
    runner: CommandRunner = field(init=False)
    shared: RunShared = field(init=False)
    journal: Journal | None = field(init=False, default=None)
    """The events journal of the run under way (set by the guarded loop)."""

    def __post_init__(self) -> None:
        self.runner = CommandRunner(dry_run=self.options.dry_run, root=self.options.root)
        self.shared = RunShared(on_owned=self.save_ownership)
        state = self.store.load(self.procedure.id)
        if state is not None:
            self.shared.previous = dict(state.steps)
            self.shared.confirmations = dict(state.confirmations)
        self.shared.ownership = self.store.load_owned(self.procedure.id)

    @property
    def root(self) -> Path | None:
        return self.options.root

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def context(self, unit: Step | Action | None = None, *, only: Sequence[str] = (),
                exporting_to: str | None = None) -> Context:
        """A fresh Context for UNIT (None: work outside any step), on the shared run."""
        return Context(
            procedure=self.procedure, answers=self.answers, secrets=self.secrets,
            runner=self.runner, root=self.root, dry_run=self.dry_run, on_event=self.event,
            purge=self.options.purge, restore=self.options.restore, only=tuple(only),
            step_id=unit.id if unit is not None else None, exporting_to=exporting_to,
            common=self.shared,
        )

    def elsewhere(self, step: Step) -> str | None:
        """The other host `step` runs on (then it is exported, not run), or None."""
        return self.procedure.runs_elsewhere(step, self.answers)

    def export_dir(self) -> str:
        return self.procedure.export_dir(self.answers)

    def active_steps(self, only: Sequence[str] = ()) -> list[Step]:
        chosen = [self.procedure.step(s) for s in only] if only else list(self.procedure.steps)
        return [s for s in chosen if s.applies(self.answers)]

    # ------------------------------------------------------------ events

    def event(self, event: Event) -> None:
        """Log EVENT (masked; not a poll), add it to the run's journal, pass it on."""
        if event.kind != "poll":  # each attempt of a wait: shown live, never logged
            where = f"[{event.step}] " if event.step else ""
            self.store.log(f"{self.procedure.id} {event.kind} {where}{redact(event.message)}")
        journal = self.journal
        if journal is not None:  # every event, polls too: a viewer shows the live wait
            record = event.model_dump(mode="json")
            record["message"] = redact(record["message"])
            journal.event(record)
        self.on_event(event)

    def emit(self, unit: Step | Action | None, kind: str, message: str) -> None:
        self.event(Event(step=unit.id if unit else None, kind=kind, message=redact(message)))

    # ------------------------------------------------------------ state

    def state(self) -> ProcedureState:
        return self.store.load(self.procedure.id) or ProcedureState(procedure=self.procedure.id)

    def record(self, change: Callable[[ProcedureState], None]) -> None:
        """Merge CHANGE into the saved state (never under --dry-run)."""
        if not self.dry_run:
            self.store.update(self.procedure.id, change)

    # ------------------------------------------------------------ ownership

    def save_ownership(self) -> None:
        """Write the ownership record now (not under --dry-run): what was just created
        is known even if the run dies before its step ends."""
        if not self.dry_run and self.shared.ownership is not None:
            self.store.save_owned(self.procedure.id, self.shared.ownership)

    def own_from_now_on(self) -> None:
        """Under the run lock, before an apply changes anything: reload the ownership
        record (a run that ended meanwhile may have added to it) and start one when
        there is none, so that whatever this run creates is recorded. An unreadable
        record is never overwritten unseen."""
        if self.dry_run:
            return
        self.shared.ownership = self.store.load_owned(self.procedure.id)
        owned = self.store.owned_path(self.procedure.id)
        if self.shared.ownership is None and owned.exists():
            raise OperatorError(
                f"{owned} (CloudRig's record of what it created) cannot be read; keep a "
                "copy elsewhere and remove it to go on (teardown then keeps whatever it "
                "has no record of)")
        if self.shared.ownership is None:
            self.shared.ownership = Ownership()
            self.save_ownership()

    def require_ownership(self) -> None:
        """`teardown --purge` removes what CloudRig recorded creating; with no record at
        all it cannot tell CloudRig's objects from someone else's of the same name."""
        if self.options.purge and self.shared.ownership is None:
            raise OperatorError(
                f"refusing teardown --purge: there is no record of what CloudRig created for "
                f"{self.procedure.id} here ({self.store.owned_path(self.procedure.id)} is "
                "missing or unreadable), so it cannot tell its own policies, tokens and keys "
                "from another's of the same name; remove them by hand, or run teardown "
                "without --purge")
