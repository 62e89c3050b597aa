"""Focus when the terminal itself loses and regains focus, as a browser page does.

textual-serve tells the app when its page is blurred or focused; a screen composed
meanwhile has nothing focused, and Textual only gives back a widget that was focused
before the blur. CloudRig then focuses the screen's first field, so typing works at once.
The same path in real Chromium: tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import Input
from tui_helpers import press

from screens.home import HomeScreen
from screens.wizard import WizardScreen
from tui.app import CloudRigApp


async def test_screen_opened_while_unfocused_gets_its_first_field_on_focus(
        state_dir: Path) -> None:
    app = CloudRigApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        home = app.screen
        assert isinstance(home, HomeScreen)
        assert app.focused is not None and app.focused.id == "procedures"

        app.post_message(events.AppBlur())
        await pilot.pause()
        assert app.focused is None
        home.open_wizard("carbonio")
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
        assert app.focused is None, "composed while the page was unfocused"

        app.post_message(events.AppFocus())
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "field-consul_url"
        await press(pilot, "ctrl+a", "ctrl+k", *"http://10.0.0.1:8500")
        assert app.screen.query_one("#field-consul_url", Input).value == "http://10.0.0.1:8500"


async def test_focus_given_back_to_the_widget_that_had_it(state_dir: Path) -> None:
    """Blur and focus on the same screen: Textual's own restore is kept (not the first)."""
    app = CloudRigApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.open_wizard("carbonio")  # type: ignore[attr-defined]
        await pilot.pause()
        await pilot.press("tab")
        assert app.focused is not None and app.focused.id == "field-consul_ca_file"
        app.post_message(events.AppBlur())
        await pilot.pause()
        app.post_message(events.AppFocus())
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "field-consul_ca_file"
