"""The keys of the screen below, every one of them (F1 or ?), and a terminal-too-small
notice that stands in for a screen that would be clipped."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from screens.keybar import KeyBar
from screens.styles import stylesheets

# Keys a widget handles itself, without a binding of its own.
BUILT_IN = {
    "Switch": [("space", "turn it on or off")],
    "Select": [("space", "open the list"), ("up/down", "choose in the open list")],
    "TextArea": [("enter", "a new line"), ("tab", "leaves for the next field")],
}


def key_rows(screen: Screen) -> list[tuple[str, str, str]]:
    """(where, key, what it does) for every key active on SCREEN right now: its own,
    the focused field's, and the app's."""
    app = screen.app
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        what = binding.description or binding.action.replace("_", " ")
        node = active.node
        focused = screen.focused
        where = ("everywhere" if node is app else
                 "the focused field" if node is focused else "this screen")
        shown = binding.key_display or app.get_key_display(binding)
        if "super" in key or (shown, what) in seen:  # macOS-only keys: not over SSH
            continue
        seen.add((shown, what))
        rows.append((where, shown, what + ("" if active.enabled else " (not now)")))
    focused = screen.focused
    for name, extra in BUILT_IN.items():
        if focused is not None and type(focused).__name__ == name:
            rows += [("the focused field", key, what) for key, what in extra]
    order = {"this screen": 0, "the focused field": 1, "everywhere": 2}
    return sorted(rows, key=lambda r: order[r[0]])


class HelpScreen(ModalScreen[None]):
    CSS_PATH = stylesheets("dialogs", "fields")
    BINDINGS = [Binding("escape,f1,question_mark,q", "close", "Close")]

    def __init__(self, title: str, about: str, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.about = about
        self.rows = rows

    def compose(self) -> ComposeResult:
        # A grid per group: a long description wraps in its own column, under itself.
        parts: list[Text | Table] = []
        table = Table.grid()
        group = ""
        for where, key, what in self.rows:
            if where != group:
                parts.append(Text(("\n" if group else "") + where.capitalize(), style="bold"))
                table = Table.grid(padding=(0, 2))
                table.add_column(width=14, no_wrap=True)
                table.add_column(ratio=1)
                parts.append(table)
                group = where
            table.add_row(Text(f"  {key}", style="bold"), Text(what))
        with Vertical(classes="dialog wide"):
            yield Static(f"Keys · {self.title_text}", classes="field-title", markup=False)
            if self.about:
                yield Static(self.about, classes="field-help", markup=False)
            with VerticalScroll(id="help-keys"):
                yield Static(Group(*parts))
            yield Static("F1 or ?: this list · ctrl+p: commands (go to a page, dashboard, "
                         "wrap, quit) · Escape: close", classes="dim")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#help-keys").focus()

    def action_close(self) -> None:
        self.dismiss(None)


class TooSmallScreen(Screen[None]):
    """Shown instead of any screen while the terminal is under 80×24: a clipped screen
    hides text and keys without saying so; this says what to do."""

    def __init__(self, minimum: tuple[int, int]) -> None:
        super().__init__()
        self.minimum = minimum

    def compose(self) -> ComposeResult:
        yield Static("", id="too-small", markup=False)

    def on_mount(self) -> None:
        self._say()

    def on_resize(self) -> None:
        self._say()

    def _say(self) -> None:
        width, height = self.app.size
        self.query_one("#too-small", Static).update(
            f"Terminal too small: {width}×{height}.\n"
            f"CloudRig needs {self.minimum[0]}×{self.minimum[1]}: enlarge the window "
            "(or the font smaller).\nctrl+q quits.")
