"""Rich text for plans, statuses and events: colour adds to words, never replaces them.

Every line keeps its meaning without colour (NO_COLOR, 16-colour terminals): diff
lines keep their +/-/@@ prefixes, statuses are words, marks sit beside words.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from tui.words import plural

if TYPE_CHECKING:  # the screens read the engine's view models; texts need not load it
    from tui.engine.views import (
        ApiView,
        CommandView,
        FileItemView,
        ItemView,
        ManualView,
        RemoveItemView,
        RestoreItemView,
        StepView,
    )

STATUS_STYLES = {
    "done": "bold green",
    "pending": "yellow",
    "drifted": "bold magenta",
    "failed": "bold red",
    "manual": "cyan",
    "staged": "blue",
    "unknown": "yellow",
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
    "staged": "blue",
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
    "staged": ("◇", "staged", "bold blue"),
    "failed": ("✗", "failed", "bold red"),
    "interrupted": ("■", "interrupted", "yellow"),
}


def status_text(status: str) -> Text:
    """A status word, or the counts of `counts_text` ("7/10 · 3 need you")."""
    style = STATUS_STYLES.get(status)
    if style is None and status[:1].isdigit():
        style = STATUS_STYLES["done"] if status.endswith(" done") else STATUS_STYLES["manual"]
    return Text(status, style=style or "")


def _diff_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "bold"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    return "cyan" if line.startswith("@@") else ""


def diff_text(diff: str, indent: str = "    ") -> Text:
    text = Text()
    for line in diff.splitlines():
        text.append(indent)
        text.append(line, style=_diff_style(line))
        text.append("\n")
    return text


class DiffBlock:
    """A unified diff whose long lines wrap with their gutter: every row of a wrapped
    `+`/`-` line starts with its mark again, so a continuation never reads as context."""

    def __init__(self, diff: str, indent: str = "    ") -> None:
        self.lines = diff.splitlines()
        self.indent = indent

    @property
    def plain(self) -> str:
        return "".join(f"{self.indent}{line}\n" for line in self.lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for line in self.lines:
            style = _diff_style(line)
            mark = line[:1] if line[:1] in "+- " and not line.startswith(("+++", "---")) \
                else ""
            body = Text(line[len(mark):], style=style)
            room = max(1, width - len(self.indent) - len(mark))
            rows = body.wrap(console, room, overflow="fold", no_wrap=False) if body.plain \
                else [Text("")]
            for row in rows:
                yield Text.assemble(self.indent, (mark, style), row, no_wrap=True,
                                    overflow="ignore")


class PlanText:
    """One step of the preview: text parts and diff blocks, rendered in order; `plain`
    is what it says without styles (tests, and the copy a screen reader would get)."""

    def __init__(self) -> None:
        self.parts: list[Text | DiffBlock] = [Text()]

    @property
    def text(self) -> Text:
        last = self.parts[-1]
        if not isinstance(last, Text):
            last = Text()
            self.parts.append(last)
        return last

    def append(self, *args: Any, **kwargs: Any) -> PlanText:
        self.text.append(*args, **kwargs)
        return self

    def append_text(self, text: Text) -> PlanText:
        self.text.append_text(text)
        return self

    def add(self, part: Text | DiffBlock | PlanText) -> PlanText:
        if isinstance(part, PlanText):
            for inner in part.parts:
                self.add(inner)
        elif isinstance(part, Text):
            self.text.append_text(part)
        else:
            self.text.rstrip()
            if not self.text.plain:
                self.parts.pop()
            self.parts.append(part)
            self.parts.append(Text())
        return self

    @property
    def plain(self) -> str:
        return "\n".join(part.plain.rstrip("\n") for part in self.parts if part.plain)

    @property
    def spans(self) -> list[Any]:
        """The styles used (their positions are per part)."""
        return [span for part in self.parts
                for span in (part.spans if isinstance(part, Text)
                             else diff_text("\n".join(part.lines)).spans)]

    def rstrip(self) -> None:
        while len(self.parts) > 1 and isinstance(self.parts[-1], Text) \
                and not self.parts[-1].plain.strip():
            self.parts.pop()
        if isinstance(self.parts[-1], Text):
            self.parts[-1].rstrip()

    def __str__(self) -> str:
        return self.plain

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for part in self.parts:
            if isinstance(part, Text) and not part.plain:
                continue
            if isinstance(part, Text):
                part = part.copy()
                part.rstrip()
            yield part


def _file(item: FileItemView) -> PlanText:
    text = PlanText().append("  file ", style="bold")
    text.append(item.path, style="bold")
    text.append("\n    ")
    text.append(item.action, style=ACTION_STYLES.get(item.action, ""))
    text.append(f" · mode {item.mode}")
    if item.owner:
        text.append(f" · owner {item.owner}")
    text.append("\n")
    if item.mode_drift:
        text.append(f"    {item.mode_drift}\n", style="yellow")
    if item.diff:
        text.add(DiffBlock(item.diff))
        text.append("\n")
    return text


def _command(item: CommandView) -> Text:
    skipped = item.skipped
    text = Text("  skip " if skipped else "  run  ", style="dim bold" if skipped else "bold")
    text.append(item.command)
    if skipped:
        text.append(f"  (not run: {skipped})", style="dim")
    text.append("\n")
    if item.description:
        text.append(f"    {item.description}\n", style="dim")
    return text


def _api(item: ApiView) -> Text:
    text = Text("  call ", style="bold")
    text.append(f"{item.method} ", style="bold cyan")
    text.append(item.url)
    if item.skipped:
        text.append(f"  (skipped: {item.skipped})", style="dim")
    text.append("\n")
    if item.description:
        text.append(f"    {item.description}\n")
    for line in body_lines(item.body):
        text.append(f"      {line}\n", style="dim")
    return text


def body_lines(body: Any) -> Iterator[str]:
    """An API call's body as lines to read: a JSON object as `key: value`, a value with
    line breaks (a cloud-config document) as the lines it holds, not `\\n` escapes."""
    if not body:
        return
    try:
        data = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        data = None
    if not isinstance(data, dict):
        yield from str(body).splitlines()
        return
    for key, value in data.items():
        if isinstance(value, str) and "\n" in value:
            yield f"{key}: |"
            yield from (f"  {line}" for line in value.rstrip("\n").split("\n"))
        elif isinstance(value, str):
            yield f"{key}: {value}"
        else:
            yield f"{key}: {json.dumps(value, ensure_ascii=False)}"


def _manual(item: ManualView) -> Text:
    return Text.assemble(("  manual ", "bold cyan"), item.text, "\n")


def _remove(item: RemoveItemView) -> Text:
    if item.action in ("keep", "restore"):  # as the ownership record says
        return Text.assemble((f"  {item.action} ", "bold"), (item.text, "yellow"), "\n")
    text = Text.assemble(("  remove ", "bold"), item.path)
    if not item.exists:
        text.append("  (absent)", style="dim")
    return text.append("\n")


def _restore(item: RestoreItemView) -> Text:
    style = "yellow" if item.action == "restore" else "dim"
    return Text.assemble(("  restore ", "bold"), (item.text, style), "\n")


def item_text(item: ItemView) -> Text | PlanText:
    """One plan item as the preview shows it."""
    match item.kind:
        case "file":
            return _file(item)
        case "command":
            return _command(item)
        case "api":
            return _api(item)
        case "remove":
            return _remove(item)
        case "restore":
            return _restore(item)
    return _manual(item)


def step_text(step: StepView) -> PlanText:
    """One step of `Session.plan_view` as the preview shows it."""
    text = PlanText()
    text.append(f"● {step.title}", style="bold")
    if step.note:
        text.append(f"\n  {step.note}", style="cyan")
    text.append("\n")
    if step.error:
        text.append(f"  cannot plan: {step.error}\n", style="bold red")
    for item in step.items:
        text.add(item_text(item))
    if not step.items and not step.error:
        text.append("  nothing to do\n", style="dim")
    text.rstrip()
    return text


def plan_summary(views: list[StepView]) -> str:
    """One line: how many files change, and how many commands and calls follow — the
    commands apply will run and those it will not (under --root)."""
    items = [item for step in views for item in step.items]
    files = [i for i in items if i.kind == "file"]
    counts = {a: sum(1 for f in files if f.action == a) for a in ACTION_STYLES}
    commands = [i for i in items if i.kind == "command"]
    skipped = sum(1 for i in commands if i.skipped)
    calls = sum(1 for i in items if i.kind == "api")
    manual = sum(1 for i in items if i.kind == "manual")
    parts = [f"{plural(len(files), 'file')} ({counts['create']} new, {counts['update']} "
             f"changed, {counts['unchanged']} unchanged)",
             plural(len(commands) - skipped, "command") + " to run"
             + (f" ({skipped} not run under --root)" if skipped else ""),
             plural(calls, "API call")]
    if manual:
        parts.append(f"{manual} for you to do")
    return ", ".join(parts)


def mark_text(state: str, title: str, width: int = 0) -> Text:
    mark, word, style = MARKS[state]
    return Text.assemble((f"{mark} ", style), title.ljust(width), (f"  {word}", style))


def event_text(kind: str, message: str) -> Text:
    """A log line: step starts stand out, what they did is indented under them."""
    indent = "  " if kind in ("item", "info", "warning") else ""
    return Text(f"{indent}{message}", style=EVENT_STYLES.get(kind, ""))
