"""The typed procedure kit (issue 19 part 3): a sixth runbook is declarations only.

tests/kit_procedure.py declares a procedure the product does not have — one page, one
file step, one remote (Consul's KV, faked on 127.0.0.1), one command of its own — and
it runs through plan, apply, status and the TUI's wizard, preview, progress and
dashboard with no edit to the engine, the CLI or the screens. Then: `Context`/`Step`
are generic over the answers model, each remote is declared once, `Procedure` checks
its own invariants when built, and procedure-only modules and commands live with
their procedure.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import kit_procedure
import pytest
from fakes.consul import FakeConsul
from kit_procedure import CONSUL, KEY, PROCEDURE, GreetingFile, GreetingKey, KitAnswers
from textual.widgets import Static
from tui_helpers import dashboard_rows, files_under, state_dir

from screens.form import FormState
from screens.preview import PreviewScreen
from screens.progress import ProgressScreen
from screens.wizard import WizardScreen
from tui import registry
from tui.app import CloudRigApp
from tui.cli import main
from tui.context import Context
from tui.errors import ProcedureInvalid
from tui.model import Page, Remote, Step
from tui.registry import REGISTRY, ProcedureInfo, get_procedure
from tui.secrets import SecretSource
from tui.steps import FileStep, TemplateFile

__all__ = ["state_dir"]  # the fixture, imported for pytest

GREETING = "hello, \"kit\" ${x}"
KIT_INFO = ProcedureInfo("kit", "Kit greeting", "A greeting in a file and in Consul KV",
                         "kit_procedure", {"kit-key": "the KV key the greeting goes to"})


@pytest.fixture
def kit(state_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> typing.Iterator[FakeConsul]:
    """The kit procedure registered as a line in tui/registry.py would, and its Consul.
    The TUI applies in a detached child (`python -m tui.detach`): a `sitecustomize` on
    its PYTHONPATH makes the same registration there, with tests/ importable."""
    monkeypatch.setitem(REGISTRY, "kit", KIT_INFO)
    site = tmp_path / "site"
    site.mkdir()
    fields = [KIT_INFO.id, KIT_INFO.title, KIT_INFO.summary, KIT_INFO.module, KIT_INFO.verbs]
    (site / "sitecustomize.py").write_text(
        "from tui.registry import REGISTRY, ProcedureInfo\n"
        f"REGISTRY['kit'] = ProcedureInfo(*{fields!r})\n")
    support = Path(__file__).resolve().parents[1] / "support"
    path = [str(site), str(support), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
    monkeypatch.delenv("CLOUDRIG_SECRET_CONSUL_TOKEN", raising=False)
    fake = FakeConsul().start()
    yield fake
    fake.stop()


def _answers(tmp_path: Path, fake: FakeConsul) -> Path:
    path = tmp_path / "kit.yaml"
    path.write_text(json.dumps({"consul_url": fake.url, "target_dir": "/etc/kit",
                                "greeting": GREETING}))
    return path


def _json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, typing.Any]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def _changes(fake: FakeConsul) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.log if r.method != "GET"]


def test_a_sixth_runbook_plans_applies_and_checks_from_the_command_line(
        kit: FakeConsul, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers, root = _answers(tmp_path, kit), tmp_path / "root"
    run = ["--answers", str(answers), "--root", str(root)]

    # No token at hand: the remote's declared placeholder, and nothing read or sent.
    code, plan = _json_out(capsys, ["plan", "kit", *run, "--json"])
    assert code == 0
    items = {view["step"]: view["items"] for view in plan["steps"]}
    assert [i["path"] for i in items["file"]] == ["/etc/kit/greeting.txt"]
    (call,) = items["kv"]
    assert (call["method"], call["url"]) == ("PUT", f"{kit.url}/v1/kv/{KEY}")
    assert call["description"] == "store the greeting (Consul not read: no consul_token at hand)"
    assert kit.log == []

    monkeypatch.setenv("CLOUDRIG_SECRET_CONSUL_TOKEN", kit.management_token)
    code, plan = _json_out(capsys, ["plan", "kit", *run, "--json"])
    (call,) = {view["step"]: view["items"] for view in plan["steps"]}["kv"]
    assert (call["method"], call["url"], call["body"]) == (
        "PUT", f"{kit.url}/v1/kv/{KEY}", GREETING)
    assert _changes(kit) == []  # plan only reads

    assert main(["apply", "kit", *run, "--yes"]) == 0
    assert (root / "etc/kit/greeting.txt").read_text() == GREETING + "\n"
    assert kit.kv[KEY] == GREETING.encode()
    assert _changes(kit) == [("PUT", f"/v1/kv/{KEY}")]

    code, status = _json_out(capsys, ["status", "kit", "--json", *run])
    assert code == 0, status
    assert {s["step"]: s["status"] for s in status["steps"]} == {"file": "done", "kv": "done"}

    assert main(["apply", "kit", *run, "--yes"]) == 0  # twice: nothing made twice
    assert _changes(kit) == [("PUT", f"/v1/kv/{KEY}")]
    for path in files_under(Path(os.environ["CLOUDRIG_STATE_DIR"])):
        assert kit.management_token.encode() not in path.read_bytes(), path


def test_a_sixth_runbooks_own_command_reaches_the_command_line(
        kit: FakeConsul, capsys: pytest.CaptureFixture[str]) -> None:
    """`Procedure.cli_verbs` through the registry: listed in --help, run with its options."""
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "kit-key" in capsys.readouterr().out
    assert main(["kit-key", "--upper"]) == 0
    assert capsys.readouterr().out == KEY.upper() + "\n"
    with pytest.raises(SystemExit) as exited:
        main(["kit-key", "--help"])
    assert exited.value.code == 0
    assert "--upper" in capsys.readouterr().out


async def test_a_sixth_runbook_goes_through_wizard_preview_apply_and_dashboard(
        kit: FakeConsul, tmp_path: Path) -> None:
    root = tmp_path / "root"
    app = CloudRigApp(root=root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.push_screen(WizardScreen(app.workspace, FormState.start(get_procedure("kit")),
                                           0))
        await pilot.press("ctrl+a", "ctrl+k", *kit.url, "tab", *kit.management_token, "tab",
                          "tab", *GREETING, "ctrl+n")
        assert isinstance(app.screen, PreviewScreen), app.screen
        await app.workers.wait_for_complete()
        await pilot.pause()
        preview = "\n".join(str(s.content) for s in app.screen.query(".plan-step")
                            .results(Static))
        assert "/etc/kit/greeting.txt" in preview
        assert f"PUT {kit.url}/v1/kv/{KEY}" in preview
        assert kit.management_token not in preview
        assert _changes(kit) == []

        await pilot.press("a")
        assert isinstance(app.screen, ProgressScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        result = app.screen.result
        assert result is not None and result.outcome == "done", result
        assert (root / "etc/kit/greeting.txt").read_text() == GREETING + "\n"
        assert kit.kv[KEY] == GREETING.encode()

        rows = await dashboard_rows(app, pilot)
        assert rows == {"greeting.txt": "done", "Greeting in Consul KV": "done"}


# ---------------------------------------------------------------- typed steps, one remote


def _answers_type(step: Step[typing.Any]) -> object:
    """The answers model a step's class gives `Step[...]`, through its bases."""
    for cls in type(step).__mro__:
        for base in getattr(cls, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            if isinstance(origin, type) and issubclass(origin, Step):
                (argument,) = typing.get_args(base)
                if not isinstance(argument, typing.TypeVar):
                    return argument
    return None


@pytest.mark.parametrize("procedure_id", [*sorted(REGISTRY), "kit"])
def test_every_step_is_typed_with_its_procedures_answers(
        procedure_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Step[XAnswers]`: a step's `ctx.answers` is its procedure's model, no cast."""
    monkeypatch.setitem(REGISTRY, "kit", KIT_INFO)
    procedure = get_procedure(procedure_id)
    for step in procedure.steps:
        assert _answers_type(step) is procedure.answers_model, step.id


@pytest.mark.parametrize("procedure_id", sorted(REGISTRY))
def test_no_procedure_re_writes_the_kits_glue(procedure_id: str) -> None:
    """No cast of ctx.answers, and each remote declared once (`Procedure.remotes`) —
    no hand-made shared client, readability test or placeholder per procedure."""
    procedure = get_procedure(procedure_id)
    assert procedure.remotes, "every runbook here calls a remote API"
    package = Path(inspect.getfile(sys.modules[REGISTRY[procedure_id].module])).parent
    source = "\n".join(p.read_text() for p in package.glob("*.py"))
    assert "isinstance(ctx.answers" not in source
    assert "def answers(ctx" not in source
    for remote in procedure.remotes:
        assert f'ctx.shared("{remote.key}"' not in source
    # The placeholder's words are the Remote's: written only where one declares its own.
    assert len(re.findall(r"not read( now)?: no", source)) == sum(
        1 for r in procedure.remotes if r.unread)


def test_the_context_makes_one_client_per_run_from_the_remote(
        monkeypatch: pytest.MonkeyPatch, clean_redact: typing.Callable[[], None]) -> None:
    monkeypatch.delenv("CLOUDRIG_SECRET_CONSUL_TOKEN", raising=False)
    made: list[tuple[str, str]] = []

    class Client:
        closed = False

        def close(self) -> None:
            self.closed = True

    remote: Remote[KitAnswers, Client] = dataclasses.replace(
        CONSUL, client=lambda a, token: made.append((a.greeting, token)) or Client())
    answers = KitAnswers(greeting="hi")
    secrets = SecretSource("kit", ["consul_token"], interactive=False)
    ctx: Context[KitAnswers] = Context(procedure=PROCEDURE, answers=answers,
                                       secrets=secrets, runner=None)  # type: ignore[arg-type]
    assert ctx.answers.greeting == "hi"
    assert not ctx.reads(remote)  # no token at hand without asking
    secrets.remember("consul_token", "t0ken")
    assert ctx.reads(remote)
    assert not ctx.reads(dataclasses.replace(remote, plan_reads=False))
    client = ctx.client(remote)
    assert ctx.client(remote) is client and made == [("hi", "t0ken")]
    ctx.close()
    assert client.closed


# ---------------------------------------------------------------- Procedure's invariants


def _built(**changes: typing.Any) -> None:
    dataclasses.replace(PROCEDURE, **changes)


def test_an_answer_on_no_page_is_refused() -> None:
    with pytest.raises(ProcedureInvalid, match=r"^procedure 'kit': answer field\(s\) greeting "
                       r"of KitAnswers on no page"):
        _built(pages=(Page("Greeting", "h", ("consul_url", "consul_token", "target_dir")),))


def test_an_answer_on_two_pages_is_refused() -> None:
    with pytest.raises(ProcedureInvalid, match="answer field 'greeting' is on more than one "
                       "page: 'Greeting', 'Again'"):
        _built(pages=(*PROCEDURE.pages, Page("Again", "h", ("greeting",))))


def test_a_page_asking_for_no_answer_field_is_refused() -> None:
    with pytest.raises(ProcedureInvalid, match="page 'Greeting' asks for 'colour', which is "
                       "not a field of KitAnswers"):
        _built(pages=(Page("Greeting", "h", (*PROCEDURE.pages[0].fields, "colour")),))


def test_two_steps_with_one_id_are_refused() -> None:
    with pytest.raises(ProcedureInvalid, match="step id 'file' is used 2 times"):
        _built(steps=(GreetingFile(), GreetingKey(), GreetingFile()))


def test_a_template_that_is_not_shipped_is_refused() -> None:
    shipped = TemplateFile("carbonio/policies.json.j2", path=lambda a: "/etc/kit/p.json")
    _built(steps=(*PROCEDURE.steps, FileStep("shipped", "t", "s", [shipped])))
    missing = TemplateFile("kit/greeting.j2", path=lambda a: "/etc/kit/g")
    with pytest.raises(ProcedureInvalid, match=re.escape(
            "step 'typo' renders templates/kit/greeting.j2, which is not shipped")):
        _built(steps=(*PROCEDURE.steps, FileStep("typo", "t", "s", [missing])))


def test_a_remote_made_with_a_field_that_is_no_secret_is_refused() -> None:
    with pytest.raises(ProcedureInvalid, match="remote 'consul' is made with 'greeting', which "
                       "is not a secret field"):
        _built(remotes=(dataclasses.replace(CONSUL, secret="greeting"),))


def test_the_registrys_title_must_be_the_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "kit", ProcedureInfo(
        "kit", "Kit hello", KIT_INFO.summary, "kit_procedure", KIT_INFO.verbs))
    with pytest.raises(ProcedureInvalid, match=re.escape(
            "procedure 'kit': title 'Kit greeting' in kit_procedure but 'Kit hello' in "
            "tui/registry.py (they must be equal)")):
        get_procedure("kit")
    monkeypatch.setitem(REGISTRY, "kit", ProcedureInfo(
        "kit", KIT_INFO.title, KIT_INFO.summary, "kit_procedure"))
    with pytest.raises(ProcedureInvalid, match=re.escape("commands {'kit-key': ")):
        get_procedure("kit")


@pytest.mark.parametrize("procedure_id", sorted(REGISTRY))
def test_the_five_runbooks_keep_their_invariants(procedure_id: str) -> None:
    procedure = get_procedure(procedure_id)  # built, and checked against the registry
    assert procedure.problems() == []
    assert kit_procedure.PROCEDURE.problems() == []


# ---------------------------------------------------------------- procedure-only parts


def test_procedure_only_modules_live_with_their_procedure() -> None:
    for name in ("configdrive", "metadata"):
        assert importlib.util.find_spec(f"tui.{name}") is None
        assert importlib.util.find_spec(f"tui.procedures.cloudstack.{name}") is not None
    assert [v.name for v in get_procedure("cloudstack").cli_verbs] == ["metadata"]


def test_the_command_line_lists_procedure_commands_without_importing_procedures() -> None:
    """`cloudrig --help` and `cloudrig list` name `metadata` from the registry; only
    running it imports CloudStack's procedure."""
    code = ("import sys, contextlib, io\n"
            "from tui.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "main(['list'])\n"
            "assert 'metadata' in out.getvalue(), out.getvalue()\n"
            "print(sorted(m for m in sys.modules if m.startswith('tui.procedures')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONSAFEPATH": "1"}, timeout=60, check=True)
    assert result.stdout.splitlines()[-1] == "[]"
    assert registry.REGISTRY["cloudstack"].verbs == {
        v.name: v.help for v in get_procedure("cloudstack").cli_verbs}
