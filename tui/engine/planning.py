"""Planning: what apply, teardown or an action would do, step by step, and the
secrets a run needs before it changes anything. Asks remotes only what a plan may
read; changes nothing."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from tui.answers import check_secret
from tui.commands import CommandRunner
from tui.context import Context
from tui.errors import OperatorError
from tui.export import export_items, export_undo
from tui.model import Action, FileRestore, PlanItem, Procedure, Step
from tui.runshared import RunShared
from tui.secrets import SecretSupply, env_name

from .scope import Scope


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


def unreachable(exc: OperatorError) -> bool:
    """A remote that did not answer at all (no HTTP status: refused, timed out, TLS): every
    later call to it would wait the same way, so planning stops at the first."""
    from tui.http import RemoteError  # deferred: start-up (httpx)

    return isinstance(exc, RemoteError) and exc.status is None


def step_plan(scope: Scope, step: Step, only: Sequence[str] = ()) -> list[PlanItem]:
    """What applying `step` does from this host: its plan, or its export (planned in a
    context that says which host it is exported to)."""
    host = scope.elsewhere(step)
    items = step.plan(scope.context(step, only=only, exporting_to=host))
    if host is None:
        return items
    return export_items(step.id, step.title, host, items, scope.export_dir())


def plan(scope: Scope, only: Sequence[str] = ()) -> list[StepPlan]:
    """Every active step's plan; after a remote that did not answer at all, the later
    steps are listed unplanned rather than each waiting on it again."""
    plans = []
    stopped: str | None = None
    for step in scope.active_steps(only):
        host = scope.elsewhere(step)
        if stopped is not None:
            plans.append(StepPlan(step=step.id, title=step.title, host=host,
                                  error=f"not planned: {stopped} could not be reached",
                                  unplanned=True))
            continue
        try:
            plans.append(StepPlan(step=step.id, title=step.title, host=host,
                                  items=step_plan(scope, step, only)))
        except OperatorError as exc:
            plans.append(StepPlan(step=step.id, title=step.title, host=host,
                                  error=exc.sentence, unreachable=unreachable(exc)))
            if unreachable(exc):
                stopped = getattr(exc, "where", "") or "a remote API"
    return plans


def undo_items(scope: Scope, step: Step, ctx: Context) -> list[PlanItem]:
    """What teardown does for `step` from this host, with --restore's file restores."""
    host = scope.elsewhere(step)
    if host:  # its undo belongs to that host; only the exported copies are here
        return export_undo(scope.procedure.id, step.id, host, scope.export_dir(), scope.root)
    items = step.undo_plan(ctx)
    if scope.options.restore:
        items += [FileRestore(path=path) for path in step.restorable(ctx)]
    return items


def teardown_plan(scope: Scope) -> list[StepPlan]:
    """What teardown would do, step by step in its (reverse) order: the preview."""
    scope.require_ownership()
    plans = []
    for step in reversed(scope.active_steps()):
        try:
            items = undo_items(scope, step, scope.context(step))
        except OperatorError as exc:
            plans.append(StepPlan(step=step.id, title=step.title, error=exc.sentence))
            continue
        if items:
            plans.append(StepPlan(step=step.id, title=step.title, items=items))
    return plans


def action_plan(scope: Scope, action: Action) -> StepPlan:
    """What `action` will do, shown before it runs (a plan error is its sentence)."""
    try:
        return StepPlan(step=action.id, title=action.title,
                        items=action.plan(scope.context(action)))
    except OperatorError as exc:
        return StepPlan(step=action.id, title=action.title, error=exc.sentence)


# ---------------------------------------------------------------- the secrets a run needs


def missing_secrets(procedure: Procedure, answers: BaseModel, secrets: SecretSupply,
                    steps: Sequence[Step] | None = None) -> list[str]:
    """Secret fields apply will ask for (as `resolve_secrets` does) that no source has
    right now (environment, typed this session, the store), in step order: what a front
    must ask for before it offers to apply. Asks no one and calls nothing."""
    run = RunShared()
    runner = CommandRunner(dry_run=True)
    chosen = steps if steps is not None else [s for s in procedure.steps if s.applies(answers)]
    provided: set[str] = set()
    missing: list[str] = []
    for step in chosen:
        ctx = Context(procedure=procedure, answers=answers, secrets=secrets, runner=runner,
                      dry_run=True, step_id=step.id, common=run)
        for name in sorted(step.needs_secrets(ctx)):
            if name not in provided and name not in missing and not secrets.available(name):
                missing.append(name)
        provided |= step.provides_secrets(ctx)
    return missing


def resolve_secrets(scope: Scope, steps: Sequence[Step], undo: bool = False,
                    only: Sequence[str] = ()) -> None:
    """Ask for (or refuse, exit 2) every secret the run needs before changing anything
    (`undo`: the secrets teardown needs, `Step.undo_secrets`)."""
    provided: set[str] = set()
    for step in steps:
        ctx = scope.context(step, only=only)
        needed = step.undo_secrets(ctx) if undo else step.needs_secrets(ctx)
        require_secrets(scope, {n for n in needed
                                if n not in provided or scope.secrets.available(n)})
        provided |= step.provides_secrets(ctx)  # e.g. a bootstrap token


def require_secrets(scope: Scope, names: set[str]) -> None:
    """Get and validate each secret now (exit 2 naming its variable when missing)."""
    for name in sorted(names):
        value = scope.secrets.get(name)
        check_secret(scope.procedure.answers_model, name, value,
                     f"secret {name} (from {env_name(name)} or the secret store)")
