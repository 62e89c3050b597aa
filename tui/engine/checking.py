"""Checking: is each step done on this host (or its remote) right now? Every check runs
in a context of its own, concurrently (each may wait on a remote API), reading what the
last run recorded; a check never changes anything."""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, model_serializer

from tui.context import Context
from tui.errors import OperatorError, SecretMissing
from tui.export import export_note, script_path
from tui.files import host_path
from tui.http_wire import keeping_connections
from tui.model import CheckResult, Procedure, Status, Step
from tui.redact import redact
from tui.runshared import RunShared
from tui.secrets import env_name
from tui.state import ProcedureState, StateStore, now

from .scope import Scope, internal_error


class StepStatus(BaseModel):
    """Where a step stands, in the words status and the dashboard share."""

    step: str
    title: str
    status: Status
    detail: str


class StepCheck(StepStatus):
    """A step's check as it ran: where it ran for and when, and what it waits for."""

    host: str | None = None
    checked_at: datetime | None = None  # when this check ran (UTC): dashboards show its age
    needs: list[str] = Field(default_factory=list,
                             description="secret fields the check needs (status unknown)")

    @model_serializer(mode="wrap")
    def _without_empty_needs(self, handler: Any) -> Any:
        """`needs` only where a check waits for a secret: other checks read as before."""
        data = handler(self)
        if isinstance(data, dict) and not data.get("needs"):
            data.pop("needs", None)
        return data


CHECK_THREADS = 64
"""The most step checks running at once in the process (a fleet's `status`: every step
of five procedures; most wait on a remote, so threads, not cores, bound them)."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _check_pool() -> ThreadPoolExecutor:
    """One thread pool for the process's step checks, kept across refreshes: a dashboard
    refresh would otherwise start and join a thread per step every time. Only step
    checks run on it and none waits for another, so it cannot deadlock; its threads
    start as they are needed and are then reused."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="cloudrig-check")
        return _pool


