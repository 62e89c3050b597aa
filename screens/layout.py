"""Layout arithmetic for a DataTable that fills the width (the dashboard's checks: the
Detail column takes what the others leave)."""

from __future__ import annotations

from textual.widgets import DataTable


def fit_width(table: DataTable, fixed: list[int]) -> int:
    """The width left for a table's last column once the FIXED columns and every
    column's cell padding are counted, from the table's real content width (inside
    its scrollbar gutter): nothing wraps past the edge, nothing is left unused."""
    width = table.scrollable_content_region.width or table.size.width
    padding = 2 * table.cell_padding * (len(fixed) + 1)
    return width - sum(fixed) - padding
