"""The engine's modules, one job each (tui/engine/): frozen run options; a Context made
per step on one explicitly shared run; planning; typed views; the one guarded loop
that apply, teardown and actions share; checking; and attach's typed end of a run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tui.context import Context
from tui.engine import RunOptions, Session, StepView, checking, loop, planning, running
from tui.engine.scope import Scope
from tui.engine.views import ApiView, FileItemView, ManualView
from tui.errors import OperatorError
from tui.http import RemoteError
from tui.journal import RunEnd
from tui.model import (
    Action,
    ApiCall,
    CheckResult,
    FileWrite,
    Manual,
    Page,
    PlanItem,
    Procedure,
    Status,
    Step,
)
from tui.runshared import RunShared
from tui.secrets import SecretSource
from tui.state import StateStore


class Answers(BaseModel):
    role: str
    export_dir: str
    target: str


class Client:
    """A stand-in for an API client steps share: counts how often one is made."""

    made = 0

    def __init__(self) -> None:
        Client.made += 1
        self.closed = False

    def close(self) -> None:
        self.closed = True


SEEN: list[tuple[str, Context]] = []
"""(what, context) for every call the steps below get, in order."""


class Exported(Step):
    """Runs on host b: from host a it is planned for export."""

    id, title, host = "exported", "On host b", "b"

    def plan(self, ctx: Context) -> list[PlanItem]:
        SEEN.append(("plan", ctx))
        ctx.shared("client", Client)
        return [FileWrite(path=f"{ctx.answers.target}/b.conf", content="b\n"),
                Manual(text="reboot b")]


class Local(Step):
    id, title = "local", "On any host"

    def plan(self, ctx: Context) -> list[PlanItem]:
        SEEN.append(("plan", ctx))
        ctx.shared("client", Client)
        return [FileWrite(path=f"{ctx.answers.target}/local.conf", content="local\n")]

    def apply(self, ctx: Context) -> None:
        SEEN.append(("apply", ctx))
        ctx.shared("client", Client)
        ctx.execute(self.plan(ctx))

    def check(self, ctx: Context) -> CheckResult:
        SEEN.append(("check", ctx))
        ctx.shared("client", Client)
        return CheckResult(status=Status.PENDING, detail="not yet")


class LocalToo(Local):
    id, title = "local-too", "On any host too"


class Waits(Step):
    """Leaves the operator a manual line when applied."""

    id, title = "waits", "Waits for the operator"

    def plan(self, ctx: Context) -> list[PlanItem]:
        return [Manual(text="press the button")]

    def apply(self, ctx: Context) -> None:
        SEEN.append(("apply", ctx))
        ctx.execute(self.plan(ctx))


class Stops(Step):
    """Asks the run to stop (as the TUI's stop key would) while it is applied."""

    id, title = "stops", "Asks to stop"

    def plan(self, ctx: Context) -> list[PlanItem]:
        return []

    def apply(self, ctx: Context) -> None:
        SEEN.append(("apply", ctx))
        ctx.cancel.set()


class Unreachable(Step):
    id, title = "unreachable", "Asks a remote that does not answer"

    def plan(self, ctx: Context) -> list[PlanItem]:
        raise RemoteError("the API at http://127.0.0.1:9 did not answer", status=None)


class Say(Action):
    id, title, help = "say", "Say something", "says it"

    def plan(self, ctx: Context) -> list[PlanItem]:
        return [ApiCall(method="POST", url="http://127.0.0.1:9/say", body={"a": 1},
                        description="say it")]

    def execute(self, ctx: Context) -> None:
        SEEN.append(("action", ctx))


PAGES = (Page("p", "h", ("role", "export_dir", "target")),)


def procedure(*steps: Step) -> Procedure:
    return Procedure(id="engine-test", title="Engine test", summary="the engine's modules",
                     runbook="-", answers_model=Answers, pages=PAGES, steps=steps,
                     host_field="role", export_field="export_dir", actions=(Say(),))


def session(tmp: Path, *steps: Step, **options: Any) -> Session:
    SEEN.clear()
    Client.made = 0
    answers = Answers(role="a", export_dir=str(tmp / "export"), target=str(tmp / "target"))
    return Session(procedure=procedure(*steps), answers=answers,
                   secrets=SecretSource("engine-test", []), store=StateStore(tmp / "state"),
                   root=tmp / "root", **options)


# ---------------------------------------------------------------- options


def test_run_options_are_frozen_and_are_what_the_session_was_made_with(tmp_path: Path) -> None:
    s = session(tmp_path, Local(), dry_run=True, purge=True)
    assert s.options == RunOptions(root=tmp_path / "root", dry_run=True, purge=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.options.dry_run = False  # type: ignore[misc]
    assert s.scope.options is s.options  # the modules read the one frozen copy


# ---------------------------------------------------------------- a context per step


def test_each_step_plans_in_a_context_of_its_own(tmp_path: Path) -> None:
    """A step never sees another's id or export host, and no step's context is changed
    after it: the exported step's still says where it is exported to."""
    s = session(tmp_path, Exported(), Local())
    s.plan()
    (_, exported), (_, local) = SEEN
    assert exported is not local
    assert (exported.step_id, exported.exporting_to) == ("exported", "b")
    assert (local.step_id, local.exporting_to) == ("local", None)
    # What the steps share is one object, passed to each explicitly.
    assert exported.common is local.common is s.scope.shared
    assert Client.made == 1


def test_each_step_applies_in_a_context_of_its_own(tmp_path: Path) -> None:
    """A manual line left by one step is that step's: the next one starts clean and is
    recorded done, not waiting for the operator."""
    s = session(tmp_path, Waits(), Local())
    result = s.apply()
    assert result.steps == {"waits": "manual", "local": "done"}
    (_, waits), (_, local) = [(what, ctx) for what, ctx in SEEN if what == "apply"]
    assert waits is not local and waits.common is local.common
    assert (waits.step_id, waits.manual) == ("waits", ["press the button"])
    assert (local.step_id, local.manual) == ("local", [])


def test_a_stop_asked_in_one_step_stops_the_next(tmp_path: Path) -> None:
    """The cancel Event is the run's, not the step's: set in one step's context, the
    next step's safe point sees it."""
    s = session(tmp_path, Stops(), Local())
    result = s.apply()
    assert (result.outcome, result.failed_step) == ("interrupted", "local")
    assert [what for what, _ in SEEN] == ["apply"]


def test_a_context_s_run_wide_names_read_the_shared_run() -> None:
    shared = RunShared()
    ctx = Context(procedure=None, answers=None, secrets=None, runner=None,  # type: ignore[arg-type]
                  common=shared)
    ctx.cancel.set()
    ctx.on_owned = lambda: None
    assert shared.cancel.is_set() and shared.on_owned is ctx.on_owned
    shared.stop_reason = "SIGTERM"
    with pytest.raises(Exception, match="interrupted by SIGTERM"):
        ctx.checkpoint()


# ---------------------------------------------------------------- planning


def test_planning_stops_at_a_remote_that_does_not_answer(tmp_path: Path) -> None:
    s = session(tmp_path, Unreachable(), Local())
    first, second = planning.plan(s.scope)
    assert first.unreachable and "did not answer" in (first.error or "")
    assert second.unplanned and second.error is not None
    assert [what for what, _ in SEEN] == []  # the later step's plan was never asked


def test_an_exported_step_is_planned_as_its_export(tmp_path: Path) -> None:
    s = session(tmp_path, Exported())
    items = planning.step_plan(s.scope, Exported())
    paths = [item.path for item in items if isinstance(item, FileWrite)]
    assert paths[-1] == f"{tmp_path}/export/b/exported.sh"


# ---------------------------------------------------------------- views


def test_plan_views_are_typed_and_dump_as_plan_json_always_did(tmp_path: Path) -> None:
    s = session(tmp_path, Local())
    planned = s.plan()
    (view,) = s.plan_view(planned)
    assert isinstance(view, StepView)
    (item,) = view.items
    assert isinstance(item, FileItemView) and item.action == "create"
    dumped = view.model_dump(mode="json")
    assert list(dumped) == ["step", "title", "error", "host", "unreachable", "unplanned",
                            "note", "items"]
    assert list(dumped["items"][0]) == ["path", "action", "mode", "owner", "diff", "secret",
                                        "mode_drift", "kind"]
    assert StepView.model_validate(dumped) == view  # a --json plan reads back


def test_a_view_refuses_an_item_of_no_known_kind() -> None:
    with pytest.raises(ValidationError):
        StepView.model_validate({"step": "s", "title": "t", "items": [{"kind": "teleport"}]})
    with pytest.raises(ValidationError):
        StepView.model_validate({"step": "s", "title": "t",
                                 "items": [{"kind": "api", "method": "GET"}]})  # no url
    assert isinstance(StepView.model_validate(
        {"step": "s", "title": "t", "items": [{"kind": "manual", "text": "x"}]}).items[0],
        ManualView)


def test_an_api_call_s_view_masks_nothing_it_should_not_and_says_dry_run(tmp_path) -> None:
    s = session(tmp_path, Local(), dry_run=True)
    view = s.item_view(ApiCall(method="PUT", url="http://127.0.0.1:9/x", body={"a": 1}))
    assert isinstance(view, ApiView)
    assert (json.loads(view.body or ""), view.skipped) == ({"a": 1}, "dry run")
    (for_apply,) = s.plan_view([planning.StepPlan(step="x", title="x", items=[
        ApiCall(method="PUT", url="http://127.0.0.1:9/x")])], for_apply=True)
    assert for_apply.items[0].skipped is None  # what apply itself would skip: nothing


# ---------------------------------------------------------------- the guarded loop


def test_the_guarded_loop_ends_a_failed_unit_as_one_recorded_sentence(tmp_path) -> None:
    s = session(tmp_path, Local())
    scope: Scope = s.scope
    contexts: list[Context] = []

    def work(unit: Any, ctx: Context, run: Any, result: Any) -> None:
        contexts.append(ctx)
        raise OperatorError("the remote said no")

    result = loop.guarded_run(scope, "apply", [Local()], context=scope.context,
                              prepare=lambda: None, work=work, resume_hint="rerun")
    assert (result.outcome, result.failed_step, result.message) == (
        "failed", "local", "the remote said no")
    assert contexts[0].step_id == "local"
    state = s.store.load("engine-test")
    assert state is not None and state.last_run is not None
    assert (state.last_run.outcome, state.steps["local"].status) == ("failed", Status.FAILED)


def test_actions_run_through_the_same_loop_in_their_own_context(tmp_path: Path) -> None:
    s = session(tmp_path, Local())
    result = running.run_action(s.scope, Say())
    assert result.outcome == "done"
    ((what, ctx),) = SEEN
    assert (what, ctx.step_id) == ("action", "say")
    state = s.store.load("engine-test")
    assert state is not None and state.actions["say"].outcome == "done"


# ---------------------------------------------------------------- checking


def test_checks_share_one_round_of_clients_not_the_run_s(tmp_path: Path) -> None:
    s = session(tmp_path, Local(), LocalToo())
    checks = checking.check(s.scope)
    assert [(c.step, c.status) for c in checks] == [("local", Status.PENDING),
                                                    ("local-too", Status.PENDING)]
    ctx, other = sorted((ctx for _, ctx in SEEN), key=lambda c: c.step_id or "")
    assert ctx is not other and ctx.common is other.common  # threads: no order asserted
    assert ctx.dry_run and (ctx.step_id, other.step_id) == ("local", "local-too")
    assert ctx.common is not s.scope.shared  # a check is no part of a run
    assert Client.made == 1 and ctx.common.resources == {}  # closed after the round


# ---------------------------------------------------------------- attach


def test_attach_reads_a_typed_end_of_run() -> None:
    end = RunEnd.from_record({"type": "end", "outcome": "done", "exit_code": 0,
                              "failed_step": None, "message": None,
                              "steps": {"a": "done", "b": "manual"}}, "proc")
    assert (end.exit_code, end.waiting, end.failed_step) == (0, ["b"], None)
    unknown = RunEnd.from_record({}, "proc")  # no end record was read
    assert (unknown.outcome, unknown.exit_code, unknown.failed_step) == (
        "interrupted", 130, "proc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        unknown.outcome = "done"  # type: ignore[misc]
