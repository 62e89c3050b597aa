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

from rich.text import Text
from textual.app import App, ComposeResult
from textual.css.stylesheet import Stylesheet
from textual.screen import Screen
from textual.widgets import Static
from tui_helpers import press

import screens
from screens.dashboard import DashboardScreen
from screens.home import HomeScreen
from screens.keybar import KeyBar
from screens.procedure_table import ProcedureTable, Row
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


class TableApp(App[None]):
    """A ProcedureTable alone, ROOM lines high."""

    def __init__(self, rows: list[Row], widths: tuple[int, int, int], room: int) -> None:
        super().__init__()
        self.rows, self.widths, self.room = rows, widths, room
        self.chosen: list[str] = []

    def compose(self) -> ComposeResult:
        table = ProcedureTable(("Procedure", "Title", "State"))
        table.styles.max_height = self.room
        yield table

    def on_mount(self) -> None:
        self.query_one(ProcedureTable).show(self.rows, self.widths)
        self.query_one(ProcedureTable).focus()

    def on_procedure_table_selected(self, event: ProcedureTable.Selected) -> None:
        self.chosen.append(event.key)


def lines_of(table: ProcedureTable) -> list[str]:
    return [str(line).rstrip() for line in table.render().split("\n")]


async def test_a_long_state_wraps_inside_its_column() -> None:
    rows = [Row("one", "First", Text("7/10 · 3 need you")), Row("two", "Second", Text("done"))]
    app = TableApp(rows, (9, 6, 8), room=10)
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        assert lines_of(app.query_one(ProcedureTable)) == [
            " Procedure  Title   State",
            " one        First   7/10 · 3",
            "                    need you",
            " two        Second  done",
        ]


async def test_the_keys_and_a_click_move_and_choose_and_the_cursor_stays_in_view() -> None:
    rows = [Row(f"p{n:02}", f"Procedure {n}", Text("not applied")) for n in range(30)]
    app = TableApp(rows, (9, 12, 11), room=6)  # the header and five rows
    async with app.run_test(size=(50, 12)) as pilot:
        await pilot.pause()
        table = app.query_one(ProcedureTable)
        assert table.cursor == 0
        await press(pilot, "up", "down", "down")
        assert table.cursor == 2
        await press(pilot, "end")
        assert table.cursor == 29
        await pilot.pause()
        assert lines_of(table)[-1].startswith(" p29 ")  # scrolled to it
        await press(pilot, "pageup")
        assert table.cursor == 24
        await press(pilot, "home")
        await pilot.pause()
        assert table.cursor == 0 and lines_of(table)[1].startswith(" p00 ")
        await press(pilot, "pagedown", "enter")
        assert app.chosen == ["p05"]
        assert await pilot.click(ProcedureTable, offset=(3, 2))  # the second row drawn
        await pilot.pause()
        assert app.chosen[-1] == lines_of(table)[2].split()[0] and table.cursor != 5


async def test_enter_on_home_opens_the_highlighted_procedure_s_wizard(
        tmp_path: Path, state_dir: Path) -> None:
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        summary = str(app.screen.query_one("#summary", Static).content)
        await press(pilot, "down")
        await pilot.pause()
        assert str(app.screen.query_one("#summary", Static).content) != summary
        assert str(app.screen.query_one(ProcedureTable).rows[1].key) == "cloudblue"
        await press(pilot, "enter")
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
        assert app.screen.form.procedure.id == "cloudblue"


async def test_keys_that_do_not_fit_are_cut_and_the_palette_s_key_stays(
        tmp_path: Path, state_dir: Path) -> None:
    """On a narrow line the bar keeps its width and the palette's key at the right edge;
    a click on the palette's key opens the palette."""
    app = CloudRigApp(root=tmp_path / "root")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        bar = app.screen.query_one(KeyBar)
        bar.styles.width = 40
        await pilot.pause()
        text = bar_text(app.screen)
        assert len(text) == 40 and text.startswith(" ⏎ Wizard  d Dashboard ")
        assert text.endswith("▏^p palette ") and "Keys" not in text
        assert await pilot.click(KeyBar, offset=(text.index("^p") + 1, 0))
        await pilot.pause()
        assert type(app.screen).__name__ == "CommandPalette"
