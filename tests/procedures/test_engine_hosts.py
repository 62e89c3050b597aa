"""Host roles in the engine: a step for another host is exported (files + a script
that really runs there), shown as "to run on <host>", and run when this is that host."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

from tui.commands import CommandResult
from tui.context import Context
from tui.engine import Session
from tui.model import Command, FileWrite, Page, PlanItem, Procedure, Status, Step
from tui.secrets import SecretSource
from tui.state import StateStore


class Answers(BaseModel):
    role: str
    export_dir: str
    target: str


class Local(Step):
    id, title = "local", "On any host"

    def files(self, ctx: Context) -> list[FileWrite]:
        return [FileWrite(path=f"{ctx.answers.target}/local.conf", content="local\n")]


class Remote(Step):
    id, title, host = "remote", "On host b", "b"

    def plan(self, ctx: Context) -> list[PlanItem]:
        target = ctx.answers.target
        return [
            FileWrite(path=f"{target}/remote.conf", content="it's \"b\"\n", mode=0o600),
            Command(argv=["sh", "-c", "echo noise; echo ID=42"], sets="ID",
                    description="find the id", changes_host=False),
            Command(argv=["sh", "-c", 'echo "got $1" > "$2"', "-", "${ID}",
                          f"{target}/id.txt"], description="use it"),
            Command(argv=["sh", "-c", "echo 'id=${ID} `x` \\ $1 ${HOME}' \"$1\" >> \"$2\"", "-",
                          "lit", f"{target}/id.txt"], description="use it inside a string"),
        ]


PROC = Procedure(id="hosts-test", title="Hosts test", summary="steps for two hosts",
                 runbook="-", answers_model=Answers,
                 pages=(Page("p", "h", ("role", "export_dir", "target")),),
                 steps=(Local(), Remote()),
                 host_field="role", export_field="export_dir")


def session(tmp: Path, role: str) -> Session:
    answers = Answers(role=role, export_dir=str(tmp / "export"), target=str(tmp / "target"))
    return Session(procedure=PROC, answers=answers, secrets=SecretSource("hosts-test", []),
                   store=StateStore(tmp / "state"))


def test_step_for_another_host_is_exported_and_shown_as_to_run_on(tmp_path):
    s = session(tmp_path, "a")
    views = {v.step: v for v in s.plan_view(s.plan())}
    assert views["local"].host is None
    assert views["remote"].note == f"to run on b: sh {tmp_path}/export/b/remote.sh"
    paths = [i.path for i in views["remote"].items if i.kind == "file"]
    assert paths == [f"{tmp_path}/export/b/files{tmp_path}/target/remote.conf",
                     f"{tmp_path}/export/b/remote.sh"]
    assert all(i.kind == "file" for i in views["remote"].items)  # nothing runs here

    result = s.apply()
    assert result.outcome == "done"
    assert (tmp_path / "target/local.conf").read_text() == "local\n"
    assert not (tmp_path / "target/remote.conf").exists()
    checks = {c.step: c for c in session(tmp_path, "a").check()}
    assert checks["remote"].status is Status.MANUAL
    assert checks["remote"].detail.startswith("to run on b: sh ")
    assert checks["remote"].host == "b"
    assert checks["local"].status is Status.DONE

    # The exported script is the step, runnable on that host as it is.
    script = tmp_path / "export/b/remote.sh"
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    staged = tmp_path / f"export/b/files{tmp_path}/target/remote.conf"
    assert stat.S_IMODE(staged.stat().st_mode) == 0o600
    run = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=30,
                         env={**os.environ})
    assert run.returncode == 0, run.stderr
    installed = tmp_path / "target/remote.conf"
    assert installed.read_text() == "it's \"b\"\n"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    assert (tmp_path / "target/id.txt").read_text() == (
        "got 42\n" + "id=42 `x` \\ $1 ${HOME} lit\n")


def test_step_runs_on_its_own_host(tmp_path):
    s = session(tmp_path, "b")
    views = {v.step: v for v in s.plan_view(s.plan())}
    assert views["remote"].host is None and views["remote"].note is None
    kinds = [i.kind for i in views["remote"].items]
    assert kinds == ["file", "command", "command", "command"]
    s = session(tmp_path, "b")
    # The commands are not the point here: each "runs" and succeeds, as a runner reports it.
    s.ctx.runner.run = lambda command, *a, **k: CommandResult(
        argv=command.argv, returncode=0, stdout="", stderr="")
    assert s.apply().outcome == "done"
    assert (tmp_path / "target/remote.conf").exists()
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("proc_id", ["carbonio"])
def test_existing_procedures_have_no_host_roles(proc_id):
    from tui.registry import get_procedure

    procedure = get_procedure(proc_id)
    assert procedure.host_field is None
    assert all(step.host == "any" for step in procedure.steps)
    assert all(procedure.runs_elsewhere(step, None) is None for step in procedure.steps)
