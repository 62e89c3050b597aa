"""The engine's modules, one job each (tui/engine/): frozen run options; a Context made
per step on one explicitly shared run; planning; typed views; the one guarded loop
that apply, teardown and actions share; checking; attach's typed end of a run; and the
typed reports status, actions and `apply --json` print."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from forked import in_a_forked_child
from pydantic import BaseModel, TypeAdapter, ValidationError

import tui.cli_commands
import tui.engine
import tui.engine.reports
from tui.cli import main
from tui.context import Context
from tui.engine import (
    RunOptions,
    Session,
    StepView,
    check_sessions,
    checking,
    loop,
    planning,
    running,
)
from tui.engine.reports import (
    ActionView,
    AppliedReport,
    ApplySummary,
    ProcedureStatus,
    StatusReport,
    UnappliedReport,
)
from tui.engine.scope import Scope
from tui.engine.views import ApiView, FileItemView, ManualView
from tui.errors import OperatorError
from tui.http import RemoteError
from tui.journal import RunEnd, RunStart
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
from tui.registry import REGISTRY, ProcedureInfo
from tui.runshared import RunShared
from tui.secrets import SecretSource
from tui.state import RunRecord, StateStore


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


class Where(Local):
    """Notes the thread its check runs on."""

    id, title = "where", "Where checks run"
    threads: list[threading.Thread] = []

    def check(self, ctx: Context) -> CheckResult:
        Where.threads.append(threading.current_thread())
        return super().check(ctx)


def test_refreshes_check_on_the_same_kept_threads(tmp_path: Path) -> None:
    """A dashboard refreshes again and again: its checks run on one pool kept for the
    process (threads started only while fewer are idle than checks wait), not on
    threads started and joined for each refresh."""
    s = session(tmp_path, Where(), Local())
    Where.threads.clear()
    for _ in range(5):
        assert [c.status for c in s.check()] == [Status.PENDING, Status.PENDING]
    assert len(Where.threads) == 5
    # Which idle thread of the pool takes a check is the OS's choice (and other tests in
    # this process use the pool too): what holds is that every one is the kept pool's,
    # still alive after the refreshes, not started and joined for one.
    pool = checking._check_pool()
    assert pool is checking._check_pool()
    assert set(Where.threads) <= set(pool._threads)
    assert all(t.is_alive() and t.name.startswith("cloudrig-check") for t in Where.threads)


class RecordingPool(ThreadPoolExecutor):
    """The kept pool's stand-in: notes which step each submitted check is for."""

    def __init__(self) -> None:
        super().__init__(4)
        self.submitted: list[str] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        _scope, _run, step = args
        self.submitted.append(step.id)
        return super().submit(fn, *args, **kwargs)


