"""Words for operator text: counted nouns ("1 step", "2 steps", "1 API call", never
"1 files") and times as status lines name them."""

from __future__ import annotations

from datetime import UTC, datetime


def plural(count: int, singular: str, many: str | None = None) -> str:
    """`count` and the noun in the right number; `many` when it is not singular + "s"."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def stamp(when: datetime) -> str:
    """A time as operators read it in status lines: minutes, UTC, named."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
