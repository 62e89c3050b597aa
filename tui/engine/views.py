"""The plan as the fronts show it: typed view models, never a secret.

`cloudrig plan` (text and --json), the preview screen and the dashboard's action
question read these, not plan items: diffs against the disk, argv as shown, endpoints
and bodies masked, what will be skipped and why. `model_dump(mode="json")` of a
`StepView` is what `cloudrig plan --json` prints for a step (a contract for scripts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tui.commands import CommandRunner, display
from tui.export import export_note
from tui.files import FileView, RemoveView, RestoreView, remove_view, restore_view, view
from tui.model import (
    ApiCall,
    Command,
    FileRemove,
    FileRestore,
    FileWrite,
    Manual,
    OwnedFile,
    PlanItem,
)
from tui.redact import redact

from .planning import StepPlan
from .scope import Scope


class FileItemView(FileView):
    """A file apply writes: its action, mode, owner and diff against the disk."""

    kind: Literal["file"] = "file"


class CommandView(BaseModel):
    kind: Literal["command"] = "command"
    command: str
    description: str = ""
    skipped: str | None = Field(default=None, description="why it will not run, if it won't")


class ApiView(BaseModel):
    kind: Literal["api"] = "api"
    method: str
    url: str
    description: str = ""
    body: str | None = Field(default=None, description="the request body, secrets masked")
    skipped: str | None = None


class RemoveItemView(RemoveView):
    """A file teardown removes, puts back or keeps, as the ownership record says."""

    kind: Literal["remove"] = "remove"
    exists: bool


class RestoreItemView(RestoreView):
    """A file --restore puts back from its backup."""

    kind: Literal["restore"] = "restore"
    text: str


class ManualView(BaseModel):
    kind: Literal["manual"] = "manual"
    text: str


ItemView = Annotated[
    FileItemView | CommandView | ApiView | RemoveItemView | RestoreItemView | ManualView,
    Field(discriminator="kind"),
]


class StepView(BaseModel):
    """One step of the plan as shown."""

    step: str
    title: str
    error: str | None = None
    host: str | None = None
    unreachable: bool = False
    unplanned: bool = False
    note: str | None = Field(default=None, description="where an exported step runs")
    items: list[ItemView] = []


def item_view(item: PlanItem, root: Path | None, runner: CommandRunner, dry_run: bool,
              owned: OwnedFile | None = None) -> ItemView:
    """ITEM as shown; OWNED is the ownership record's entry for a file item's path."""
    match item:
        case FileWrite():
            return FileItemView(**view(item, root).model_dump())
        case Command():
            return CommandView(command=display(item.argv), description=item.description,
                               skipped=runner.skip_reason(item))
        case ApiCall():
            body = redact(_json(item.body)) if item.body is not None else None
            return ApiView(method=item.method, url=redact(item.url),
                           description=item.description, body=body,
                           skipped="dry run" if dry_run and item.changes_remote else None)
        case FileRemove():
            removal = remove_view(item, owned, root)
            return RemoveItemView(**removal.model_dump(), exists=removal.action != "absent")
        case FileRestore():
            planned = restore_view(item.path, root, owned.backup if owned else None)
            return RestoreItemView(**planned.model_dump(), text=planned.sentence())
        case Manual():
            return ManualView(text=item.text)
    raise TypeError(f"no view for plan item {type(item).__name__}")


class Viewer:
    """Makes views as a run of SCOPE with these options would see them."""

    def __init__(self, scope: Scope, for_apply: bool = False) -> None:
        """FOR_APPLY: what is skipped is what apply (not this dry run) would skip — the
        preview of an apply says what the apply will really run."""
        self.scope = scope
        self.dry_run = scope.dry_run and not for_apply
        self.runner = (CommandRunner(dry_run=False, root=scope.root) if for_apply
                       and scope.dry_run else scope.runner)

    def item(self, item: PlanItem) -> ItemView:
        ownership = self.scope.shared.ownership
        path = getattr(item, "path", None)
        owned = ownership.file(path) if ownership is not None and path is not None else None
        return item_view(item, self.scope.root, self.runner, self.dry_run, owned)

    def step(self, planned: StepPlan) -> StepView:
        note = (export_note(planned.host, self.scope.export_dir(), planned.step)
                if planned.host else None)
        return StepView(step=planned.step, title=planned.title, error=planned.error,
                        host=planned.host, unreachable=planned.unreachable,
                        unplanned=planned.unplanned, note=note,
                        items=[self.item(item) for item in planned.items])


def plan_view(scope: Scope, plans: list[StepPlan], for_apply: bool = False) -> list[StepView]:
    """The plan as shown (text and --json): diffs, argv, endpoints, never a secret."""
    viewer = Viewer(scope, for_apply)
    return [viewer.step(planned) for planned in plans]


def _json(value: Any) -> str:
    if isinstance(value, str | bytes):
        return value if isinstance(value, str) else value.decode(errors="replace")
    return json.dumps(value, indent=2, ensure_ascii=False)