def test_a_refresh_starts_the_checks_that_took_longest_last_time_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check of every session goes onto one pool from one thread, those that took
    longest in the last refresh first (a check asking questions in a row sets how long a
    refresh lasts); each session's results still come in its steps' order."""
    pool = RecordingPool()
    monkeypatch.setattr(checking, "_check_pool", lambda: pool)
    monkeypatch.setattr(checking, "_took", {})
    first = session(tmp_path / "a", Local(), LocalToo(), Where())
    second = session(tmp_path / "b", Local(), LocalToo(), Where())
    steps = ["local", "local-too", "where"]
    checks = check_sessions([first, second])
    assert [[c.step for c in one] for one in checks] == [steps, steps]
    assert pool.submitted == steps + steps  # nothing known yet: in order
    assert set(checking._took) == {("engine-test", step) for step in steps}
    assert all(seconds > 0 for seconds in checking._took.values())

    checking._took.update({("engine-test", "where"): 2.0, ("engine-test", "local"): 0.5,
                           ("engine-test", "local-too"): 1.0})
    pool.submitted.clear()
    checks = check_sessions([first, second])
    assert [[c.step for c in one] for one in checks] == [steps, steps]
    assert pool.submitted == ["where", "where", "local-too", "local-too", "local", "local"]
    pool.shutdown()


def test_a_forked_child_checks_on_threads_of_its_own(tmp_path: Path) -> None:
    """tui/detach.py forks: the child has none of the parent's pool threads, so a check
    there must start its own (on the parent's pool it would wait forever)."""
    s = session(tmp_path, Where(), Local())
    for _ in range(3):  # the process's pool exists, with as many idle threads as checks
        s.check()
    assert in_a_forked_child(
        lambda: [c.status for c in s.check()] == [Status.PENDING, Status.PENDING])


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


def test_attach_and_the_progress_screen_read_a_typed_start_of_run() -> None:
    """The journal's `run` record as attach prints it and a new viewer lists its steps;
    a field missing or malformed is None or left out, never a crash."""
    start = RunStart.from_record({"type": "run", "run": "apply", "procedure": "proc",
                                  "pid": 42, "host": "h", "process_start": 7,
                                  "started": "2026-01-02T03:04:05+00:00",
                                  "steps": [["a", "Step A"], ["b", "Step B"], ["junk"]]})
    assert (start.run, start.pid, start.host, start.started) == (
        "apply", 42, "h", "2026-01-02T03:04:05+00:00")
    assert start.steps == (("a", "Step A"), ("b", "Step B"))
    assert RunStart.from_record({"pid": "42", "steps": "ab"}) == RunStart()


# ---------------------------------------------------------------- reports

PROCEDURE = procedure(Local(), LocalToo())
"""What the report tests register as `engine-test`, as a line in tui/registry.py would."""


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """engine-test registered, a private state dir, and the arguments of a run of it:
    its answers file and a --root."""
    monkeypatch.setitem(REGISTRY, "engine-test", ProcedureInfo(
        "engine-test", PROCEDURE.title, PROCEDURE.summary, __name__))
    monkeypatch.setenv("CLOUDRIG_STATE_DIR", str(tmp_path / "state"))
    answers = tmp_path / "engine-test.yaml"
    answers.write_text(json.dumps({"role": "a", "export_dir": str(tmp_path / "export"),
                                   "target": "/etc/engine-test"}))
    return ["--answers", str(answers), "--root", str(tmp_path / "root")]


def _printed(models: list[Any]) -> str:
    """What the CLI prints for MODELS with --json: each one's JSON dump, nothing else."""
    return json.dumps([m.model_dump(mode="json") for m in models], indent=2,
                      ensure_ascii=False) + "\n"


def test_status_json_prints_the_typed_reports_and_reads_back_into_them(
        registered: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`status --json` is each procedure's StatusReport dumped: one never applied
    (every step pending, no root or last run), one applied (its checks, how its last
    run ended, its action's last run); the keys in the order scripts have read."""
    assert main(["apply", "engine-test", *registered, "--yes"]) == 0
    assert main(["action", "engine-test", "say", *registered, "--yes"]) == 0
    made: list[Any] = []
    reporting = tui.cli_commands.status_reports

    def recording(ids: list[str], args: Any) -> list[Any]:
        reports = reporting(ids, args)
        made.extend(reports)
        return reports

    monkeypatch.setattr(tui.cli_commands, "status_reports", recording)
    capsys.readouterr()
    assert main(["status", "--json"]) == 1  # pending steps: not all done
    printed = capsys.readouterr().out
    *others, mine = made
    assert [r.procedure for r in made] == list(REGISTRY)
    assert all(isinstance(r, UnappliedReport) for r in others)
    assert isinstance(mine, AppliedReport) and isinstance(mine, StatusReport)
    assert printed == _printed(made)
    assert TypeAdapter(list[ProcedureStatus]).validate_json(printed) == made

    shown = json.loads(printed)
    assert list(shown[0]) == ["procedure", "title", "applied", "steps", "actions"]
    assert shown[0]["steps"][0] == {"step": "management-token", "title": "Management token",
                                    "status": "pending", "detail": "not applied yet"}
    assert list(shown[-1]) == ["procedure", "title", "applied", "root", "last_run", "steps",
                               "actions"]
    assert [list(step) for step in shown[-1]["steps"]] == [
        ["step", "title", "status", "detail", "host", "checked_at"]] * 2
    assert list(shown[-1]["last_run"]) == [*RunRecord.model_fields, "detail"]
    assert mine.last_run is not None and mine.last_run.outcome == "done"
    assert re.fullmatch(r"apply done at \d\d:\d\d", mine.last_run.detail)
    (action,) = shown[-1]["actions"]
    assert list(action) == ["action", "title", "help", "last_run"]
    assert list(action["last_run"]) == ["outcome", "detail", "at"]
    assert mine.actions[0].ran().startswith("last ran 20")


def test_action_and_apply_json_print_the_typed_reports(
        registered: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`action PROC --json` is each ActionView dumped; `apply --json` its ApplySummary."""
    made: list[Any] = []

    def recorded(real: Any) -> Any:
        def record(*args: Any) -> Any:
            made.append(real(*args))
            return made[-1]
        return record

    monkeypatch.setattr(tui.cli_commands, "actions_report",
                        recorded(tui.cli_commands.actions_report))
    assert main(["action", "engine-test", "--json"]) == 0
    (listed,) = made
    assert [type(v) for v in listed] == [ActionView] and listed[0].last_run is None
    assert capsys.readouterr().out == _printed(listed)

    made.clear()
    monkeypatch.setattr(tui.cli_commands, "apply_summary",
                        recorded(tui.cli_commands.apply_summary))
    assert main(["apply", "engine-test", *registered, "--yes", "--json"]) == 0
    (summary,) = made
    assert isinstance(summary, ApplySummary)
    printed = capsys.readouterr().out
    assert printed == json.dumps(summary.model_dump(mode="json"), indent=2) + "\n"
    shown = json.loads(printed)
    assert list(shown) == ["procedure", "outcome", "exit_code", "failed_step", "message",
                           "changed", "steps"]
    assert shown["steps"] == [{"step": "local", "before": "pending", "after": "pending"},
                              {"step": "local-too", "before": "pending", "after": "pending"}]
    assert shown["changed"] is False  # the stand-in checks say pending before and after


def _annotations(path: Path) -> dict[str, list[str]]:
    """Each function in PATH (nested ones too): its argument and return annotations."""
    found: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            found[node.name] = [ast.unparse(a) for a in
                                [*(arg.annotation for arg in args), node.returns] if a]
    return found


def _source(module: str) -> Path:
    """Where MODULE's source is installed (found, not imported: no Textual here)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin)


@pytest.mark.parametrize(("module", "free_form"), [
    ("tui.cli", set()), ("tui.cli_commands", {"_raw_answers", "wizard_answers"}),
    ("tui.metrics", set()), ("screens.dashboard", set()),
    ("screens.progress", set())])
def test_no_report_a_front_reads_is_an_untyped_dict(module: str, free_form: set[str]) -> None:
    """The fronts read typed reports and records: no function of the CLI, the metrics,
    the dashboard or the progress screen takes or returns `dict[str, Any]`, but the
    wizard's raw answers (free-form until they are validated)."""
    untyped = {name for name, annotations in _annotations(_source(module)).items()
               if any("dict[str, Any]" in a for a in annotations)}
    assert untyped == free_form


def test_the_cli_s_reports_are_annotated_with_their_models() -> None:
    cli = _annotations(_source("tui.cli_commands"))
    assert cli["status_reports"][-1] == "list[ProcedureStatus]"
    assert cli["actions_report"][-1] == "list[ActionView]"
    assert _annotations(_source("tui.metrics"))["prometheus"][0] == (
        "Iterable[ProcedureStatus]")


def test_every_type_ignore_left_is_on_a_third_party_internal() -> None:
    """mypy checks tui/ and screens/ whole: the only `type: ignore`s left are on
    attributes of other libraries (pexpect's pty process, pycdlib's clock), not on
    CloudRig's own calls (the wizard's secret stand-in is a `SecretSupply`)."""
    found = []
    for package in ("tui", "screens"):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations is not None
        top = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(top.rglob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if "type: ignore" in line:
                    found.append((path.relative_to(top.parent).as_posix(), line.strip()))
    assert found == [
        ("tui/procedures/cloudstack/configdrive.py",
         "module.time = clock  # type: ignore[attr-defined]"),
        ("tui/procedures/cloudstack/configdrive.py",
         "module.time = original  # type: ignore[attr-defined]"),
        ("tui/prompts.py",
         "child.ptyproc.delayafterclose = 0  # type: ignore[attr-defined]"),
    ]
