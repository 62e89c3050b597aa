"""Ask for secrets over the current screen (a check that needs one; a locked store).

Values go back to the caller, which keeps them in memory for the session: nothing
here writes them anywhere. The store's passphrase, when asked for, comes back under
the empty key.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from screens.keybar import KeyBar
from screens.styles import stylesheets
from screens.widgets import FieldInput


class SecretScreen(ModalScreen[dict[str, str] | None]):
    CSS_PATH = stylesheets("dialogs", "fields")
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "done", "Use them"),
    ]

    def __init__(self, question: str, fields: list[tuple[str, str]], locked: bool) -> None:
        super().__init__()
        self.question = question
        self.fields = fields
        self.locked = locked

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, markup=False)
            if self.locked:
                yield Label("Secret store passphrase (unlocks the stored secrets)",
                            classes="field-title", markup=False)
                yield FieldInput(password=True, id="secret-", placeholder="passphrase")
            for name, title in self.fields:
                yield Label(title, classes="field-title", markup=False)
                yield FieldInput(password=True, id=f"secret-{name}",
                                 placeholder="not shown as you type")
            yield Static("Enter: next · ctrl+s: use them · Escape: cancel", classes="dim")
        yield KeyBar()

    def on_input_submitted(self) -> None:
        inputs = list(self.query(FieldInput))
        if self.focused is inputs[-1]:
            self.action_done()
        else:
            self.focus_next()

    def action_done(self) -> None:
        self.dismiss({(i.id or "").removeprefix("secret-"): i.value
                      for i in self.query(FieldInput)})

    def action_cancel(self) -> None:
        self.dismiss(None)
