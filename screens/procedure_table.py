"""Home's table of procedures: a header, a row per procedure, a row cursor.

It draws what Textual's DataTable drew there (the same cells, padding, header and
cursor colours, a long state wrapped inside its column) and keeps its keys (up, down,
home, end, page up/down; Enter or a click chooses), but as one line-based render: the
DataTable cost the first paint about as much again as a bare Textual app's whole
start-up spends on its screen (rendering each cell through rich, measuring each row,
a dozen styled parts), for five rows of text. The dashboard keeps the DataTable.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text
from textual import events
from textual.app import RenderResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

PADDING = 1  # spaces either side of a cell, as the DataTable's cell_padding


class Row(NamedTuple):
    """A procedure as the table shows it."""

    key: str
    title: str
    state: Text


class ProcedureTable(Widget, can_focus=True):
    """The procedures and their states; Enter (or a click) chooses one."""

    ALLOW_SELECT = False
    BINDINGS = [
        Binding("enter", "select", "Wizard"),
        Binding("up", "move(-1)", "Cursor up", show=False),
        Binding("down", "move(1)", "Cursor down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First", show=False),
        Binding("end,ctrl+end", "last", "Last", show=False),
    ]
    COMPONENT_CLASSES = {"procedure-table--header", "procedure-table--cursor"}
    DEFAULT_CSS = """
    ProcedureTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .procedure-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .procedure-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .procedure-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .procedure-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .procedure-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    cursor: reactive[int] = reactive(0, init=False)
    """The highlighted row."""

    class Highlighted(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class Selected(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, headers: tuple[str, str, str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.headers = headers
        self.rows: list[Row] = []
        self.widths: tuple[int, int, int] = (0, 0, 0)
        self._top = 0  # the first row drawn, when they do not all fit
        self._row_at_line: list[int] = []  # the row drawn on each line (-1: the header)

    def show(self, rows: list[Row], widths: tuple[int, int, int]) -> None:
        """Rows (their cells fit WIDTHS, the last one wraps), keeping the cursor's row."""
        self.rows, self.widths = rows, widths
        self.set_reactive(ProcedureTable.cursor, min(self.cursor, max(len(rows) - 1, 0)))
        self.refresh(layout=True)
        if rows:
            self.post_message(self.Highlighted(rows[self.cursor].key))

    @property
    def content_width(self) -> int:
        """The width the cells take, their padding included."""
        return sum(self.widths) + 2 * PADDING * len(self.widths)

    def _cells(self, cells: tuple[Text, Text, Text]) -> list[Text]:
        """The lines of one row: each cell padded, the last one wrapped to its width."""
        width = self.widths[-1]
        last = cells[-1].wrap(self.app.console, width) if cells[-1].cell_len > width \
            else [cells[-1]]
        pad = " " * PADDING
        lines = []
        for index, part in enumerate(last):
            line = Text()
            for cell, cell_width in zip((*cells[:-1], part), self.widths, strict=True):
                shown = cell if index == 0 or cell is part else Text()
                line.append(pad)
                line.append_text(shown)
                line.append(" " * (cell_width - shown.cell_len) + pad)
            lines.append(line)
        return lines

    def get_content_width(self, container: object, viewport: object) -> int:
        return self.content_width

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return 1 + sum(len(self._cells(self._row_cells(row))) for row in self.rows)

    @staticmethod
    def _row_cells(row: Row) -> tuple[Text, Text, Text]:
        return Text(row.key), Text(row.title), row.state

    def render(self) -> RenderResult:
        header_style = self.get_component_rich_style("procedure-table--header")
        cursor_style = self.get_component_rich_style("procedure-table--cursor")
        first, second, third = self.headers
        header = self._cells((Text(first), Text(second), Text(third)))[0]
        header.stylize(header_style)
        drawn = [self._cells(self._row_cells(row)) for row in self.rows]
        room = max(self.size.height - 1, 1)
        # Scroll so the cursor's row is in view (rows may be several lines high).
        self._top = min(self._top, self.cursor)
        while self._top < self.cursor and sum(
                len(lines) for lines in drawn[self._top:self.cursor + 1]) > room:
            self._top += 1
        out = [header]
        self._row_at_line = [-1]
        for index in range(self._top, len(drawn)):
            for line in drawn[index]:
                if index == self.cursor:
                    line.stylize(cursor_style)
                out.append(line)
                self._row_at_line.append(index)
        return Text("\n", no_wrap=True, end="").join(out[:room + 1])

    def watch_cursor(self, cursor: int) -> None:
        self.refresh()
        if self.rows:
            self.post_message(self.Highlighted(self.rows[cursor].key))

    def action_move(self, step: int) -> None:
        if self.rows:
            self.cursor = min(max(self.cursor + step, 0), len(self.rows) - 1)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(self.size.height - 1, 1))

    def action_first(self) -> None:
        self.action_move(-len(self.rows))

    def action_last(self) -> None:
        self.action_move(len(self.rows))

    def action_select(self) -> None:
        if self.rows:
            self.post_message(self.Selected(self.rows[self.cursor].key))

    def on_click(self, event: events.Click) -> None:
        """A click on a row chooses it, as on the DataTable it replaces."""
        line = event.y
        if 0 <= line < len(self._row_at_line) and self._row_at_line[line] >= 0:
            event.stop()
            self.cursor = self._row_at_line[line]
            self.action_select()