def _forget_pool() -> None:
    """In a forked child (tui/detach.py): the parent's threads are not there."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def checks_run(scope: Scope) -> RunShared:
    """What one round of checks shares: the state they read and their API clients (not
    the run's cancel, ownership or clients: a check is no part of a run)."""
    return RunShared(previous=scope.shared.previous, confirmations=scope.shared.confirmations)


def check_context(scope: Scope, step: Step, run: RunShared) -> Context:
    """STEP's context for checking: a dry run that reports no events."""
    return Context(procedure=scope.procedure, answers=scope.answers, secrets=scope.secrets,
                   runner=scope.runner, root=scope.root, dry_run=True, step_id=step.id,
                   common=run)


def step_check(scope: Scope, step: Step, ctx: Context) -> CheckResult:
    """A step's check; one for another host is "to run on <host>" (never checked
    from here: its files and services are on that host)."""
    host = scope.elsewhere(step)
    if host is None:
        return step.check(ctx)
    export_dir = scope.export_dir()
    exported = host_path(script_path(export_dir, host, step.id), scope.root).exists()
    tail = "" if exported else " (not exported yet: apply writes it)"
    return CheckResult(status=Status.MANUAL, detail=export_note(host, export_dir, step.id) + tail)


def check_step(scope: Scope, step: Step, run: RunShared | None = None) -> StepCheck:
    """STEP's check in a context of its own (checks run in threads); RUN, when given,
    lends its API clients and read-once values (one refresh's checks share
    connections), and is closed by whoever made it."""
    own = run is None
    ctx = check_context(scope, step, checks_run(scope) if run is None else run)
    needs: list[str] = []
    try:
        with keeping_connections():  # for the next refresh's clients (tui/http_wire.py)
            result = _staged(scope, step, step_check(scope, step, ctx))
    except SecretMissing as exc:
        # Not a failure of the step: this check cannot tell without the secret.
        needs = [exc.secret] if exc.secret else []
        result = CheckResult(status=Status.UNKNOWN, detail=_needs_detail(scope.procedure, exc))
    except OperatorError as exc:
        result = CheckResult(status=Status.FAILED, detail=f"cannot check: {exc.sentence}")
    except Exception as exc:
        scope.store.log(redact(traceback.format_exc()))
        result = CheckResult(status=Status.FAILED, detail=internal_error(step, exc))
    finally:
        if own:
            ctx.close()
    return StepCheck(step=step.id, title=step.title, status=result.status,
                     detail=redact(result.detail), host=scope.elsewhere(step),
                     checked_at=datetime.now(UTC), needs=needs)


_took: dict[tuple[str, str], float] = {}
"""How long each (procedure, step) check took the last time it ran in this process."""


def _timed(scope: Scope, run: RunShared, step: Step) -> StepCheck:
    started = time.perf_counter()
    try:
        return check_step(scope, step, run)
    finally:
        _took[(scope.procedure.id, step.id)] = time.perf_counter() - started


def check_many(scopes: Sequence[Scope]) -> list[list[StepCheck]]:
    """Every step's check of every one of SCOPES at once (each may ask a remote API), in
    each scope's step order.

    All of them go onto the kept pool from here, those that took longest the last time
    first: a refresh lasts as long as its longest check, which is one asking questions
    in a row (carbonio's policy check proves the token, then reads the policy). Started
    first, its waits overlap the CPU the other checks need; started after the other
    checks (as when each procedure started its own, one after another), it waited for
    their CPU before its first question and finished a third later."""
    runs = [checks_run(scope) for scope in scopes]
    try:
        steps = [scope.active_steps() for scope in scopes]
        jobs = [(scope, run, step) for scope, run, active in zip(scopes, runs, steps,
                                                                 strict=True)
                for step in active]
        if len(jobs) <= 1:
            done = [_timed(*job) for job in jobs]
        else:
            pool = _check_pool()
            longest_first = sorted(range(len(jobs)), key=lambda i: -_took.get(
                (jobs[i][0].procedure.id, jobs[i][2].id), 0.0))
            futures = {i: pool.submit(_timed, *jobs[i]) for i in longest_first}
            done = [futures[i].result() for i in range(len(jobs))]
    finally:
        for run in runs:
            run.close()
    checks = iter(done)
    return [[next(checks) for _ in active] for active in steps]


def check(scope: Scope) -> list[StepCheck]:
    """Every step's check, run concurrently (each may ask a remote API)."""
    return check_many([scope])[0]


def _needs_detail(procedure: Procedure, exc: SecretMissing) -> str:
    """"needs <the secret's title>" and where it may come from."""
    if not exc.secret:
        return exc.sentence
    info = procedure.answers_model.model_fields.get(exc.secret)
    title = info.title if info is not None and info.title else exc.secret
    text = (f"needs {title}: set {env_name(exc.secret)} or run "
            f"`cloudrig secrets set {exc.secret}`")
    if exc.store_problem:
        text += f" (the secret store: {exc.store_problem})"
    return text


def _staged(scope: Scope, step: Step, result: CheckResult) -> CheckResult:
    """Under --root, a step whose last apply left host commands unrun is staged
    however complete its files look: the target host has yet to run them."""
    record = scope.shared.previous.get(step.id)
    if (scope.root is not None and result.status is Status.DONE and record is not None
            and record.status is Status.STAGED):
        return CheckResult(status=Status.STAGED, detail=f"{record.detail}; {result.detail}")
    return result


def confirm_step(procedure: Procedure, store: StateStore, step_id: str,
                 undo: bool = False) -> ProcedureState:
    """Record (or withdraw) the operator's word that a manual step is done.

    CloudRig cannot see work done by hand in another system (an admin panel), so the
    operator's confirmation, with its time, is what that step's check reports. Merged
    into the saved state under its brief lock: an apply running meanwhile keeps it."""
    step = procedure.step(step_id)  # unknown step: UsageError naming the known ones

    def change(state: ProcedureState) -> None:
        if undo:
            state.confirmations.pop(step.id, None)
        else:
            state.confirmations[step.id] = now()

    state = store.update(procedure.id, change)
    store.log(f"{procedure.id} info [{step.id}] "
              + ("confirmation withdrawn" if undo else "confirmed by the operator"))
    return state

