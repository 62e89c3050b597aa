"""Rich text for plans, statuses and events: colour adds to words, never replaces them.

Every line keeps its meaning without colour (NO_COLOR, 16-colour terminals): diff
lines keep their +/-/@@ prefixes, statuses are words, marks sit beside words.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

STATUS_STYLES = {
    "done": "bold green",
    "pending": "yellow",
    "drifted": "bold magenta",
    "failed": "bold red",
    "manual": "cyan",
    "not applied": "dim",
    "interrupted": "yellow",
    "removed": "dim",
    "running": "bold cyan",
}
ACTION_STYLES = {"create": "green", "update": "yellow", "unchanged": "dim"}
EVENT_STYLES = {
    "start": "bold",
    "done": "green",
    "manual": "cyan",
    "failed": "bold red",
    "skipped": "dim",
    "warning": "yellow",
    "item": "",
    "info": "",
}
# Progress marks per step state: (mark, word, style).
MARKS = {
    "waiting": ("○", "waiting", "dim"),
    "running": ("▶", "running", "bold"),
    "done": ("✓", "done", "green"),
    "resumed": ("✓", "done earlier", "green"),
    "manual": ("◆", "manual", "bold cyan"),
    "failed": ("✗", "failed", "bold red"),
    "interrupted": ("■", "interrupted", "yellow"),
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def diff_text(diff: str, indent: str = "    ") -> Text:
    text = Text()
    for line in diff.splitlines():
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        text.append(indent)
        text.append(line, style=style)
        text.append("\n")
    return text


def _file(item: dict[str, Any]) -> Text:
    text = Text("  file ", style="bold")
    text.append(item["path"], style="bold")
    text.append("\n    ")
    text.append(item["action"], style=ACTION_STYLES.get(item["action"], ""))
    text.append(f" · mode {item['mode']}")
    if item.get("owner"):
        text.append(f" · owner {item['owner']}")
    text.append("\n")
    if item.get("mode_drift"):
        text.append(f"    {item['mode_drift']}\n", style="yellow")
    if item.get("diff"):
        text.append_text(diff_text(item["diff"]))
    return text


def _command(item: dict[str, Any]) -> Text:
    text = Text("  run  ", style="bold")
    text.append(item["command"])
    if item.get("skipped"):
        text.append(f"  (skipped: {item['skipped']})", style="dim")
    text.append("\n")
    if item.get("description"):
        text.append(f"    {item['description']}\n", style="dim")
    return text


def _api(item: dict[str, Any]) -> Text:
    text = Text("  call ", style="bold")
    text.append(f"{item['method']} ", style="bold cyan")
    text.append(item["url"])
    if item.get("skipped"):
        text.append(f"  (skipped: {item['skipped']})", style="dim")
    text.append("\n")
    if item.get("description"):
        text.append(f"    {item['description']}\n")
    for line in str(item.get("body") or "").splitlines():
        text.append(f"      {line}\n", style="dim")
    return text


def _manual(item: dict[str, Any]) -> Text:
    return Text.assemble(("  manual ", "bold cyan"), item["text"], "\n")


def _remove(item: dict[str, Any]) -> Text:
    if item.get("action") in ("keep", "restore"):  # as the ownership record says
        return Text.assemble((f"  {item['action']} ", "bold"), (item["text"], "yellow"), "\n")
    text = Text.assemble(("  remove ", "bold"), item["path"])
    if not item.get("exists", True):
        text.append("  (absent)", style="dim")
    return text.append("\n")


def _restore(item: dict[str, Any]) -> Text:
    style = "yellow" if item.get("action") == "restore" else "dim"
    return Text.assemble(("  restore ", "bold"), (item["text"], style), "\n")


ITEM_TEXT = {"file": _file, "command": _command, "api": _api, "manual": _manual,
             "remove": _remove, "restore": _restore}


def step_text(step: dict[str, Any]) -> Text:
    """One step of `Session.plan_view` as the preview shows it."""
    text = Text()
    text.append(f"● {step['title']}", style="bold")
    text.append(f" ({step['step']})\n", style="dim")
    if step.get("error"):
        text.append(f"  cannot plan: {step['error']}\n", style="bold red")
    for item in step["items"]:
        text.append_text(ITEM_TEXT[item["kind"]](item))
    if not step["items"] and not step.get("error"):
        text.append("  nothing to do\n", style="dim")
    text.rstrip()
    return text


def plan_summary(views: list[dict[str, Any]]) -> str:
    """One line: how many files change, and how many commands and calls follow."""
    items = [item for step in views for item in step["items"]]
    files = [i for i in items if i["kind"] == "file"]
    counts = {a: sum(1 for f in files if f["action"] == a) for a in ACTION_STYLES}
    commands = sum(1 for i in items if i["kind"] == "command")
    calls = sum(1 for i in items if i["kind"] == "api")
    manual = sum(1 for i in items if i["kind"] == "manual")
    parts = [f"{len(files)} files ({counts['create']} new, {counts['update']} changed, "
             f"{counts['unchanged']} unchanged)", f"{commands} commands", f"{calls} API calls"]
    if manual:
        parts.append(f"{manual} manual")
    return ", ".join(parts)


def mark_text(state: str, title: str, width: int = 0) -> Text:
    mark, word, style = MARKS[state]
    return Text.assemble((f"{mark} ", style), title.ljust(width), (f"  {word}", style))


def event_text(kind: str, message: str) -> Text:
    """A log line: step starts stand out, what they did is indented under them."""
    indent = "  " if kind in ("item", "info", "warning") else ""
    return Text(f"{indent}{message}", style=EVENT_STYLES.get(kind, ""))
