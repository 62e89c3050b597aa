"""A yes/no question over the current screen (cancelling a run, running an action)."""

from __future__ import annotations

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from screens.keybar import KeyBar
from screens.styles import stylesheets


class ConfirmScreen(ModalScreen[bool]):
    CSS_PATH = stylesheets("dialogs")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: RenderableType) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, markup=False)
            yield Static("y: yes    n / Escape: no", classes="dim")
        yield KeyBar()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
