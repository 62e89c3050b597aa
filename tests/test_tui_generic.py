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
from textual.widgets import Input, Select, Static, Switch, TextArea
from tui_helpers import state_dir

from screens.form import FormState
from screens.preview import PreviewScreen
from screens.texts import plan_summary, step_text
from screens.wizard import WizardScreen
from tui import registry
from tui.answers import ask
from tui.app import CloudRigApp
from tui.procedure import Page, Procedure

__all__ = ["state_dir"]  # the fixture, imported for pytest


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
    id="kinds", runbook="none", answers_model=KindsAnswers,
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
        assert isinstance(screen.query_one("#field-hosts"), TextArea)
        assert screen.query_one("#field-token", Input).password

        await pilot.press("tab", "ctrl+a", "ctrl+k", *"12")  # count out of range
        assert "9" in str(screen.query_one("#error-count", Static).content)
        await pilot.press("backspace", "backspace", "7")
        await pilot.press("shift+tab", *"alpha")
        await pilot.press("tab", "tab", "enter")  # the switch
        assert "on" in str(screen.query_one(".switch-word").render())
        await pilot.press("tab", "enter", "down", "enter")  # opens on "small"; down: "large"
        await pilot.press("tab", *"h1", "enter", *"h2")
        await pilot.press("tab", *"s3cret-token")
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
    view = {
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
    }
    plain = step_text(view).plain
    for expected in ("/etc/x.conf", "update · mode 0600 · owner svc:svc", "    -a", "    +b",
                     "@@ -1 +1 @@", "mode 0644 on disk", "run  systemctl enable x",
                     "(skipped: --root)", "call PUT http://consul/v1/kv/x", "store",
                     '{"a": 1}', "manual reboot the router"):
        assert expected in plain
    assert plan_summary([view]) == (
        "1 files (0 new, 1 changed, 0 unchanged), 1 commands, 1 API calls, 1 manual")
    styles = {str(span.style) for span in step_text(view).spans}
    assert {"green", "red", "cyan"} <= styles
