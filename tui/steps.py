"""Reusable step kinds, so a procedure module declares files instead of coding them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from tui.answers import secret_fields
from tui.procedure import Context, FileWrite, Step
from tui.render import render


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


class FileStep(Step):
    """A step whose work is writing rendered files; its check compares them on disk."""

    def __init__(self, id: str, title: str, summary: str, files: Sequence[TemplateFile]) -> None:
        self.id = id
        self.title = title
        self.summary = summary
        self.templates = tuple(files)

    def files(self, ctx: Context) -> list[FileWrite]:
        return [f.item(ctx.answers) for f in self.templates]
