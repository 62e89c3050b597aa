"""Small widgets the screens share: the title bar, wizard fields and their editors, a
spinner with elapsed time, and the run log."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

import yaml
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch, TextArea

from tui.answers import FieldSpec, inline_yaml
from tui.words import plural


class TitleBar(Static):
    """One line naming where the operator is: CloudRig › procedure › page."""

    def __init__(self, *parts: str) -> None:
        super().__init__(" › ".join(("CloudRig", *parts)), classes="titlebar", markup=False)


class FieldInput(Input):
    """An Input that runs its own editing keys (Home/ctrl+a, ctrl+k, Backspace…) as they
    arrive. Textual runs a focused widget's bindings only when the key has bubbled up to
    the app, after printable keys read in the same burst were already inserted: over SSH,
    where keys arrive together, ctrl+a ctrl+k then a URL left the field empty."""

    def on_mount(self) -> None:
        # NO_COLOR: the cursor is a reversed cell; blinking, it is gone half the time.
        if self.app.no_color:
            self.cursor_blink = False

    async def _on_key(self, event: events.Key) -> None:
        for key in event.aliases:
            bindings = self._bindings.key_to_bindings.get(key)
            if bindings:
                event.stop()
                event.prevent_default()  # not Input._on_key, nor the bubbled binding
                await self.run_action(bindings[0].action)
                return


# ---------------------------------------------------------------- row editors


class RowInput(FieldInput):
    """One row of a list or mapping editor."""


class RowsEditor(Vertical):
    """Rows of inputs for a list (one value per row) or a mapping (key and value per
    row), with add/remove keys and an item count in its border: posting's key/value
    tables, at 80 columns. Enter moves down a row, and on the last, non-empty row adds
    one; Enter on an empty last row leaves for the next field; Backspace on an empty
    row removes it."""

    BINDINGS = [
        Binding("ctrl+o", "add_row", "Add row"),
        Binding("ctrl+r", "remove_row", "Remove row"),
    ]

    class Changed(Message):
        def __init__(self, editor: RowsEditor) -> None:
            super().__init__()
            self.editor = editor

        @property
        def control(self) -> RowsEditor:
            return self.editor

    columns = 1

    def __init__(self, rows: list[tuple[str, ...]], *, id: str, placeholders: tuple[str, ...]
                 ) -> None:
        super().__init__(id=id, classes="rows")
        self._initial = rows or [tuple("" for _ in range(self.columns))]
        self.placeholders = placeholders

    def compose(self) -> ComposeResult:
        for row in self._initial:
            yield self._row(row)

    def _row(self, values: tuple[str, ...]) -> Widget:
        inputs = [RowInput(value, placeholder=hint, classes=f"cell cell-{i}")
                  for i, (value, hint) in enumerate(zip(values, self.placeholders, strict=True))]
        return Horizontal(*inputs, classes="row")

    def on_mount(self) -> None:
        self._count()

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(i.value for i in row.query(RowInput)) for row in self.query(".row")]

    def _filled(self) -> list[tuple[str, ...]]:
        return [r for r in self.rows() if any(v.strip() for v in r)]

    def _count(self) -> None:
        self.border_title = f"{plural(len(self._filled()), 'item')} · ^o add · ^r remove"

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._count()
        self.post_message(self.Changed(self))

    def _focused_row(self) -> Widget | None:
        focused = self.screen.focused
        row = focused.parent if isinstance(focused, RowInput) else None
        return row if isinstance(row, Widget) else None

    async def action_add_row(self) -> None:
        row = self._focused_row()
        new = self._row(tuple("" for _ in range(self.columns)))
        await self.mount(new, after=row) if row is not None else await self.mount(new)
        new.query(RowInput).first().focus()
        self._count()

    async def action_remove_row(self) -> None:
        row = self._focused_row()
        if row is None:
            return
        rows = list(self.query(".row"))
        index = rows.index(row)
        if len(rows) == 1:
            for cell in row.query(RowInput):
                cell.value = ""
            row.query(RowInput).first().focus()
        else:
            target = rows[index - 1] if index else rows[1]
            target.query(RowInput).last().focus()
            await row.remove()
        self._count()
        self.post_message(self.Changed(self))

    async def enter(self) -> bool:
        """Enter in a row: down a row, a new row after a filled last one; False when
        the editor is done with (an empty last row: it goes, focus moves on)."""
        row = self._focused_row()
        if row is None:
            return False
        rows = list(self.query(".row"))
        cells = list(row.query(RowInput))
        focused = self.screen.focused
        if isinstance(focused, RowInput) and focused is not cells[-1]:  # (row is focused's)
            cells[cells.index(focused) + 1].focus()
            return True
        if row is not rows[-1]:
            rows[rows.index(row) + 1].query(RowInput).first().focus()
            return True
        if any(c.value.strip() for c in cells):
            await self.action_add_row()
            return True
        if len(rows) > 1:
            await row.remove()
            self._count()
        return False

    async def on_key(self, event: events.Key) -> None:
        if event.key != "backspace":
            return
        row = self._focused_row()
        focused = self.screen.focused
        if (row is None or not isinstance(focused, RowInput) or focused.value
                or any(c.value for c in row.query(RowInput))):
            return
        if len(self.query(".row")) > 1:
            event.stop()
            event.prevent_default()
            await self.action_remove_row()


class ListEditor(RowsEditor):
    """A list field: one value per row."""

    columns = 1

    def __init__(self, values: list[str], *, id: str, example: str) -> None:
        super().__init__([(v,) for v in values], id=id, placeholders=(example,))

    @property
    def value(self) -> list[str]:
        return [r[0].strip() for r in self.rows() if r[0].strip()]


class MappingEditor(RowsEditor):
    """A mapping field: a key and its value per row. A value that starts with `{` or `[`
    is read as YAML (a nested mapping or list, as `inline_yaml` shows it); any other is
    the text itself, exactly as typed (`42 # x` stays that string)."""

    columns = 2

    def __init__(self, value: dict[str, Any], *, id: str, example: tuple[str, str]) -> None:
        rows: list[tuple[str, ...]] = [(str(k), v if isinstance(v, str) else inline_yaml(v))
                                       for k, v in (value or {}).items()]
        super().__init__(rows, id=id, placeholders=(f"key, e.g. {example[0]}",
                                                    f"value, e.g. {example[1]}"))

    @property
    def value(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, raw in self.rows():
            if not key.strip() and not raw.strip():
                continue
            value: Any = raw
            if raw.strip().startswith(("{", "[")):
                try:
                    value = yaml.safe_load(raw)
                except yaml.YAMLError:
                    value = raw  # the model says it wants a mapping, naming the key
            found[key.strip()] = value
        return found


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
            example = spec.example[0] if isinstance(spec.example, list) and spec.example \
                else ""
            return ListEditor([str(v) for v in value or []] if isinstance(value, list)
                              else str(value or "").splitlines(), id=wid, example=str(example))
        case "mapping":
            example = next(iter(spec.example.items()), ("key", "value")) \
                if isinstance(spec.example, dict) and spec.example else ("key", "value")
            shown = (example[0], example[1] if isinstance(example[1], str)
                     else inline_yaml(example[1]))
            if isinstance(value, str):  # text from before (unreadable): a row per line
                value = dict(line.partition(":")[::2] for line in value.splitlines() if line)
            return MappingEditor(value if isinstance(value, dict) else {}, id=wid,
                                 example=shown)
        case "int":
            return FieldInput(str(value or ""), type="integer", placeholder=placeholder, id=wid)
        case "secret":
            return FieldInput(str(value or ""), password=True, id=wid,
                              placeholder="secret: not shown as you type")
        case _ if spec.multiline:
            area = TextArea(str(value or ""), id=wid, soft_wrap=True, show_line_numbers=True)
            if "NO_COLOR" in os.environ:
                area.cursor_blink = False  # a steady reversed cell: visible without colour
            area.border_title = "text · Enter: new line · Tab: next field"
            return area
        case _:
            return FieldInput(str(value or ""), placeholder=placeholder, id=wid)


class FieldBox(Vertical):
    """A field's title, help, widget and the place its problems are shown; a secret's
    box also says where its value comes from and where a typed one goes."""

    def __init__(self, spec: FieldSpec, value: object, where: str = "",
                 required: bool | None = None) -> None:
        super().__init__(id=f"box-{spec.name}", classes="field")
        self.spec = spec
        self.value = value
        self.where = where
        self.required = spec.required if required is None else required

    def compose(self) -> ComposeResult:
        yield Label(self._title(), classes="field-title", markup=False)
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
        if self.where:
            yield Static(self.where, classes="field-where", markup=False)
        yield Static("", id=f"error-{self.spec.name}", classes="field-error", markup=False)

    def _title(self) -> str:
        return f"{self.spec.title}{' *' if self.required else ''}"

    def mark_required(self, required: bool) -> None:
        self.required = required
        self.query_one(".field-title", Label).update(self._title())

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self.query_one(".switch-word", Label).update(_on_off(event.value))

    def show_problems(self, problems: list[str]) -> None:
        """Problems under the field, named by its title (a box scrolled to its widget
        may have its title out of view)."""
        error = self.query_one(".field-error", Static)
        text = ""
        if problems:
            text = f"✗ {self.spec.title}: " + "; ".join(problems)
            if self.spec.example is not None and self.spec.kind != "secret":
                text += f" (for example: {inline_yaml(self.spec.example)})"
        error.update(text)
        self.set_class(bool(problems), "-invalid")


def _on_off(value: bool) -> str:
    return "on" if value else "off"


# ---------------------------------------------------------------- working


SPINNER = "|/-\\"  # ASCII: every console font has it


class Working(Static):
    """A line saying what is under way, with a spinner and the seconds it has taken, so
    a slow remote is never mistaken for a hung screen."""

    def __init__(self, *, id: str) -> None:
        super().__init__("", id=id, markup=False)
        self.what = ""
        self.started = 0.0
        self.display = False
        self._timer: Timer | None = None

    def start(self, what: str) -> None:
        self.what, self.started = what, time.monotonic()
        self.display = True
        self._tick()
        if self._timer is None:  # ticking only while something is under way
            self._timer = self.set_interval(0.25, self._tick, name="spinner")

    def stop(self) -> None:
        self.what = ""
        self.display = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        if not self.what:
            return
        elapsed = time.monotonic() - self.started
        frame = SPINNER[int(elapsed * 4) % len(SPINNER)]
        self.update(f"{frame} {self.what} {int(elapsed)} s")


# ---------------------------------------------------------------- run log


LINK = re.compile(r"https?://\S+")
COMMAND_PREFIX = "$ "


def log_lines(text: Text) -> list[Text]:
    """A log line with every URL on a line of its own (indented under the line), so a
    wrap never splits one between words and it can be copied whole."""
    plain = text.plain
    if not LINK.search(plain):
        return [text]
    lines: list[Text] = []
    indent = plain[: len(plain) - len(plain.lstrip(" "))]
    start = 0
    for match in LINK.finditer(plain):
        before = text[start:match.start()]
        if before.plain.strip():
            before.rstrip()
            lines.append(before)
        url = text[match.start():match.end()].copy()
        url.stylize("underline")
        lines.append(Text(indent + "  ").append_text(url))
        start = match.end()
    while start < len(plain) and plain[start] == " ":
        start += 1
    rest = text[start:]
    if rest.plain.strip():
        lines.append(Text(indent + "  ").append_text(rest))
    return lines


def links_in(plain: str) -> list[str]:
    """What the copy key offers in a log line: its URLs, or the command it ran."""
    found = LINK.findall(plain)
    stripped = plain.strip()
    if stripped.startswith(COMMAND_PREFIX):
        found.append(stripped[len(COMMAND_PREFIX):])
    return [u.rstrip(".,;)") if u.startswith("http") else u for u in found]


class RunLog(VerticalScroll):
    """The run's log, wrapped to the visible width and re-wrapped whenever that changes
    (it is one text, laid out by Textual on each resize): nothing is cut at the border,
    at 80 columns or 60. Follows the end unless the operator scrolled up. Links and
    commands can be copied (OSC 52) with `c`; `w` turns wrapping off and on."""

    BINDINGS = [
        Binding("c", "copy", "Copy link"),
        Binding("w", "toggle_wrap", "Wrap"),
    ]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.text = Text()
        self.lines: list[str] = []
        self.wrap = True
        self.on_copy: Callable[[list[str]], None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.text, id=f"{self.id}-text")

    def write(self, line: Text) -> None:
        following = self.scroll_y >= self.max_scroll_y - 1
        for part in log_lines(line):
            if self.lines:
                self.text.append("\n")
            self.text.append_text(part)
            self.lines.append(part.plain)
        body = self.query_one(Static)
        body.update(self._shown())
        if following:
            self.call_after_refresh(self.scroll_end, animate=False)

    def _shown(self) -> Text:
        text = self.text.copy()
        if not self.wrap:
            text.no_wrap, text.overflow = True, "ignore"
        # Wrapped: Textual's own word wrap, which folds a long word whole. (Rich's
        # overflow="fold" on the Text drops a character at every fold in Textual 8.2.)
        return text

    def links(self) -> list[str]:
        """Every URL and command in the log, newest first, each once."""
        found: list[str] = []
        for line in reversed(self.lines):
            for link in links_in(line):
                if link not in found:
                    found.append(link)
        return found

    def action_copy(self) -> None:
        if self.on_copy is not None:
            self.on_copy(self.links())

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.set_class(not self.wrap, "-nowrap")
        self.query_one(Static).update(self._shown())
