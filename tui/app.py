"""The Textual App: theme, shared workspace, and the first screen.

Screens live in the top-level `screens/` package and are generic over procedures;
this module only wires them together. With a procedure id (`cloudrig wizard PROC`)
the wizard opens over the home screen, so Escape always leads home.

What every screen shares is here too: F1/? lists the keys of the screen in front,
ctrl+p offers its commands (a screen's `palette_commands`) with dashboard, help and
quit; ctrl+q asks the screens first (`request_quit`: a run to cancel, answers to keep
as a draft); and under 80×24 a notice stands in for screens that would be clipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import constants
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import Reactive
from textual.screen import Screen
from textual.scrollbar import ScrollBar, ScrollBarRender

from screens.help import HelpScreen, TooSmallScreen, key_rows
from screens.home import HomeScreen
from screens.styles import stylesheets
from screens.workspace import Workspace
from tui.resources import data_dir
from tui.statefile import state_dir

if TYPE_CHECKING:  # the first paint (home) needs neither pydantic nor the state models
    from pydantic import BaseModel

    from tui.answers import FieldProblem
    from tui.model import Procedure
    from tui.state import StateStore

MINIMUM = (80, 24)  # the size every screen is laid out for (DESIGN.md: 80×24 over SSH)
ANSI_THEME = "ansi-dark"  # Textual 8's theme of the terminal's own 16 colours


def pick_theme(environ: Mapping[str, str]) -> str | None:
    """The 16-colour theme on terminals that do not announce more (TERM=linux, vt100,
    plain xterm over SSH), under NO_COLOR (its colours are then stripped), or when asked
    with CLOUDRIG_ANSI=1; else Textual's default."""
    if environ.get("CLOUDRIG_ANSI") == "1" or "NO_COLOR" in environ:
        return ANSI_THEME
    if environ.get("COLORTERM") or environ.get("TEXTUAL_COLOR_SYSTEM") in ("truecolor", "256"):
        return None
    term = environ.get("TERM", "")
    return None if "256color" in term or "truecolor" in term else ANSI_THEME


def on_linux_console(environ: Mapping[str, str]) -> bool:
    """TERM=linux: the kernel's console, whose font has box lines but no eighth blocks."""
    return environ.get("TERM", "").startswith("linux")


def first_theme() -> str:
    """The theme the app starts with (pick_theme's, else Textual's default)."""
    return pick_theme(os.environ) or constants.DEFAULT_THEME


