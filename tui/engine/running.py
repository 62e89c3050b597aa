"""Running: apply (with resume), teardown (with --restore) and operator actions, each
a kind of work for the one guarded loop (tui/engine/loop.py). Apply records each
step's outcome in the state store as it goes, so an interrupted or failed run resumes
where it stopped."""

from __future__ import annotations

from collections.abc import Sequence

from tui.answers import public_answers
from tui.context import Context
from tui.export import export_note
from tui.model import Action, Event, Status, Step
from tui.state import ActionRecord, ProcedureState, RunRecord, StepRecord, answers_digest
from tui.words import plural

from .checking import step_check
from .loop import RunResult, Unit, guarded_run
from .planning import require_secrets, resolve_secrets, step_plan, undo_items
from .scope import Scope


def staged_detail(skipped: int) -> str:
    """What a staged step still needs: its host commands, run on the target host."""
    return (f"staged under --root: {plural(skipped, 'host command')} to run on the "
            "target host (see the plan)")


def apply(scope: Scope, only: Sequence[str] = ()) -> RunResult:
    """Apply the active steps (those named in ONLY), resuming after what an interrupted
    run with the same answers finished."""
    steps = scope.active_steps(only)
    public = public_answers(scope.answers)
    root = str(scope.root) if scope.root else None
    digest = answers_digest(public, root)
    resumable: set[str] = set()

    def begin(state: ProcedureState) -> None:
        resumable.update(state.resumable(digest) if not only else ())
        state.answers, state.root = public, root

    def apply_step(unit: Unit, ctx: Context, run: RunRecord | None, result: RunResult) -> None:
        assert isinstance(unit, Step) and run is not None
        step = unit
        resumed = (step_check(scope, step, scope.context(step, only=only)).status
                   if step.id in resumable else None)  # its own context: apply's starts clean
        if resumed in (Status.DONE, Status.STAGED):  # all this host could do is done
            run.completed.append(step.id)
            result.steps[step.id] = "staged" if resumed is Status.STAGED else "done"
            scope.record(lambda state: setattr(state, "last_run", run))
            scope.emit(step, "skipped", f"{step.title}: done in the interrupted run")
            return
        scope.emit(step, "start", step.title)
        host = scope.elsewhere(step)
        if host:
            ctx.execute(step_plan(scope, step, only))
        else:
            step.apply(ctx)
        run.completed.append(step.id)
        result.steps[step.id] = "done"
        status, detail = Status.DONE, "applied"
        if host:
            status, detail = Status.MANUAL, export_note(host, scope.export_dir(), step.id)
        elif ctx.manual:
            status, detail = Status.MANUAL, "waiting for the operator (see the plan)"
            result.steps[step.id] = "manual"
        elif ctx.skipped:
            status, detail = Status.STAGED, staged_detail(len(ctx.skipped))
            result.steps[step.id] = "staged"
        if scope.dry_run:
            detail = "dry run: nothing changed"
        record = StepRecord(status=status, detail=detail)

        def done(state: ProcedureState) -> None:
            state.steps[step.id] = record
            state.last_run = run

        scope.record(done)
        kind = {Status.MANUAL: "manual", Status.STAGED: "staged"}.get(status, "done")
        scope.emit(step, kind, f"{step.title}: {detail}")

    def prepare() -> None:
        resolve_secrets(scope, steps, only=only)
        scope.own_from_now_on()

    return guarded_run(scope, "apply", steps, context=lambda unit: scope.context(unit, only=only),
                       prepare=prepare, begin=begin, work=apply_step,
                       resume_hint="rerun to resume", digest=digest)


def teardown(scope: Scope) -> RunResult:
    """Undo the active steps in reverse order, as the ownership record allows."""
    scope.require_ownership()
    steps = scope.active_steps()

    def prepare() -> None:
        if not scope.dry_run:  # under the run lock: what the last run recorded
            scope.shared.ownership = scope.store.load_owned(scope.procedure.id)
            scope.require_ownership()
        resolve_secrets(scope, [s for s in steps if type(s).undo_plan is not Step.undo_plan
                                and not scope.elsewhere(s)], undo=True)

    def undo_step(unit: Unit, ctx: Context, run: RunRecord | None, result: RunResult) -> None:
        assert isinstance(unit, Step) and run is not None
        step = unit
        items = undo_items(scope, step, ctx)
        if not items:
            return
        scope.emit(step, "start", f"undo {step.title}")
        ctx.execute(items)
        run.completed.append(step.id)
        result.steps[step.id] = "removed"

        def removed(state: ProcedureState) -> None:
            state.steps.pop(step.id, None)
            # What the operator confirmed by hand is what was just undone (or what the
            # undo's manual lines tell them to remove): the confirmation no longer holds.
            state.confirmations.pop(step.id, None)
            state.last_run = run

        scope.record(removed)
        scope.emit(step, "done", f"undo {step.title}: done")

    return guarded_run(scope, "teardown", list(reversed(steps)), context=scope.context,
                       prepare=prepare, work=undo_step, resume_hint="rerun teardown to finish")


def run_action(scope: Scope, action: Action) -> RunResult:
    """Run an operator action and record how it ended (not under --dry-run). It is
    not a run of the steps: an interrupted apply still resumes afterwards. It holds
    the procedure's run lock like apply does."""
    def execute(unit: Unit, ctx: Context, run: RunRecord | None, result: RunResult) -> None:
        scope.event(Event(step=action.id, kind="start", message=action.title))
        action.execute(ctx)
        message = "dry run: nothing changed" if scope.dry_run else "done"
        result.steps[action.id] = "done"
        scope.record(lambda state: state.actions.__setitem__(
            action.id, ActionRecord(outcome="done", detail=message)))
        scope.event(Event(step=action.id, kind="done", message=f"{action.title}: {message}"))

    return guarded_run(scope, "action", [action], context=scope.context,
                       prepare=lambda: require_secrets(
                           scope, action.needs_secrets(scope.context(action))),
                       work=execute, resume_hint="rerun the action")
