"""What the first paint does and does not do, and the key bar every screen ends with.

The first screen's cost is measured by bench/run_all.py (not here: timings are noisy);
these tests pin the mechanisms it relies on, deterministically: one stylesheet parse,
only the app's sheet read before home is shown, each screen's sheet read when it is
shown, one widget for the keys.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from textual.css.stylesheet import Stylesheet
from textual.screen import Screen
from tui_helpers import press

import screens
from screens.dashboard import DashboardScreen
from screens.home import HomeScreen
from screens.keybar import KeyBar
from screens.wizard import WizardScreen
from tui.app import CloudRigApp
from tui.resources import data_dir


def sheets_read(app: CloudRigApp) -> set[str]:
    """The .tcss files in the app's stylesheet (by name)."""
    return {Path(where).name for where, _ in app.stylesheet.source if where.endswith(".tcss")}


def bar_text(screen: Screen) -> str:
    return str(screen.query_one(KeyBar).render())


async def test_home_reads_only_the_app_s_sheet_and_a_screen_its_own_when_shown(
        tmp_path: Path, state_dir: Path) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert sheets_read(app) == {"cloudrig.tcss"}
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
        assert sheets_read(app) == {"cloudrig.tcss", "fields.tcss", "wizard.tcss"}
        # The rules read late apply: fields.tcss makes a field's title bold, wizard.tcss
        # pads the form.
        title = app.screen.query(".field-title").first()
        assert title.styles.text_style.bold
        assert app.screen.query_one("#form").styles.padding.left == 1


def screen_classes() -> list[type[Screen]]:
    found: list[type[Screen]] = []
    for module in pkgutil.iter_modules(screens.__path__):
        loaded = importlib.import_module(f"screens.{module.name}")
        found += [value for value in vars(loaded).values()
                  if isinstance(value, type) and issubclass(value, Screen)
                  and value.__module__ == loaded.__name__]
    return found


def paths(css_path: object) -> set[Path]:
    """A CSS_PATH's files: a path, a list of them, or None."""
    items = css_path if isinstance(css_path, list) else [css_path] if css_path else []
    return {Path(item) for item in items}


def test_every_sheet_is_read_by_the_app_or_a_screen_and_parses() -> None:
    """No sheet in assets/ that nothing reads (its rules would silently not apply), none
    named that is missing, and each one parses with the app's variables."""
    named = paths(CloudRigApp.CSS_PATH)
    for screen in screen_classes():
        named |= paths(screen.CSS_PATH)
    shipped = set(data_dir("assets").glob("*.tcss"))
    assert named == shipped
    variables = CloudRigApp().get_css_variables()
    for path in sorted(shipped):
        sheet = Stylesheet(variables=variables)
        sheet.read(path)
        sheet.parse()  # raises on any error, naming the file and line
        assert sheet.rules, path


async def test_the_key_bar_draws_the_keys_and_a_click_presses_one(
        tmp_path: Path, state_dir: Path) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert len(app.screen.query(KeyBar)) == 1 and not app.screen.query("Footer")
        text = bar_text(app.screen)
        assert text.startswith(" ⏎ Wizard  d Dashboard  ^q Quit  ? Keys ")
        assert text.endswith("▏^p palette ") and len(text) == 80
        column = text.index("d Dashboard") + 2
        assert await pilot.click(KeyBar, offset=(column, 0))
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        await app.workers.wait_for_complete()


async def test_the_key_bar_follows_the_focus(tmp_path: Path, state_dir: Path) -> None:
    """The rows editor's keys are there while it has the focus, and go when it leaves."""
    app = CloudRigApp(procedure_id="cloudcasa", root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await press(pilot, "ctrl+a", "ctrl+k", *"https://cc.example.com/api/v1", "tab", "tab",
                    *"not-a-real-key", "ctrl+n")
        await press(pilot, *"prod-aws", "tab", "tab")
        await pilot.pause()
        assert "^o Add row" in bar_text(app.screen)
        await press(pilot, "shift+tab", "shift+tab")
        await pilot.pause()
        assert "Add row" not in bar_text(app.screen)
        assert "^n Next" in bar_text(app.screen)
