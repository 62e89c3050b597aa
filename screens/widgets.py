"""Small widgets the screens share: the title bar and one wizard field."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch, TextArea

from tui.answers import FieldSpec, inline_yaml


class TitleBar(Static):
    """One line naming where the operator is: CloudRig › procedure › page."""

    def __init__(self, *parts: str) -> None:
        super().__init__(" › ".join(("CloudRig", *parts)), classes="titlebar", markup=False)


class FieldInput(Input):
    """An Input that runs its own editing keys (Home/ctrl+a, ctrl+k, Backspace…) as they
    arrive. Textual runs a focused widget's bindings only when the key has bubbled up to
    the app, after printable keys read in the same burst were already inserted: over SSH,
    where keys arrive together, ctrl+a ctrl+k then a URL left the field empty."""

    async def _on_key(self, event: events.Key) -> None:
        for key in event.aliases:
            bindings = self._bindings.key_to_bindings.get(key)
            if bindings:
                event.stop()
                event.prevent_default()  # not Input._on_key, nor the bubbled binding
                await self.run_action(bindings[0].action)
                return


def field_widget(spec: FieldSpec, value: object) -> Widget:
    """The input widget for a field kind (the one place kinds map to widgets)."""
    wid = f"field-{spec.name}"
    placeholder = "" if spec.example is None else f"e.g. {spec.example}"
    match spec.kind:
        case "bool":
            return Switch(value=bool(value), id=wid)
        case "choice":
            options = [(choice, choice) for choice in spec.choices]
            initial = value if value in spec.choices else Select.NULL
            return Select(options, value=initial, allow_blank=True, id=wid)
        case "list":
            return _text_area(wid, value, "one per line")
        case "mapping":
            return _text_area(wid, value, "YAML: key: value per line")
        case "int":
            return FieldInput(str(value or ""), type="integer", placeholder=placeholder, id=wid)
        case "secret":
            return FieldInput(str(value or ""), password=True, id=wid,
                         placeholder="secret: used for this session only, never saved")
        case _:
            return FieldInput(str(value or ""), placeholder=placeholder, id=wid)


def _text_area(wid: str, value: object, how: str) -> TextArea:
    """A multi-line field; its border says how the lines are read."""
    area = TextArea(str(value or ""), id=wid, soft_wrap=True, show_line_numbers=False)
    area.border_title = how
    return area


class FieldBox(Vertical):
    """A field's title, help, widget and the place its problems are shown."""

    def __init__(self, spec: FieldSpec, value: object) -> None:
        super().__init__(id=f"box-{spec.name}", classes="field")
        self.spec = spec
        self.value = value

    def compose(self) -> ComposeResult:
        mark = "" if not self.spec.required else " *"
        yield Label(f"{self.spec.title}{mark}", classes="field-title", markup=False)
        if self.spec.help:
            yield Static(self.spec.help, classes="field-help", markup=False)
        widget = field_widget(self.spec, self.value)
        if isinstance(widget, Switch):
            # The word, not only the knob's colour, says the state (NO_COLOR, 16 colours).
            with Horizontal(classes="switch-row"):
                yield widget
                yield Label(_on_off(widget.value), classes="switch-word")
        else:
            yield widget
        yield Static("", id=f"error-{self.spec.name}", classes="field-error", markup=False)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self.query_one(".switch-word", Label).update(_on_off(event.value))

    def show_problems(self, problems: list[str]) -> None:
        error = self.query_one(".field-error", Static)
        text = ""
        if problems:
            text = "✗ " + "; ".join(problems)
            if self.spec.example is not None and self.spec.kind != "secret":
                text += f" (for example: {inline_yaml(self.spec.example)})"
        error.update(text)
        self.set_class(bool(problems), "-invalid")


def _on_off(value: bool) -> str:
    return "on" if value else "off"
