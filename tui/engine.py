"""Runs a procedure's steps: plan, apply (with resume), check, teardown (with
--restore), and its operator actions.

The CLI and the TUI both drive a `Session`; neither knows any procedure. Apply
records each step's outcome in the state store as it goes, so an interrupted or
failed run resumes where it stopped, and every event is logged with secrets masked.
"""

from __future__ import annotations

import contextlib
import json
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, model_serializer

from tui.answers import check_secret, public_answers
from tui.commands import CommandRunner, display
from tui.context import Context
from tui.errors import Interrupted, OperatorError, SecretMissing
from tui.export import export_items, export_note, export_undo, script_path
from tui.files import host_path, remove_view, restore_view, view
from tui.journal import Journal, journal_path
from tui.model import (
    Action,
    ApiCall,
    CheckResult,
    Command,
    Event,
    FileRemove,
    FileRestore,
    FileWrite,
    Manual,
    Ownership,
    PlanItem,
    Procedure,
    Status,
    Step,
)
from tui.redact import redact
from tui.runlock import process_start, run_lock, this_host
from tui.secrets import SecretSource, env_name
from tui.signals import stop_on_signals
from tui.state import (
    ActionRecord,
    ProcedureState,
    RunRecord,
    StateStore,
    StepRecord,
    answers_digest,
    now,
)
from tui.words import plural

RunKind = Literal["apply", "teardown", "action"]


class StepPlan(BaseModel):
    step: str
    title: str
    items: list[PlanItem] = []
    error: str | None = None
    host: str | None = Field(default=None, description="set when the step runs on another host")
    unreachable: bool = Field(default=False,
                              description="the error is a remote that did not answer at all")
    unplanned: bool = Field(default=False,
                            description="not planned: an earlier step's remote did not answer")


class StepCheck(BaseModel):
    step: str
    title: str
    status: Status
    detail: str
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


def staged_detail(skipped: int) -> str:
    """What a staged step still needs: its host commands, run on the target host."""
    return (f"staged under --root: {plural(skipped, 'host command')} to run on the "
            "target host (see the plan)")


def internal_error(step: Step | Action, exc: BaseException) -> str:
    kind = "action" if isinstance(step, Action) else "step"
    return (f"{kind} {step.id} hit an internal error ({type(exc).__name__}: {redact(str(exc))}); "
            "the traceback is in the log, rerun with --debug to see it")


T = TypeVar("T")


def missing_secrets(procedure: Procedure, answers: BaseModel, secrets: SecretSource,
                    steps: Sequence[Step] | None = None) -> list[str]:
    """Secret fields apply will ask for (as `Session.resolve_secrets` does) that no source
    has right now (environment, typed this session, the store), in step order: what a
    front must ask for before it offers to apply. Asks no one and calls nothing."""
    ctx = Context(procedure=procedure, answers=answers, secrets=secrets,
                  runner=CommandRunner(dry_run=True), dry_run=True)
    chosen = steps if steps is not None else [s for s in procedure.steps if s.applies(answers)]
    provided: set[str] = set()
    missing: list[str] = []
    for step in chosen:
        ctx.step_id = step.id
        for name in sorted(step.needs_secrets(ctx)):
            if name not in provided and name not in missing and not secrets.available(name):
                missing.append(name)
        provided |= step.provides_secrets(ctx)
    return missing


def unreachable(exc: OperatorError) -> bool:
    """A remote that did not answer at all (no HTTP status: refused, timed out, TLS): every
    later call to it would wait the same way, so planning stops at the first."""
    from tui.http import RemoteError  # heavy: httpx (tui.http), only once a remote failed

    return isinstance(exc, RemoteError) and exc.status is None


def run_concurrently(calls: Sequence[Callable[[], T]], limit: int | None = None) -> list[T]:
    """Call each of CALLS in its own thread (at most LIMIT at once) and return their
    results in order; the first exception is raised. Checks wait on remote APIs, not
    the CPU: N of them take about as long as the slowest one."""
    if len(calls) <= 1:
        return [call() for call in calls]
    workers = min(limit or len(calls), len(calls))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: call(), calls))