class CloudRigApp(App[int]):
    # The theme is the reactive's first value, not set in __init__: setting it there runs
    # Textual's theme watcher, which re-parses every stylesheet from scratch (a second
    # full CSS parse, ~25 ms, before the first paint). Textual reads the first value
    # while it builds the App, so its dark/light classes and ANSI filter match it.
    theme: Reactive[str] = Reactive(first_theme)
    CSS_PATH = stylesheets("cloudrig")  # each other screen adds its own (screens/styles.py)
    TITLE = "CloudRig"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1,question_mark", "help", "Keys", key_display="?"),
        # Tab moves focus before the next key is read: as Textual's screen binding it
        # runs only after the key has bubbled up from the focused field, so text typed
        # right after Tab (type-ahead over SSH) landed in the field just left.
        Binding("tab", "focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True),
    ]

    def __init__(
        self,
        procedure_id: str | None = None,
        answers: BaseModel | None = None,
        root: Path | None = None,
        store: StateStore | None = None,
        raw_answers: tuple[dict[str, Any], list[FieldProblem]] | None = None,
    ) -> None:
        # NO_COLOR: Textual strips every colour only with the terminal's own (ANSI) colours;
        # otherwise it still paints 256-colour greys (Monochrome), which NO_COLOR forbids.
        super().__init__(ansi_color=True if "NO_COLOR" in os.environ else None)
        self.workspace = Workspace(store.directory if store else state_dir(),
                                   Path(root).resolve() if root else None, _store=store)
        self.procedure_id = procedure_id
        if procedure_id and answers is not None:
            self.workspace.answers[procedure_id] = answers
        if procedure_id and raw_answers is not None:
            self.workspace.raw_answers[procedure_id] = raw_answers
        if on_linux_console(os.environ):
            self.add_class("-console")  # box lines its font has (assets/cloudrig.tcss)
        self.add_class(f"-theme-{self.theme}", update=False)  # as Textual's watcher would

    def get_default_screen(self) -> Screen:
        return HomeScreen(self.workspace)

    def on_mount(self) -> None:
        if self.procedure_id:
            home = self.screen
            assert isinstance(home, HomeScreen)
            home.open_wizard(self.procedure_id)
        self.call_after_refresh(self.fit_terminal)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_terminal)

    def fit_terminal(self) -> None:
        """Under 80×24 a notice stands in front of every screen; back at size, it goes."""
        width, height = self.size
        small = width < MINIMUM[0] or height < MINIMUM[1]
        shown = isinstance(self.screen, TooSmallScreen)
        if small and not shown:
            self.push_screen(TooSmallScreen(MINIMUM))
        elif not small and shown:
            self.pop_screen()

    def open_wizard_at(self, workspace: Workspace, procedure: Procedure,
                       answers: BaseModel | None, index: int) -> None:
        """The wizard on page INDEX, for the screens it leads to (screens.workspace's
        Navigator): they reach it through the app rather than importing it."""
        from screens.wizard import open_wizard_at  # deferred: start-up (pydantic)

        open_wizard_at(self, workspace, procedure, answers, index)

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpScreen | TooSmallScreen):
            return
        title = getattr(screen, "title_for_help", None) or type(screen).__name__.removesuffix(
            "Screen").lower()
        self.push_screen(HelpScreen(str(title), getattr(screen, "HELP", ""), key_rows(screen)))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The screen's own commands first (go to a page, a step; toggle wrap), then
        what every screen offers."""
        own = getattr(screen, "palette_commands", None)
        for title, help_text, callback in own() if own else []:
            yield SystemCommand(title, help_text, callback)
        dashboard = getattr(screen, "action_dashboard", None)
        if dashboard is not None and screen.check_action("dashboard", ()) is not False:
            yield SystemCommand("Dashboard", "Where every step stands now", dashboard)
        yield SystemCommand("Keys", "Every key of this screen (F1)", self.action_help)
        yield SystemCommand("Quit", "Leave CloudRig (a run or typed answers ask first)",
                            self.action_quit)
    def watch_app_focus(self, focus: bool) -> None:
        """In a browser (`cloudrig serve`) the page starts unfocused, so the first screen
        is composed with nothing focused and Textual has no widget to give focus back to
        when the page is clicked: focus the screen's first widget then, as a terminal
        start does, so Enter on home opens the wizard without a Tab first."""
        screen = self.screen
        if not focus or screen.focused is not None:
            return
        selector = screen.AUTO_FOCUS if screen.AUTO_FOCUS is not None else self.AUTO_FOCUS
        if not selector:
            return
        first = next((w for w in screen.query(selector) if w.focusable), None)
        if first is not None:
            screen.set_focus(first)

    async def action_quit(self) -> None:
        """Quit — but first the screens may ask: during an apply, whether to leave the
        run going (it is a process of its own: home or `cloudrig attach` follows it
        again) or to cancel it (the same path as Escape: confirm, stop at a safe point,
        exit 130); a wizard with typed answers asks and keeps them as a draft.
        Otherwise at once; only the viewers stop."""
        for screen in reversed(self.screen_stack):
            ask = getattr(screen, "request_quit", None)
            if ask is not None and ask():
                return
        self.workspace.stop_viewers()
        self.exit(0)


class ConsoleScrollBarRender(ScrollBarRender):
    """Whole-cell scrollbar thumbs: the Linux console's font lacks the eighth blocks
    (▁▂▃ ▉▊▋) Textual draws a thumb's fractional ends with."""

    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8


def run_app(
    procedure_id: str | None = None,
    answers: BaseModel | None = None,
    root: Path | None = None,
    raw_answers: tuple[dict[str, Any], list[FieldProblem]] | None = None,
) -> int:
    """Run the TUI; the exit code is 0, or a cancelled run's (130): errors are shown on
    screen, not raised."""
    if on_linux_console(os.environ):
        ScrollBar.renderer = ConsoleScrollBarRender  # process-wide: one app per process
    app = CloudRigApp(procedure_id=procedure_id, answers=answers, root=root,
                      raw_answers=raw_answers)
    app.run()
    return app.return_code or 0


def serve_in_browser(command: str, host: str, port: int, gate: Any) -> None:
    """`cloudrig serve`: textual-serve runs COMMAND (this TUI) per browser page over a
    websocket, until interrupted, behind GATE (tui/serve.py's aiohttp middleware: token,
    Host, Origin) and with CloudRig's own page (no resource from the internet). Here,
    not in the CLI: only this module and screens/ import Textual's packages; the CLI
    builds the gate and scrubs the environment, so the TUI's start-up does not load
    tui/serve.py's hmac, secrets and ipaddress."""
    from textual_serve.server import Server  # deferred: start-up (textual_serve)

    class GatedServer(Server):
        async def _make_app(self) -> Any:
            # textual-serve builds its aiohttp app here (routes: /, /ws, /download,
            # /static); middlewares must be added before the app starts (it freezes).
            app = await super()._make_app()
            app.middlewares.append(gate)
            return app

        async def on_startup(self, app: Any) -> None:
            """Quiet: the CLI printed the URL, with its token, once."""

    # NO_COLOR is about the terminal `serve` was started from; the page is a truecolor
    # xterm.js terminal, and the app inherits this environment (textual-serve copies it)
    # (the CLI has taken the secrets out of it: a served session uses the secret store,
    # or asks).
    os.environ.pop("NO_COLOR", None)
    # aiohttp's access log would print every URL asked for, the token's included.
    logging.getLogger("aiohttp.access").disabled = True
    GatedServer(command, host=host, port=port, title="CloudRig",
                templates_path=data_dir("assets") / "serve").serve()
