"""The one guarded loop apply, teardown and actions share.

Hold the procedure's run lock (a second run is refused at once), get every secret,
record the run (pid and host in last_run, the events journal), then work each unit
in a context of its own with the stopping signals turned into a stop at the next safe
point. Any failure ends the run as one recorded sentence, never a traceback; state is
written by reload-and-merge, so what others record meanwhile (a confirmation) survives.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Literal

from pydantic import BaseModel

from tui.context import Context
from tui.errors import Interrupted, OperatorError
from tui.journal import Journal, journal_path
from tui.model import Action, Status, Step
from tui.redact import redact
from tui.runlock import process_start, run_lock, this_host
from tui.signals import stop_on_signals
from tui.state import ActionRecord, ProcedureState, RunRecord, StepRecord, now

from .scope import Scope, internal_error

RunKind = Literal["apply", "teardown", "action"]
Unit = Step | Action
Work = Callable[[Unit, Context, RunRecord | None, "RunResult"], None]
"""What the run does with one unit, in that unit's own context."""


class RunResult(BaseModel):
    outcome: Literal["done", "failed", "interrupted"]
    failed_step: str | None = None
    message: str | None = None
    # step id → "done" | "manual" (its operator part remains) | "staged" (under --root,
    # its host commands not run) | "failed" | "interrupted"
    steps: dict[str, str] = {}

    @property
    def waiting(self) -> list[str]:
        """Steps whose automatic part is done and whose manual part is the operator's."""
        return [step for step, word in self.steps.items() if word == "manual"]

    @property
    def exit_code(self) -> int:
        return {"done": 0, "failed": 1, "interrupted": 130}[self.outcome]


def guarded_run(scope: Scope, kind: RunKind, units: Sequence[Unit], *,
                context: Callable[[Unit], Context], prepare: Callable[[], None], work: Work,
                resume_hint: str, begin: Callable[[ProcedureState], None] | None = None,
                digest: str = "") -> RunResult:
    """Run UNITS (see the module's docstring); CONTEXT makes each unit's Context."""
    result = RunResult(outcome="done")
    action = units[0].id if kind == "action" and units else None
    with _exclusive(scope, kind, action):
        prepare()
        run = None if kind == "action" else RunRecord(
            kind=kind, answers_digest=digest, pid=os.getpid(), host=this_host(),
            process_start=process_start(os.getpid()))
        _begin(scope, run, units, begin)
        try:
            with _signals(scope):
                for unit in units:
                    ctx = context(unit)
                    failure = _attempt(scope, unit, partial(_unit, unit, ctx, run, result,
                                                            work), resume_hint)
                    if failure is not None:
                        return _stop(scope, run, result, unit, *failure)
            if run is not None:
                run.outcome, run.finished = "done", now()
                scope.record(lambda state: setattr(state, "last_run", run))
            return result
        except BaseException as exc:
            # A second Ctrl+C between steps, or --debug re-raising: the run must not
            # stay "running" in state while this process goes on (or exits).
            if run is not None and run.outcome == "running":
                ended: Literal["failed", "interrupted"] = (
                    "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
                run.outcome, run.finished = ended, now()
                result.outcome = ended
                scope.record(lambda state: setattr(state, "last_run", run))
            raise
        finally:
            _end(scope, result)


@contextlib.contextmanager
def _exclusive(scope: Scope, kind: RunKind, action: str | None) -> Iterator[None]:
    """The procedure's run lock, except under --dry-run (which changes nothing)."""
    if scope.dry_run:
        yield
        return
    with run_lock(scope.store.directory, scope.procedure.id, kind, action):
        yield


def _signals(scope: Scope) -> contextlib.AbstractContextManager[None]:
    if scope.dry_run:
        return contextlib.nullcontext()
    return stop_on_signals(scope.shared, detached=scope.options.detached)


def _begin(scope: Scope, run: RunRecord | None, units: Sequence[Unit],
           begin: Callable[[ProcedureState], None] | None) -> None:
    """Record the run's start (under the lock, after its secrets were had): what the
    steps' checks read from state is reloaded now, last_run names this process, and
    a new events journal starts."""
    def start(state: ProcedureState) -> None:
        scope.shared.previous = dict(state.steps)
        scope.shared.confirmations = dict(state.confirmations)
        if begin is not None:
            begin(state)
        if run is not None:
            state.last_run = run

    if scope.dry_run:
        start(scope.state())
    else:
        scope.store.update(scope.procedure.id, start)
    if run is not None and not scope.dry_run:
        scope.journal = Journal(journal_path(scope.store.directory, scope.procedure.id))
        scope.journal.start({
            "run": run.kind, "procedure": scope.procedure.id, "pid": run.pid,
            "host": run.host, "process_start": run.process_start,
            "started": run.started.isoformat(),
            "steps": [[unit.id, unit.title] for unit in units]})
    if scope.on_started is not None:
        scope.on_started()


def _end(scope: Scope, result: RunResult) -> None:
    journal, scope.journal = scope.journal, None
    if journal is not None:
        journal.end({"outcome": result.outcome, "exit_code": result.exit_code,
                     "failed_step": result.failed_step, "message": result.message,
                     "steps": result.steps, "at": now().isoformat()})


def _unit(unit: Unit, ctx: Context, run: RunRecord | None, result: RunResult,
          work: Work) -> None:
    ctx.checkpoint()  # a safe point: asked to stop, the next unit does not start
    work(unit, ctx, run, result)


def _attempt(scope: Scope, who: Unit, work: Callable[[], None], resume_hint: str,
             ) -> tuple[Literal["failed", "interrupted"], str] | None:
    """Run `work`; a failure becomes (outcome, one sentence), never a traceback."""
    try:
        work()
    except (KeyboardInterrupt, Interrupted) as exc:
        # A step may say what it left behind (e.g. a remote job still running).
        said = exc.sentence if isinstance(exc, Interrupted) else "interrupted by Ctrl+C"
        message = said if not said.startswith("interrupted by ") else f"{said}; {resume_hint}"
        return "interrupted", message
    except OperatorError as exc:
        return "failed", exc.sentence
    except Exception as exc:
        if scope.options.debug:
            raise
        scope.store.log(redact(traceback.format_exc()))
        return "failed", internal_error(who, exc)
    return None


def _stop(scope: Scope, run: RunRecord | None, result: RunResult, unit: Unit,
          outcome: Literal["failed", "interrupted"], message: str) -> RunResult:
    message = redact(message)
    scope.emit(unit, "failed", f"{unit.title}: {message}")
    if run is not None:
        run.outcome, run.finished, run.failed_step, run.message = (outcome, now(), unit.id,
                                                                  message)
    first = message.splitlines()[0] if message else outcome

    def stopped(state: ProcedureState) -> None:
        if isinstance(unit, Action):
            state.actions[unit.id] = ActionRecord(outcome=outcome, detail=first)
        else:
            state.steps[unit.id] = StepRecord(status=Status.FAILED, detail=first)
        if run is not None:
            state.last_run = run

    scope.record(stopped)
    result.outcome, result.failed_step, result.message = outcome, unit.id, message
    result.steps[unit.id] = outcome
    return result
