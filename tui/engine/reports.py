"""What `cloudrig status`, `cloudrig action` (no action named) and `apply --json`
report, as typed views the fronts read (views.py is the plan's).

`model_dump(mode="json")` of these is what the CLI prints with --json, a contract for
scripts: the keys, their order and their values are pinned by tests. A report is made
from the state file's records and the checks; it is never written back (the records in
tui/state.py are the state file's own format).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from tui.model import Procedure, Status
from tui.state import ActionRecord, ProcedureState, RunRecord
from tui.statefile import run_sentence, run_word
from tui.words import stamp

from .checking import StepCheck, StepStatus
from .loop import RunResult


class LastRunView(RunRecord):
    """The last apply or teardown as it reads now: `outcome` is "running" only while
    its process lives (else "interrupted"), and `detail` says that in one sentence."""

    detail: str


def last_run_view(record: RunRecord | None) -> LastRunView | None:
    if record is None:
        return None
    run = record.model_dump(mode="json")
    return LastRunView.model_validate({**record.model_dump(), "outcome": run_word(run),
                                       "detail": run_sentence(run)})


class ActionView(BaseModel):
    """An operator action (`Procedure.actions`) with how and when it last ran (None:
    never)."""

    action: str
    title: str
    help: str
    last_run: ActionRecord | None

    def ran(self) -> str:
        """"never run", or "last ran 2026-01-02 10:00 UTC (done)"."""
        if self.last_run is None:
            return "never run"
        return f"last ran {stamp(self.last_run.at)} ({self.last_run.outcome})"


def action_views(procedure: Procedure, state: ProcedureState | None) -> list[ActionView]:
    """PROCEDURE's actions, each with its last run as STATE recorded it."""
    records = state.actions if state is not None else {}
    return [ActionView(action=a.id, title=a.title, help=a.help, last_run=records.get(a.id))
            for a in procedure.actions]


class StatusReport(BaseModel):
    """Where one procedure stands (`cloudrig status`): what the two kinds share."""

    procedure: str
    title: str
    applied: bool


class UnappliedReport(StatusReport):
    """A procedure with no saved answers: every step pending, nothing checked."""

    applied: Literal[False] = False
    steps: list[StepStatus]
    actions: list[ActionView]


class AppliedReport(StatusReport):
    """A procedure applied here: the --root it used, how its last run ended, and every
    step's check as it runs now."""

    applied: Literal[True] = True
    root: str | None
    last_run: LastRunView | None
    steps: list[StepCheck]
    actions: list[ActionView]


ProcedureStatus = AppliedReport | UnappliedReport
"""One procedure's status report, of either kind (`applied` tells which)."""


def unapplied_report(procedure: Procedure, actions: list[ActionView]) -> UnappliedReport:
    return UnappliedReport(
        procedure=procedure.id, title=procedure.title, actions=actions,
        steps=[StepStatus(step=s.id, title=s.title, status=Status.PENDING,
                          detail="not applied yet") for s in procedure.steps])


class StepChange(BaseModel):
    """A step's check status before and after a run (None: not checked then)."""

    step: str
    before: str | None
    after: str | None


class ApplySummary(BaseModel):
    """`apply --json`: how the run ended and whether it changed anything, judged by the
    steps' checks before and after it, so automation (Ansible's `changed`) need not
    parse progress."""

    procedure: str
    outcome: Literal["done", "failed", "interrupted"]
    exit_code: int
    failed_step: str | None
    message: str | None
    changed: bool
    steps: list[StepChange]


def apply_summary(procedure_id: str, result: RunResult, before: dict[str, str],
                  after: dict[str, str]) -> ApplySummary:
    """BEFORE and AFTER: step id → check status, from checks before and after the run."""
    steps = [StepChange(step=s, before=before.get(s), after=after.get(s))
             for s in dict.fromkeys([*before, *after])]
    return ApplySummary(procedure=procedure_id, outcome=result.outcome,
                        exit_code=result.exit_code, failed_step=result.failed_step,
                        message=result.message,
                        changed=any(s.before != s.after for s in steps), steps=steps)
