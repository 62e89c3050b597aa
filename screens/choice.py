"""Pick one of a few named things over the current screen (e.g. a procedure's action)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from screens.keybar import KeyBar
from screens.styles import stylesheets


class ChoiceScreen(ModalScreen[str | None]):
    """Dismisses with the chosen option's id, or None on Escape."""
    CSS_PATH = stylesheets("dialogs")

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, markup=False)
            yield OptionList(*(Option(label, id=key) for key, label in self.choices))
            yield Static("Enter: choose    Escape: cancel", classes="dim")
        yield KeyBar()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
