"""How the CLI prints: colours (off without a terminal or with NO_COLOR), progress
lines and plans. No imports beyond the standard library's os and sys: `cloudrig list`
prints through it."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # `typing` costs `cloudrig list` time (see tui/cli.py)
if TYPE_CHECKING:
    from typing import Any

    from tui.engine import StepView
    from tui.engine.views import ItemView
    from tui.model import Event


def _color_on(stream: Any) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def paint(text: str, code: str, stream: Any = None) -> str:
    stream = stream or sys.stdout
    return f"\033[{code}m{text}\033[0m" if _color_on(stream) else text


STATUS_COLORS = {"done": "32", "pending": "33", "drifted": "35", "failed": "31", "manual": "36",
                 "staged": "34", "unknown": "33"}
EVENT_COLORS = {"start": "1", "done": "32", "manual": "36", "staged": "34", "failed": "31",
                "skipped": "2", "warning": "33"}


def progress_printer(event: Event) -> None:
    """Progress goes to stderr, one line per event; not one per poll (a log file of a
    long wait would grow by a line every few seconds: waits print on change and at
    least every 15 s)."""
    print_event(event.kind, event.step, event.message)


def print_event(kind: str, step: str | None, message: str) -> None:
    """One progress line on stderr (a poll prints nothing: see `progress_printer`)."""
    if kind == "poll":
        return
    prefix = f"[{step}] " if step else ""
    line = f"{prefix}{message}"
    print(paint(line, EVENT_COLORS.get(kind, "0"), sys.stderr), file=sys.stderr,
          flush=True)


def print_diff(diff: str) -> None:
    for line in diff.splitlines():
        code = "0"
        if line.startswith("+") and not line.startswith("+++"):
            code = "32"
        elif line.startswith("-") and not line.startswith("---"):
            code = "31"
        elif line.startswith("@@"):
            code = "36"
        print("      " + paint(line, code))


def print_plan(views: list[StepView]) -> None:
    for step in views:
        where = paint(f"  ({step.note})", "36") if step.note else ""
        print(paint(f"● {step.title} [{step.step}]", "1") + where)
        if step.error:
            print("    " + paint(f"cannot plan: {step.error}", "31"))
        for item in step.items:
            _print_item(item)
        if not step.items and not step.error:
            print("    nothing to do")


def _print_item(item: ItemView) -> None:
    if item.kind == "file":
        owner = f", owner {item.owner}" if item.owner else ""
        action = {"create": "32", "update": "33", "unchanged": "2"}[item.action]
        print(f"    file {item.path} ({item.mode}{owner}): " + paint(item.action, action))
        if item.mode_drift:
            print("      " + paint(item.mode_drift, "33"))
        if item.diff:
            print_diff(item.diff)
    elif item.kind == "command":
        skipped = paint(f"  (skipped: {item.skipped})", "2") if item.skipped else ""
        print(f"    run  {item.command}{skipped}")
    elif item.kind == "api":
        skipped = paint(f"  (skipped: {item.skipped})", "2") if item.skipped else ""
        print(f"    call {item.method} {item.url}: {item.description}{skipped}")
        if item.body:
            for line in item.body.splitlines():
                print("      " + line)
    elif item.kind == "remove" and item.action in ("keep", "restore"):
        # The ownership record decides: put back what CloudRig replaced, keep the rest.
        print(f"    {item.action} " + paint(item.text, "33"))
    elif item.kind == "remove":
        print(f"    remove {item.path}" + ("" if item.exists else paint("  (absent)", "2")))
    elif item.kind == "restore":
        print("    restore " + paint(item.text, "33" if item.action == "restore" else "2"))
    else:
        print("    " + paint(f"manual: {item.text}", "36"))
