"""`Session`: the one object the CLI and the TUI drive, a thin facade over planning,
running, checking and views (this package's modules), none of which knows a procedure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel

from tui.commands import CommandRunner
from tui.context import Context
from tui.model import Action, Event, PlanItem, Procedure, Step
from tui.secrets import SecretSource
from tui.state import StateStore

from . import checking, planning, running
from .checking import StepCheck
from .loop import RunResult
from .options import RunOptions
from .planning import StepPlan
from .scope import Scope
from .views import ItemView, StepView, Viewer, plan_view


@dataclass
class Session:
    """One procedure with validated answers and run options (frozen as `options`)."""

    procedure: Procedure
    answers: BaseModel
    secrets: SecretSource
    store: StateStore
    root: Path | None = None
    dry_run: bool = False
    on_event: Callable[[Event], None] = lambda event: None
    debug: bool = False
    purge: bool = False
    restore: bool = False
    detached: bool = False
    """Runs in a process of its own (`apply --detach`, the TUI): SIGHUP is ignored."""
    on_started: Callable[[], None] | None = None
    """Called once a run is under way: lock held, secrets had, last_run and the journal
    written (a detached run's parent waits for this before it says "applying")."""
    options: RunOptions = field(init=False)
    scope: Scope = field(init=False)

    def __post_init__(self) -> None:
        self.options = RunOptions(root=self.root, dry_run=self.dry_run, debug=self.debug,
                                  purge=self.purge, restore=self.restore,
                                  detached=self.detached)
        self.scope = Scope(procedure=self.procedure, answers=self.answers,
                           secrets=self.secrets, store=self.store, options=self.options,
                           on_event=self.on_event, on_started=self.on_started)

    @property
    def runner(self) -> CommandRunner:
        return self.scope.runner

    def context(self, unit: Step | Action | None = None) -> Context:
        """A fresh Context for UNIT on this session's run (what a front asks a step or
        an action outside a run: the files a render writes, an action's question)."""
        return self.scope.context(unit)

    @cached_property
    def ctx(self) -> Context:
        """One step-less context kept for the session (for callers outside any run)."""
        return self.scope.context()

    def close(self) -> None:
        """Close what the session's steps share (API clients)."""
        self.scope.shared.close()

    def elsewhere(self, step: Step) -> str | None:
        return self.scope.elsewhere(step)

    def active_steps(self, only: Sequence[str] = ()) -> list[Step]:
        return self.scope.active_steps(only)

    # ------------------------------------------------------------ plan

    def plan(self, only: Sequence[str] = ()) -> list[StepPlan]:
        try:
            return planning.plan(self.scope, only)
        finally:
            self.close()

    def step_plan(self, step: Step) -> list[PlanItem]:
        return planning.step_plan(self.scope, step)

    def teardown_plan(self) -> list[StepPlan]:
        return planning.teardown_plan(self.scope)

    def action_plan(self, action: Action) -> StepPlan:
        return planning.action_plan(self.scope, action)

    def plan_view(self, plans: list[StepPlan], for_apply: bool = False) -> list[StepView]:
        return plan_view(self.scope, plans, for_apply)

    def item_view(self, item: PlanItem) -> ItemView:
        return Viewer(self.scope).item(item)

    def resolve_secrets(self, steps: Sequence[Step], undo: bool = False,
                        only: Sequence[str] = ()) -> None:
        planning.resolve_secrets(self.scope, steps, undo, only)

    def require_secrets(self, names: set[str]) -> None:
        planning.require_secrets(self.scope, names)

    def require_ownership(self) -> None:
        self.scope.require_ownership()

    # ------------------------------------------------------------ run

    def apply(self, only: Sequence[str] = ()) -> RunResult:
        try:
            return running.apply(self.scope, only)
        finally:
            self.close()

    def teardown(self) -> RunResult:
        try:
            return running.teardown(self.scope)
        finally:
            self.close()

    def run_action(self, action: Action) -> RunResult:
        try:
            return running.run_action(self.scope, action)
        finally:
            self.close()

    # ------------------------------------------------------------ check

    def check(self) -> list[StepCheck]:
        return checking.check(self.scope)

    def check_step(self, step: Step) -> StepCheck:
        return checking.check_step(self.scope, step)


def check_sessions(sessions: Sequence[Session]) -> list[list[StepCheck]]:
    """Every step's check of every one of SESSIONS at once, as one refresh (a fleet's
    `status`): one pool, the checks that took longest last time started first
    (checking.check_many), not one procedure's checks after another's."""
    return checking.check_many([session.scope for session in sessions])