@dataclass
class Session:
    """One procedure with validated answers and run options."""

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
    runner: CommandRunner = field(init=False)
    ctx: Context = field(init=False)
    _journal: Journal | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.runner = CommandRunner(dry_run=self.dry_run, root=self.root)
        self.ctx = Context(
            procedure=self.procedure, answers=self.answers, secrets=self.secrets,
            runner=self.runner, root=self.root, dry_run=self.dry_run, on_event=self._event,
            purge=self.purge, restore=self.restore,
        )
        state = self.store.load(self.procedure.id)
        if state is not None:
            self.ctx.previous = dict(state.steps)
            self.ctx.confirmations = dict(state.confirmations)
        self.ctx.ownership = self.store.load_owned(self.procedure.id)
        self.ctx.on_owned = self._save_ownership

    def _save_ownership(self) -> None:
        """Write the ownership record now (not under --dry-run): what was just created
        is known even if the run dies before its step ends."""
        if not self.dry_run and self.ctx.ownership is not None:
            self.store.save_owned(self.procedure.id, self.ctx.ownership)

    def _own_from_now_on(self) -> None:
        """Under the run lock, before an apply changes anything: reload the ownership
        record (a run that ended meanwhile may have added to it) and start one when
        there is none, so that whatever this run creates is recorded. An unreadable
        record is never overwritten unseen."""
        if self.dry_run:
            return
        self.ctx.ownership = self.store.load_owned(self.procedure.id)
        owned = self.store.owned_path(self.procedure.id)
        if self.ctx.ownership is None and owned.exists():
            raise OperatorError(
                f"{owned} (CloudRig's record of what it created) cannot be read; keep a "
                "copy elsewhere and remove it to go on (teardown then keeps whatever it "
                "has no record of)")
        if self.ctx.ownership is None:
            self.ctx.ownership = Ownership()
            self._save_ownership()

    def require_ownership(self) -> None:
        """`teardown --purge` removes what CloudRig recorded creating; with no record at
        all it cannot tell CloudRig's objects from someone else's of the same name."""
        if self.purge and self.ctx.ownership is None:
            raise OperatorError(
                f"refusing teardown --purge: there is no record of what CloudRig created for "
                f"{self.procedure.id} here ({self.store.owned_path(self.procedure.id)} is "
                "missing or unreadable), so it cannot tell its own policies, tokens and keys "
                "from another's of the same name; remove them by hand, or run teardown "
                "without --purge")

    # ------------------------------------------------------------ events

    def _event(self, event: Event) -> None:
        if event.kind != "poll":  # each attempt of a wait: shown live, never logged
            where = f"[{event.step}] " if event.step else ""
            self.store.log(f"{self.procedure.id} {event.kind} {where}{redact(event.message)}")
        journal = self._journal
        if journal is not None:  # every event, polls too: a viewer shows the live wait
            record = event.model_dump(mode="json")
            record["message"] = redact(record["message"])
            journal.event(record)
        self.on_event(event)

    def _emit(self, step: Step | None, kind: str, message: str) -> None:
        self._event(Event(step=step.id if step else None, kind=kind, message=redact(message)))

    def elsewhere(self, step: Step) -> str | None:
        """The other host `step` runs on (then it is exported, not run), or None."""
        return self.procedure.runs_elsewhere(step, self.answers)

    def step_plan(self, step: Step) -> list[PlanItem]:
        """What applying `step` does from this host: its plan, or its export."""
        host = self.elsewhere(step)
        if host is None:
            return step.plan(self.ctx)
        self.ctx.exporting_to = host
        try:
            items = step.plan(self.ctx)
        finally:
            self.ctx.exporting_to = None
        return export_items(step.id, step.title, host, items,
                            self.procedure.export_dir(self.answers))

    def active_steps(self, only: Sequence[str] = ()) -> list[Step]:
        chosen = [self.procedure.step(s) for s in only] if only else list(self.procedure.steps)
        return [s for s in chosen if s.applies(self.answers)]

    # ------------------------------------------------------------ plan

    def plan(self, only: Sequence[str] = ()) -> list[StepPlan]:
        try:
            return self._plan(only)
        finally:
            self.ctx.close()

    def _plan(self, only: Sequence[str] = ()) -> list[StepPlan]:
        self.ctx.only = tuple(only)
        plans = []
        stopped: str | None = None
        for step in self.active_steps(only):
            self.ctx.step_id = step.id
            host = self.elsewhere(step)
            if stopped is not None:
                plans.append(StepPlan(step=step.id, title=step.title, host=host,
                                      error=f"not planned: {stopped} could not be reached",
                                      unplanned=True))
                continue
            try:
                plans.append(StepPlan(step=step.id, title=step.title, host=host,
                                      items=self.step_plan(step)))
            except OperatorError as exc:
                plans.append(StepPlan(step=step.id, title=step.title, host=host,
                                      error=exc.sentence, unreachable=unreachable(exc)))
                if unreachable(exc):
                    stopped = getattr(exc, "where", "") or "a remote API"
        self.ctx.step_id = None
        return plans

    def plan_view(self, plans: list[StepPlan], for_apply: bool = False
                  ) -> list[dict[str, Any]]:
        """The plan as shown (text and --json): diffs, argv, endpoints, never a secret.
        FOR_APPLY: what is skipped is what apply (not this dry run) would skip — the
        preview of an apply says what the apply will really run."""
        if for_apply:
            shown = Session(procedure=self.procedure, answers=self.answers,
                            secrets=self.secrets, store=self.store, root=self.root)
            return shown.plan_view(plans)
        return [
            {"step": p.step, "title": p.title, "error": p.error, "host": p.host,
             "unreachable": p.unreachable, "unplanned": p.unplanned,
             "note": (export_note(p.host, self.procedure.export_dir(self.answers), p.step)
                      if p.host else None),
             "items": [self.item_view(item) for item in p.items]}
            for p in plans
        ]

    def item_view(self, item: PlanItem) -> dict[str, Any]:
        match item:
            case FileWrite():
                data = view(item, self.root).model_dump()
                data["kind"] = "file"
            case Command():
                data = {"kind": "command", "command": display(item.argv),
                        "description": item.description,
                        "skipped": self.runner.skip_reason(item)}
            case ApiCall():
                body = redact(_json(item.body)) if item.body is not None else None
                data = {"kind": "api", "method": item.method, "url": redact(item.url),
                        "description": item.description, "body": body,
                        "skipped": "dry run" if self.dry_run and item.changes_remote else None}
            case FileRemove():
                removal = remove_view(item, self.ctx.owned_file(item.path), self.root)
                data = removal.model_dump() | {"kind": "remove",
                                               "exists": removal.action != "absent"}
            case FileRestore():
                owned = self.ctx.owned_file(item.path)
                planned = restore_view(item.path, self.root, owned.backup if owned else None)
                data = planned.model_dump() | {"kind": "restore", "text": planned.sentence()}
            case Manual():
                data = {"kind": "manual", "text": item.text}
        return data

    # ------------------------------------------------------------ apply

    def _state(self) -> ProcedureState:
        return self.store.load(self.procedure.id) or ProcedureState(procedure=self.procedure.id)

    def resolve_secrets(self, steps: Sequence[Step], undo: bool = False) -> None:
        """Ask for (or refuse, exit 2) every secret the run needs before changing anything
        (`undo`: the secrets teardown needs, `Step.undo_secrets`)."""
        provided: set[str] = set()
        for step in steps:
            self.ctx.step_id = step.id
            needed = step.undo_secrets(self.ctx) if undo else step.needs_secrets(self.ctx)
            self.require_secrets(
                {n for n in needed if n not in provided or self.secrets.available(n)})
            provided |= step.provides_secrets(self.ctx)  # e.g. a bootstrap token
        self.ctx.step_id = None

    def require_secrets(self, names: set[str]) -> None:
        """Get and validate each secret now (exit 2 naming its variable when missing)."""
        for name in sorted(names):
            value = self.secrets.get(name)
            check_secret(self.procedure.answers_model, name, value,
                         f"secret {name} (from {env_name(name)} or the secret store)")

    def apply(self, only: Sequence[str] = ()) -> RunResult:
        try:
            return self._apply(only)
        finally:
            self.ctx.close()

    def _apply(self, only: Sequence[str] = ()) -> RunResult:
        self.ctx.only = tuple(only)
        steps = self.active_steps(only)
        public = public_answers(self.answers)
        root = str(self.root) if self.root else None
        digest = answers_digest(public, root)
        resumable: set[str] = set()

        def begin(state: ProcedureState) -> None:
            resumable.update(state.resumable(digest) if not only else ())
            state.answers, state.root = public, root

        def apply_step(step: Step | Action, run: RunRecord | None, result: RunResult) -> None:
            assert isinstance(step, Step) and run is not None
            resumed = self._check(step, self.ctx).status if step.id in resumable else None
            if resumed in (Status.DONE, Status.STAGED):  # all this host could do is done
                run.completed.append(step.id)
                result.steps[step.id] = "staged" if resumed is Status.STAGED else "done"
                self._record(lambda state: setattr(state, "last_run", run))
                self._emit(step, "skipped", f"{step.title}: done in the interrupted run")
                return
            self._emit(step, "start", step.title)
            self.ctx.manual, self.ctx.skipped = [], []
            if self.elsewhere(step):
                self.ctx.execute(self.step_plan(step))
            else:
                step.apply(self.ctx)
            run.completed.append(step.id)
            result.steps[step.id] = "done"
            status, detail = Status.DONE, "applied"
            host = self.elsewhere(step)
            if host:
                status = Status.MANUAL
                detail = export_note(host, self.procedure.export_dir(self.answers), step.id)
            elif self.ctx.manual:
                status, detail = Status.MANUAL, "waiting for the operator (see the plan)"
                result.steps[step.id] = "manual"
            elif self.ctx.skipped:
                status, detail = Status.STAGED, staged_detail(len(self.ctx.skipped))
                result.steps[step.id] = "staged"
            if self.dry_run:
                detail = "dry run: nothing changed"
            record = StepRecord(status=status, detail=detail)

            def done(state: ProcedureState) -> None:
                state.steps[step.id] = record
                state.last_run = run

            self._record(done)
            kind = {Status.MANUAL: "manual", Status.STAGED: "staged"}.get(status, "done")
            self._emit(step, kind, f"{step.title}: {detail}")

        def prepare() -> None:
            self.resolve_secrets(steps)
            self._own_from_now_on()

        return self._run("apply", steps, prepare=prepare, begin=begin, work=apply_step,
                         resume_hint="rerun to resume", digest=digest)

    # ------------------------------------------------------------ the guarded loop

    def _run(self, kind: RunKind, units: Sequence[Step | Action], *,
             prepare: Callable[[], None],
             work: Callable[[Step | Action, RunRecord | None, RunResult], None],
             resume_hint: str, begin: Callable[[ProcedureState], None] | None = None,
             digest: str = "") -> RunResult:
        """The one loop apply, teardown and actions share: hold the procedure's run lock
        (a second run is refused at once), get every secret (PREPARE), record the run
        (pid and host in last_run, the events journal), then WORK each unit with the
        stopping signals turned into a stop at the next safe point. Any failure ends the
        run as one recorded sentence; state is written by reload-and-merge, so what
        others record meanwhile (a confirmation) survives."""
        result = RunResult(outcome="done")
        action = units[0].id if kind == "action" and units else None
        with self._exclusive(kind, action):
            prepare()
            run = None if kind == "action" else RunRecord(
                kind=kind, answers_digest=digest, pid=os.getpid(), host=this_host(),
                process_start=process_start(os.getpid()))
            self._begin(run, units, begin)
            try:
                with self._signals():
                    for unit in units:
                        self.ctx.step_id = unit.id
                        failure = self._attempt(
                            unit, lambda unit=unit: self._unit(unit, run, result, work),
                            resume_hint)
                        if failure is not None:
                            return self._stop(run, result, unit, *failure)
                self.ctx.step_id = None
                if run is not None:
                    run.outcome, run.finished = "done", now()
                    self._record(lambda state: setattr(state, "last_run", run))
                return result
            except BaseException as exc:
                # A second Ctrl+C between steps, or --debug re-raising: the run must not
                # stay "running" in state while this process goes on (or exits).
                if run is not None and run.outcome == "running":
                    ended = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                    run.outcome, run.finished = ended, now()
                    result.outcome = ended
                    self._record(lambda state: setattr(state, "last_run", run))
                raise
            finally:
                self._end(result)

    @contextlib.contextmanager
    def _exclusive(self, kind: RunKind, action: str | None) -> Iterator[None]:
        """The procedure's run lock, except under --dry-run (which changes nothing)."""
        if self.dry_run:
            yield
            return
        with run_lock(self.store.directory, self.procedure.id, kind, action):
            yield

    def _signals(self) -> contextlib.AbstractContextManager[None]:
        if self.dry_run:
            return contextlib.nullcontext()
        return stop_on_signals(self.ctx, detached=self.detached)

    def _begin(self, run: RunRecord | None, units: Sequence[Step | Action],
               begin: Callable[[ProcedureState], None] | None) -> None:
        """Record the run's start (under the lock, after its secrets were had): what the
        steps' checks read from state is reloaded now, last_run names this process, and
        a new events journal starts."""
        def start(state: ProcedureState) -> None:
            self.ctx.previous = dict(state.steps)
            self.ctx.confirmations = dict(state.confirmations)
            if begin is not None:
                begin(state)
            if run is not None:
                state.last_run = run

        if self.dry_run:
            start(self._state())
        else:
            self.store.update(self.procedure.id, start)
        if run is not None and not self.dry_run:
            self._journal = Journal(journal_path(self.store.directory, self.procedure.id))
            self._journal.start({
                "run": run.kind, "procedure": self.procedure.id, "pid": run.pid,
                "host": run.host, "process_start": run.process_start,
                "started": run.started.isoformat(),
                "steps": [[unit.id, unit.title] for unit in units]})
        if self.on_started is not None:
            self.on_started()

    def _end(self, result: RunResult) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.end({"outcome": result.outcome, "exit_code": result.exit_code,
                         "failed_step": result.failed_step, "message": result.message,
                         "steps": result.steps, "at": now().isoformat()})

    def _unit(self, unit: Step | Action, run: RunRecord | None, result: RunResult,
              work: Callable[[Step | Action, RunRecord | None, RunResult], None]) -> None:
        self.ctx.checkpoint()  # a safe point: asked to stop, the next unit does not start
        work(unit, run, result)

    def _record(self, change: Callable[[ProcedureState], None]) -> None:
        """Merge CHANGE into the saved state (never under --dry-run)."""
        if not self.dry_run:
            self.store.update(self.procedure.id, change)

    def _attempt(self, who: Step | Action, work: Callable[[], None], resume_hint: str,
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
            if self.debug:
                raise
            self.store.log(redact(traceback.format_exc()))
            return "failed", internal_error(who, exc)
        return None

    def _stop(self, run: RunRecord | None, result: RunResult, unit: Step | Action,
              outcome: Literal["failed", "interrupted"], message: str) -> RunResult:
        message = redact(message)
        self._emit(unit, "failed", f"{unit.title}: {message}")
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

        self._record(stopped)
        self.ctx.step_id = None
        result.outcome, result.failed_step, result.message = outcome, unit.id, message
        result.steps[unit.id] = outcome
        return result

    # ------------------------------------------------------------ check

    def check_step(self, step: Step, shared: Context | None = None) -> StepCheck:
        """STEP's check in a context of its own (checks run in threads); SHARED, when
        given, lends its API clients and read-once values (one refresh's checks share
        connections), and closes them itself."""
        ctx = Context(
            procedure=self.procedure, answers=self.answers, secrets=self.secrets,
            runner=self.runner, root=self.root, dry_run=True, step_id=step.id,
            previous=self.ctx.previous, confirmations=self.ctx.confirmations,
        )
        if shared is not None:
            ctx.resources, ctx.resources_lock = shared.resources, shared.resources_lock
        needs: list[str] = []
        try:
            result = self._staged(step, self._check(step, ctx))
        except SecretMissing as exc:
            # Not a failure of the step: this check cannot tell without the secret.
            needs = [exc.secret] if exc.secret else []
            result = CheckResult(status=Status.UNKNOWN, detail=self._needs_detail(exc))
        except OperatorError as exc:
            result = CheckResult(status=Status.FAILED, detail=f"cannot check: {exc.sentence}")
        except Exception as exc:
            self.store.log(redact(traceback.format_exc()))
            result = CheckResult(status=Status.FAILED, detail=internal_error(step, exc))
        finally:
            if shared is None:
                ctx.close()
        return StepCheck(step=step.id, title=step.title, status=result.status,
                         detail=redact(result.detail), host=self.elsewhere(step),
                         checked_at=datetime.now(UTC), needs=needs)

    def _needs_detail(self, exc: SecretMissing) -> str:
        """"needs <the secret's title>" and where it may come from."""
        if not exc.secret:
            return exc.sentence
        info = self.procedure.answers_model.model_fields.get(exc.secret)
        title = info.title if info is not None and info.title else exc.secret
        text = (f"needs {title}: set {env_name(exc.secret)} or run "
                f"`cloudrig secrets set {exc.secret}`")
        if exc.store_problem:
            text += f" (the secret store: {exc.store_problem})"
        return text

    def _staged(self, step: Step, result: CheckResult) -> CheckResult:
        """Under --root, a step whose last apply left host commands unrun is staged
        however complete its files look: the target host has yet to run them."""
        record = self.ctx.previous.get(step.id)
        if (self.root is not None and result.status is Status.DONE and record is not None
                and record.status is Status.STAGED):
            return CheckResult(status=Status.STAGED, detail=f"{record.detail}; {result.detail}")
        return result

    def _check(self, step: Step, ctx: Context) -> CheckResult:
        """A step's check; one for another host is "to run on <host>" (never checked
        from here: its files and services are on that host)."""
        host = self.elsewhere(step)
        if host is None:
            return step.check(ctx)
        export_dir = self.procedure.export_dir(self.answers)

        exported = host_path(script_path(export_dir, host, step.id), self.root).exists()
        tail = "" if exported else " (not exported yet: apply writes it)"
        return CheckResult(status=Status.MANUAL,
                           detail=export_note(host, export_dir, step.id) + tail)

    def check(self) -> list[StepCheck]:
        """Every step's check, run concurrently (each may ask a remote API)."""
        steps = self.active_steps()
        shared = Context(procedure=self.procedure, answers=self.answers, secrets=self.secrets,
                         runner=self.runner, root=self.root, dry_run=True)
        try:
            return run_concurrently(
                [lambda step=step: self.check_step(step, shared) for step in steps], limit=8)
        finally:
            shared.close()

    # ------------------------------------------------------------ teardown

    def teardown(self) -> RunResult:
        try:
            return self._teardown()
        finally:
            self.ctx.close()

    def undo_items(self, step: Step) -> list[PlanItem]:
        """What teardown does for `step` from this host, with --restore's file restores."""
        host = self.elsewhere(step)
        if host:  # its undo belongs to that host; only the exported copies are here
            return export_undo(self.procedure.id, step.id, host,
                               self.procedure.export_dir(self.answers), self.root)
        items = step.undo_plan(self.ctx)
        if self.restore:
            items += [FileRestore(path=path) for path in step.restorable(self.ctx)]
        return items

    def teardown_plan(self) -> list[StepPlan]:
        """What teardown would do, step by step in its (reverse) order: the preview."""
        self.require_ownership()
        plans = []
        for step in reversed(self.active_steps()):
            self.ctx.step_id = step.id
            try:
                items = self.undo_items(step)
            except OperatorError as exc:
                plans.append(StepPlan(step=step.id, title=step.title, error=exc.sentence))
                continue
            if items:
                plans.append(StepPlan(step=step.id, title=step.title, items=items))
        self.ctx.step_id = None
        return plans

    def _teardown(self) -> RunResult:
        self.require_ownership()
        steps = self.active_steps()
        undone = list(reversed(steps))

        def prepare() -> None:
            if not self.dry_run:  # under the run lock: what the last run recorded
                self.ctx.ownership = self.store.load_owned(self.procedure.id)
                self.require_ownership()
            self.resolve_secrets([s for s in steps if type(s).undo_plan is not Step.undo_plan
                                  and not self.elsewhere(s)], undo=True)

        def undo_step(step: Step | Action, run: RunRecord | None, result: RunResult) -> None:
            assert isinstance(step, Step) and run is not None
            items = self.undo_items(step)
            if not items:
                return
            self._emit(step, "start", f"undo {step.title}")
            self.ctx.execute(items)
            run.completed.append(step.id)
            result.steps[step.id] = "removed"

            def removed(state: ProcedureState) -> None:
                state.steps.pop(step.id, None)
                # What the operator confirmed by hand is what was just undone (or what the
                # undo's manual lines tell them to remove): the confirmation no longer holds.
                state.confirmations.pop(step.id, None)
                state.last_run = run

            self._record(removed)
            self._emit(step, "done", f"undo {step.title}: done")

        return self._run("teardown", undone, prepare=prepare, work=undo_step,
                         resume_hint="rerun teardown to finish")

    # ------------------------------------------------------------ actions

    def action_plan(self, action: Action) -> StepPlan:
        """What `action` will do, shown before it runs (a plan error is its sentence)."""
        self.ctx.step_id = action.id
        try:
            return StepPlan(step=action.id, title=action.title, items=action.plan(self.ctx))
        except OperatorError as exc:
            return StepPlan(step=action.id, title=action.title, error=exc.sentence)
        finally:
            self.ctx.step_id = None

    def run_action(self, action: Action) -> RunResult:
        """Run an operator action and record how it ended (not under --dry-run). It is
        not a run of the steps: an interrupted apply still resumes afterwards. It holds
        the procedure's run lock like apply does."""
        def execute(unit: Step | Action, run: RunRecord | None, result: RunResult) -> None:
            self._event(Event(step=action.id, kind="start", message=action.title))
            action.execute(self.ctx)
            message = "dry run: nothing changed" if self.dry_run else "done"
            result.steps[action.id] = "done"
            self._record(lambda state: state.actions.__setitem__(
                action.id, ActionRecord(outcome="done", detail=message)))
            self._event(Event(step=action.id, kind="done", message=f"{action.title}: {message}"))

        try:
            return self._run("action", [action],
                             prepare=lambda: self.require_secrets(action.needs_secrets(self.ctx)),
                             work=execute, resume_hint="rerun the action")
        finally:
            self.ctx.step_id = None
            self.ctx.close()


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


def _json(value: Any) -> str:
    if isinstance(value, str | bytes):
        return value if isinstance(value, str) else value.decode(errors="replace")
    return json.dumps(value, indent=2, ensure_ascii=False)
