"""Reusable step kinds, so a procedure module declares files (or a manual task)
instead of coding them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from tui.answers import secret_fields
from tui.context import Context
from tui.model import CheckResult, FileWrite, Manual, PlanItem, Status, Step
from tui.render import render
from tui.words import stamp

A = TypeVar("A", bound=BaseModel)


def template_values(answers: BaseModel) -> dict[str, object]:
    """Answer values a template may use: never the secrets."""
    return answers.model_dump(exclude=set(secret_fields(type(answers))))


@dataclass(frozen=True)
class TemplateFile:
    """A file rendered from `templates/<template>` to the path the answers give."""

    template: str
    path: Callable[[BaseModel], str]
    mode: int = 0o644
    owner: Callable[[BaseModel], str | None] | None = None
    description: str = ""

    def item(self, answers: BaseModel) -> FileWrite:
        owner = self.owner(answers) if self.owner else None
        return FileWrite(
            path=self.path(answers),
            content=render(self.template, **template_values(answers)),
            mode=self.mode,
            owner=owner,
            group=owner,
            description=self.description,
        )


class FileStep(Step[A]):
    """A step whose work is writing rendered files; its check compares them on disk."""

    def __init__(self, id: str, title: str, summary: str, files: Sequence[TemplateFile]) -> None:
        self.id = id
        self.title = title
        self.summary = summary
        self.templates = tuple(files)
        self.renders = tuple(f.template for f in self.templates)

    def files(self, ctx: Context[A]) -> list[FileWrite]:
        return [f.item(ctx.answers) for f in self.templates]


class ManualStep(Step[A]):
    """A step only the operator can do (an admin panel, another system), whose state
    CloudRig cannot see: `cloudrig confirm PROC STEP` records their word and when, and
    the check reports that instead of "manual" forever (`--undo` withdraws it)."""

    def text(self, ctx: Context[A]) -> str:
        """What the operator does, ending with the confirm command."""
        raise NotImplementedError

    def confirm_hint(self, ctx: Context[A]) -> str:
        return f"`cloudrig confirm {ctx.procedure.id} {self.id}`"

    def plan(self, ctx: Context[A]) -> list[PlanItem]:
        if self.id in ctx.confirmations:
            return []  # done by hand and confirmed: nothing left to show
        return [Manual(text=self.text(ctx))]

    def check(self, ctx: Context[A]) -> CheckResult:
        return confirmed_check(ctx, self.id, self.text(ctx))


def confirmed_check(ctx: Context, step_id: str, todo: str) -> CheckResult:
    """DONE with the confirmation's time when the operator confirmed `step_id`, else
    MANUAL with what is still to do."""
    confirmed = ctx.confirmations.get(step_id)
    if confirmed is not None:
        return CheckResult(status=Status.DONE, detail=f"manual — confirmed {stamp(confirmed)}")
    return CheckResult(status=Status.MANUAL, detail=f"manual — not confirmed yet: {todo}")
