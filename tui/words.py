"""Counted nouns for operator text: "1 step", "2 steps", "1 API call" (never "1 files")."""

from __future__ import annotations


def plural(count: int, singular: str, many: str | None = None) -> str:
    """`count` and the noun in the right number; `many` when it is not singular + "s"."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"
