"""The key bar: the bottom line of every screen, naming the keys that work there now.

It shows what Textual's Footer shows — each shown binding of the focused widget, its
screen and the app (one per action, the first key bound to it), disabled ones dimmed,
the command palette's key on the right — in Footer's colours, and a click on a key
presses it. It is one widget drawing one line: Footer mounts a widget per key and
mounts them all again whenever the bindings change (focus moves, a page changes), and
styles each key twice while doing so — about a tenth of the first screen's start-up
(bench/run_all.py) and work on every screen change.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text
from textual import events
from textual.app import RenderResult
from textual.widget import Widget


class Key(NamedTuple):
    """One key as drawn: the key to press, its label, and whether it works now."""

    key: str
    display: str
    description: str
    enabled: bool


class KeyBar(Widget):
    """The keys of the screen in front, on its bottom line."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--palette-edge"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: clip;
        .keybar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .keybar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .keybar--palette-edge {
            color: $foreground 20%;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys: list[Key] = []
        self._palette: Key | None = None
        self._spans: list[tuple[int, int, Key]] = []  # (start, end, key) on the line

    def on_mount(self) -> None:
        self._keys, self._palette = self.read_keys()  # the first frame has them already
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: object) -> None:
        keys, palette = self.read_keys()
        if (keys, palette) != (self._keys, self._palette):
            self._keys, self._palette = keys, palette
            self.refresh()

    def read_keys(self) -> tuple[list[Key], Key | None]:
        """The keys to show now, and the command palette's (None: no palette)."""
        app = self.app
        active = self.screen.active_bindings
        keys: list[Key] = []
        actions: set[str] = set()
        for _node, binding, enabled, _tooltip in active.values():
            if not binding.show or binding.action in actions:
                continue
            actions.add(binding.action)
            keys.append(Key(binding.key, app.get_key_display(binding), binding.description,
                            enabled))
        palette = None
        if app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
            _node, binding, enabled, _tooltip = active[app.COMMAND_PALETTE_BINDING]
            palette = Key(binding.key, app.get_key_display(binding), binding.description,
                          enabled)
            keys = [key for key in keys if key.key != palette.key]
        return keys, palette

    def _segment(self, line: Text, key: Key, palette: bool = False) -> None:
        """KEY drawn at the end of LINE as Footer draws it: " key description ", or
        for the palette's key (after its edge) "key description " and a space."""
        start = line.cell_len
        key_style = self.get_component_rich_style("keybar--key")
        description_style = self.get_component_rich_style("keybar--description")
        if palette:
            line.append(key.display, key_style)
            line.append(f" {key.description}", description_style)
            line.append(" ")
        else:
            line.append(f" {key.display} ", key_style)
            if key.description:
                line.append(f"{key.description} ", description_style)
        if not key.enabled:
            line.stylize("dim", len(line) - (line.cell_len - start))
        self._spans.append((start, line.cell_len, key))

    def render(self) -> RenderResult:
        """The keys from the left; the palette's key against the right edge. Keys that
        do not fit are cut (Footer scrolled them out of sight), never the palette's."""
        self._spans = []
        line = Text(no_wrap=True, overflow="crop", end="")
        for key in self._keys:
            self._segment(line, key)
        if self._palette is not None:
            keys_spans, self._spans = self._spans, []
            palette = Text(no_wrap=True, end="")
            palette.append("▏", self.get_component_rich_style("keybar--palette-edge"))
            self._segment(palette, self._palette, palette=True)
            palette_spans = self._spans
            room = max(self.size.width - palette.cell_len, 0)
            line.truncate(room, pad=True)
            self._spans = [(start, min(end, room), key)
                           for start, end, key in keys_spans if start < room]
            self._spans += [(room + start, room + end, key)
                            for start, end, key in palette_spans]
            line.append_text(palette)
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                if key.enabled:
                    self.app.simulate_key(key.key)
                else:
                    self.app.bell()
                return
