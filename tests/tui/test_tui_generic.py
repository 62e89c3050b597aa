"""The screens are generic: a procedure they have never seen gets a working wizard.

A made-up procedure declares one field of every kind; the wizard builds the right
widget for each, validates in place, and hands the preview a validated model. The
plan texts keep their meaning without colour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, SecretStr
from textual.widgets import Input, Select, Static, Switch
from tui_helpers import press

from screens.form import FormState
from screens.preview import PreviewScreen
from screens.texts import plan_summary, step_text
from screens.widgets import ListEditor, MappingEditor
from screens.wizard import WizardScreen
from tui import registry
from tui.answers import AnswersError, ask, field_spec
from tui.app import CloudRigApp
from tui.engine import StepView
from tui.model import Page, Procedure


class KindsAnswers(BaseModel):
    name: str = ask(title="Name", help="free text", example="alpha")
    count: int = ask(3, title="Count", help="an integer", example=3, ge=1, le=9)
    enabled: bool = ask(False, title="Enabled", help="a switch", example=True)
    flavour: Literal["small", "large"] = ask("small", title="Flavour", help="a choice",
                                            example="large")
    hosts: list[str] = ask([], title="Hosts", help="one per line", example=["a"])
    token: SecretStr | None = ask(title="Token", help="a secret", example="t0ken",
                                  secret=True)


KINDS = Procedure(
    id="kinds", title="Every field kind", summary="test procedure", runbook="none",
    answers_model=KindsAnswers,
    pages=(Page("Everything", "One field of each kind.",
                ("name", "count", "enabled", "flavour", "hosts", "token")),),
    steps=(),
)


@pytest.fixture
def kinds(monkeypatch: pytest.MonkeyPatch) -> Procedure:
    info = registry.ProcedureInfo("kinds", "Every field kind", "test procedure", __name__)
    monkeypatch.setitem(registry.REGISTRY, "kinds", info)
    return KINDS


async def test_every_field_kind_gets_its_widget(
    tmp_path: Path, state_dir: Path, kinds: Procedure
) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        form = FormState.start(kinds)
        await app.push_screen(WizardScreen(app.workspace, form, 0))
        screen = app.screen
        assert isinstance(screen.query_one("#field-name"), Input)
        assert screen.query_one("#field-count", Input).type == "integer"
        assert isinstance(screen.query_one("#field-enabled"), Switch)
        assert isinstance(screen.query_one("#field-flavour"), Select)
        assert isinstance(screen.query_one("#field-hosts"), ListEditor)
        assert screen.query_one("#field-token", Input).password

        await press(pilot, "tab", "ctrl+a", "ctrl+k", *"12")  # count out of range
        assert "9" in str(screen.query_one("#error-count", Static).content)
        await pilot.press("backspace", "backspace", "7")
        await press(pilot, "shift+tab", *"alpha")
        await pilot.press("tab", "tab", "space")  # the switch: Space turns it on
        assert "on" in str(screen.query_one(".switch-word").render())
        assert "Space: on/off · Enter: next field" in str(
            screen.query_one("#page-status", Static).content)
        await pilot.press("enter")  # Enter moves on, from a switch too: to the choice
        assert app.focused is screen.query_one("#field-flavour")
        assert "Space: open the list" in str(screen.query_one("#page-status", Static).content)
        await pilot.press("space", "down", "enter")  # opens on "small"; down: "large"
        await pilot.press("enter")  # and on to the list: a row per item
        hosts = screen.query_one("#field-hosts", ListEditor)
        await press(pilot, *"h1", "enter", *"h2")  # Enter on a filled last row adds one
        assert hosts.value == ["h1", "h2"] and hosts.border_title.startswith("2 items")
        await pilot.press("enter", "enter")  # a new empty row, and Enter on it moves on
        assert app.focused is screen.query_one("#field-token")
        assert hosts.value == ["h1", "h2"] and len(hosts.rows()) == 2
        await press(pilot, *"s3cret-token")
        await pilot.press("ctrl+n")
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert preview.answers.model_dump(exclude={"token"}) == {
            "name": "alpha", "count": 7, "enabled": True, "flavour": "large",
            "hosts": ["h1", "h2"],
        }
        assert app.workspace.secrets["kinds"] == {"token": "s3cret-token"}
        await app.workers.wait_for_complete()


def test_form_keeps_secrets_out_of_values(kinds: Procedure) -> None:
    form = FormState.start(kinds)
    form.set("token", "abc")
    form.set("count", "x")
    assert "token" not in form.values and form.secrets == {"token": "abc"}
    assert form.problems("count")
    form.set("count", "")
    assert "count" not in form.values  # not answered: the default applies
    assert form.page_problems(kinds.pages[0]) == {"name": ["is required"]}


def test_plan_text_means_the_same_without_colour() -> None:
    view = StepView.model_validate({
        "step": "s", "title": "A step", "error": None,
        "items": [
            {"kind": "file", "path": "/etc/x.conf", "action": "update", "mode": "0600",
             "owner": "svc:svc", "diff": "--- /etc/x.conf\n+++ /etc/x.conf\n@@ -1 +1 @@\n-a\n+b\n",
             "secret": False, "mode_drift": "mode 0644 on disk, 0600 planned"},
            {"kind": "command", "command": "systemctl enable x", "description": "start it",
             "skipped": "--root"},
            {"kind": "api", "method": "PUT", "url": "http://consul/v1/kv/x",
             "description": "store", "body": '{"a": 1}', "skipped": None},
            {"kind": "manual", "text": "reboot the router"},
        ],
    })
    plain = step_text(view).plain
    for expected in ("/etc/x.conf", "update · mode 0600 · owner svc:svc", "    -a", "    +b",
                     "@@ -1 +1 @@", "mode 0644 on disk", "skip systemctl enable x",
                     "(not run: --root)", "call PUT http://consul/v1/kv/x", "store",
                     "a: 1", "manual reboot the router"):
        assert expected in plain
    # What apply will run, what it will not, each count in the right number.
    assert plan_summary([view]) == (
        "1 file (0 new, 1 changed, 0 unchanged), 0 commands to run (1 not run under "
        "--root), 1 API call, 1 for you to do")
    styles = {str(span.style) for span in step_text(view).spans}
    assert {"green", "red", "cyan"} <= styles


# ---------------------------------------------------------------- mapping fields


class Pair(BaseModel):
    grant: str
    revoke: str


class MappingAnswers(BaseModel):
    labels: dict[str, str] = ask({}, title="Labels", help="key/value", example={"team": "a"})
    templates: dict[str, Pair] = ask(title="Templates", help="nested",
                                     example={"P-1": {"grant": "g", "revoke": "r"}})


MAPPINGS = Procedure(
    id="mappings", title="Mapping fields", summary="test procedure", runbook="none",
    answers_model=MappingAnswers,
    pages=(Page("Mappings", "Two mapping fields.", ("labels", "templates")),), steps=(),
)


@pytest.fixture
def mappings(monkeypatch: pytest.MonkeyPatch) -> Procedure:
    info = registry.ProcedureInfo("mappings", "Mapping fields", "test procedure", __name__)
    monkeypatch.setitem(registry.REGISTRY, "mappings", info)
    return MAPPINGS


def test_mapping_kind_comes_from_the_annotation() -> None:
    from tui.procedures.cloudblue.answers import CloudBlueAnswers
    from tui.procedures.cloudcasa.answers import CloudCasaAnswers

    assert field_spec(CloudCasaAnswers, "tags").kind == "mapping"
    assert field_spec(CloudBlueAnswers, "templates").kind == "mapping"
    assert field_spec(MappingAnswers, "labels").kind == "mapping"
    for model in (CloudCasaAnswers, CloudBlueAnswers):  # every answer has an editor
        for name in model.model_fields:
            spec = field_spec(model, name)
            annotation = model.model_fields[name].annotation
            assert spec.kind != "text" or "dict" not in str(annotation), (model, name)


async def test_mapping_rows_round_trip(tmp_path: Path, state_dir: Path,
                                       mappings: Procedure) -> None:
    """A mapping is shown as key/value rows (a nested value as inline YAML) and what the
    rows show reads back as the same value, however odd the text."""
    saved = {"labels": {"team": "platform", "cost: centre": "42 # not a comment"},
             "templates": {"P-1": {"grant": "TL-1", "revoke": "Access 'revoked'"}}}
    form = FormState.start(mappings, saved=saved)
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.push_screen(WizardScreen(app.workspace, form, 0))
        labels = app.screen.query_one("#field-labels", MappingEditor)
        templates = app.screen.query_one("#field-templates", MappingEditor)
        assert labels.rows() == [("team", "platform"), ("cost: centre", "42 # not a comment")]
        assert templates.rows() == [("P-1", "{grant: TL-1, revoke: Access 'revoked'}")]
        assert labels.border_title.startswith("2 items")
        assert templates.border_title.startswith("1 item ")
        for name, editor in (("labels", labels), ("templates", templates)):
            form.set(name, editor.value)
        assert form.finish().model_dump() == saved


def test_mapping_problems_name_the_line_or_the_key(mappings: Procedure) -> None:
    form = FormState.start(mappings)
    form.set("templates", "P-1:\n  grant: TL-1\n revoke: x\n")
    [problem] = form.problems("templates")
    assert problem.startswith("is not valid YAML at line 3")
    assert "`key: value`" in problem
    with pytest.raises(AnswersError) as caught:
        form.finish()
    assert caught.value.problems[0].field == "templates"
    assert "for example: templates: {P-1: {grant: g, revoke: r}}" in str(caught.value)

    form.set("templates", "P-1:\n  grant: TL-1\n")
    assert form.problems("templates") == ["P-1.revoke: is required"]
    form.set("templates", "just text")  # not a mapping: the model says what it wants
    assert form.problems("templates") == [
        "Input should be a valid dictionary (got 'just text')"]
    form.set("templates", "")
    assert form.problems("templates") == ["is required"]
    form.set("labels", "team: [a, b]")
    assert form.problems("labels") == ["team: Input should be a valid string (got ['a', 'b'])"]
    form.set("labels", "")
    assert "labels" not in form.values  # blank: the default ({}) applies


async def test_mapping_field_edited_in_the_wizard(
    tmp_path: Path, state_dir: Path, mappings: Procedure
) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.push_screen(WizardScreen(app.workspace, FormState.start(mappings), 0))
        screen = app.screen
        labels = screen.query_one("#field-labels", MappingEditor)
        assert labels.border_title == "0 items · ^o add · ^r remove"
        assert app.focused is not None and app.focused.parent.parent is labels
        # A key and its value per row: Enter goes from key to value, then to a new row.
        await press(pilot, *"team", "enter", *"platform", "enter", *"env", "enter",
                    *"[prod, dev]")
        error = screen.query_one("#error-labels", Static)
        assert "✗ Labels: env: Input should be a valid string" in str(error.content)
        assert "(for example: {team: a})" in str(error.content)
        await pilot.press("ctrl+n")
        assert app.screen is screen, "Next must refuse a bad value"
        assert app.focused is labels.query(".cell").first()  # back on the field
        await press(pilot, "tab", "tab", "tab", "ctrl+a", "ctrl+k", *"prod")
        assert str(error.content) == ""
        assert labels.value == {"team": "platform", "env": "prod"}
        # ctrl+o adds a row, ctrl+r removes the one with the cursor.
        await press(pilot, "ctrl+o", *"tmp", "ctrl+r")
        assert labels.value == {"team": "platform", "env": "prod"}
        await press(pilot, "tab", *"P-1", "tab", *"{grant: TL-1, revoke: gone}")
        await pilot.press("ctrl+n")
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        assert preview.answers.model_dump() == {
            "labels": {"team": "platform", "env": "prod"},
            "templates": {"P-1": {"grant": "TL-1", "revoke": "gone"}}}
        await app.workers.wait_for_complete()


def test_real_mapping_answers_round_trip_through_the_wizard_form() -> None:
    """cloudblue's templates (nested) and cloudcasa's tags, shown and read back as typed;
    cloudcasa's tags also take the `key=value` lines its help mentions."""
    from cloudblue_rig import RUNBOOK

    from tui.registry import get_procedure

    blue = FormState.start(get_procedure("cloudblue"), saved=RUNBOOK)
    text = "".join(f"{k}:\n  grant: {v['grant']}\n  revoke: {v['revoke']}\n"
                   for k, v in blue.display("templates").items())
    assert text == ("PRD-576-330-536:\n  grant: TL-757-345-804\n  revoke: Access to "
                    "Application Management Platform has been revoked\n")
    blue.set("templates", text.replace("TL-757-345-804", "TL-1"))
    assert blue.problems("templates") == [
        "PRD-576-330-536.grant: 'TL-1' is not a valid Connect template id (TL-ddd-ddd-ddd, "
        "e.g. TL-757-345-804)"]
    blue.set("templates", text)
    assert blue.problems("templates") == []
    assert blue.finish().model_dump()["templates"] == RUNBOOK["templates"]

    casa = FormState.start(get_procedure("cloudcasa"), saved={"account_name": "prod-aws"})
    assert casa.display("tags") == {}
    for typed in ("team: platform\nenv: prod\n", "team=platform\nenv=prod"):
        casa.set("tags", typed)
        assert casa.problems("tags") == []
        assert casa.finish().tags == {"team": "platform", "env": "prod"}
    casa.set("tags", "team platform")
    assert casa.problems("tags") == ["'team platform' is not key=value"]
    casa.set("features", "EKS\nS3")  # a list's bad item is named as the operator counts
    assert casa.problems("features") == [
        "item 2: Input should be 'EKS', 'EBSVolumeSnapshot', 'RDS' or 'SecurityScan' "
        "(got 'S3')"]
