"""One thing in full over the current screen: a dashboard row's whole detail."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from screens.keybar import KeyBar
from screens.styles import stylesheets


class DetailScreen(ModalScreen[None]):
    CSS_PATH = stylesheets("dialogs", "fields")
    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, subtitle: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.subtitle = subtitle
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(self.title_text, classes="field-title", markup=False)
            yield Static(self.subtitle, classes="field-help", markup=False)
            with VerticalScroll(id="detail-text"):
                yield Static(self.text, markup=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#detail-text").focus()

    def action_close(self) -> None:
        self.dismiss(None)
