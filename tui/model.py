"""The vocabulary every part of CloudRig speaks: procedures, steps, plan items, checks,
events, the ownership record.

A procedure is data: an answers model, wizard pages naming its fields, and ordered
steps. A step says what it will do (`plan`), does it (`apply`), says whether it is
done right now (`check`) and, where the runbook has a removal path, undoes it; it may
mark files of the operator's that `teardown --restore` puts back. Actions are the
runbook's occasional operator tasks (rotate a token), run on request. The fronts
(CLI, TUI) are generic over this vocabulary.

A leaf: it imports nothing of CloudRig but its errors and where shipped templates are
(tui/resources.py, for `Procedure`'s own checks; an import-linter contract in
pyproject.toml), so files, commands, secrets, clients and procedures can all use it
without a circle. Carrying plan items out is `tui/context.py`'s job; the registry of
procedures is `tui/registry.py`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from tui.errors import ProcedureInvalid, UsageError
from tui.resources import data_dir

if TYPE_CHECKING:  # types only: tui.context and tui.secrets use this module
    from argparse import ArgumentParser, Namespace

    from tui.context import Context
    from tui.secrets import SecretSource

A = TypeVar("A", bound=BaseModel)
"""A procedure's answers model: `Step[CarbonioAnswers]` sees `ctx.answers` as one."""


class Status(StrEnum):
    """Where a step stands on this host / remote right now."""

    DONE = "done"
    PENDING = "pending"
    DRIFTED = "drifted"
    FAILED = "failed"
    MANUAL = "manual"
    STAGED = "staged"
    """Written under --root, or its host commands skipped there: the target host still
    has to receive the tree and run them. Not done, and not pending on this host."""
    UNKNOWN = "unknown"
    """The check could not run (e.g. a secret it needs is not available here)."""


class CheckResult(BaseModel):
    status: Status
    detail: str = Field(description="one line an operator can read")

    @classmethod
    def worst(cls, results: Sequence[CheckResult]) -> CheckResult:
        """Combine several checks of one step: the least-done one speaks for it."""
        order = [Status.FAILED, Status.DRIFTED, Status.PENDING, Status.UNKNOWN, Status.MANUAL,
                 Status.STAGED, Status.DONE]
        if not results:
            return cls(status=Status.DONE, detail="nothing to check")
        ranked = sorted(results, key=lambda r: order.index(r.status))
        worst = ranked[0]
        if worst.status in (Status.DONE, Status.STAGED):  # nothing wrong: say it all
            return cls(status=worst.status, detail="; ".join(r.detail for r in results))
        return worst


# ---------------------------------------------------------------- plan items


class _Item(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    description: str = ""


class FileWrite(_Item):
    """A file CloudRig writes at `path` (the final path on the host, never --root's)."""

    kind: Literal["file"] = "file"
    path: str
    content: str = Field(repr=False)
    mode: int = 0o644
    owner: str | None = None
    group: str | None = None
    secret: bool = Field(
        default=False, description="content is a secret: never shown, only its size"
    )
    dir_mode: int | None = Field(default=None, description="mode of a directory created for it")
    binary: bytes | None = Field(
        default=None, repr=False, exclude=True,
        description="bytes to write instead of `content` (e.g. an ISO image); never diffed")

    def payload(self) -> bytes:
        """The exact bytes written: `binary` when given, else `content` as UTF-8."""
        return self.binary if self.binary is not None else self.content.encode()


class Command(_Item):
    """A host command, as an argv list (never a shell string)."""

    kind: Literal["command"] = "command"
    argv: list[str]
    changes_host: bool = Field(default=True, description="skipped under --root and --dry-run")
    stdin_secret: str | None = Field(
        default=None, description="name of the secret written to the command's stdin"
    )
    pty_answers: list[tuple[str, str]] = Field(
        default_factory=list,
        description="(prompt regex, secret name) pairs: the secret is typed, once, when the "
                    "regex matches the command's terminal output (see tui.prompts)",
    )
    timeout: float = Field(default=120.0, description="seconds for the whole command; then "
                           "it and every process it started are killed")
    ok_returncodes: tuple[int, ...] = (0,)
    pty_replies: list[tuple[str, str]] = Field(
        default_factory=list,
        description="(prompt regex, literal text) pairs answered like pty_answers (in the "
                    "order the prompts appear): prompts that ask for a public value")
    pty_secret_input: str | None = Field(
        default=None,
        description="name of a secret typed on the command's terminal, without waiting for a "
                    "prompt, as soon as the command turns the terminal's echo off to read it: "
                    "for tools that print no prompt and refuse a stdin that is not a terminal "
                    "(`service-discover bootstrap-token --setup`)")
    sets: str | None = Field(
        default=None,
        description="the command prints `NAME=value`; an exported script keeps it in the "
                    "shell variable NAME, which later argv items may use as `${NAME}`")

    @field_validator("pty_answers", "pty_replies")
    @classmethod
    def _patterns_compile(cls, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for pattern, _answer in pairs:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"prompt pattern {pattern!r} is not a regular expression "
                                 f"({error}); for a literal prompt use prompt_forms()") from None
        return pairs

    @model_validator(mode="after")
    def _one_way_in(self) -> Command:
        if self.stdin_secret and self.on_terminal:
            raise ValueError("stdin_secret pipes a secret into a command without a terminal; "
                             "this command runs on one (pty_answers, pty_replies or "
                             "pty_secret_input): use pty_secret_input instead")
        return self

    @property
    def on_terminal(self) -> bool:
        """Runs on a pseudo-terminal (tui.prompts) rather than with pipes."""
        return bool(self.pty_answers or self.pty_replies or self.pty_secret_input)


def prompt_forms(*forms: str) -> str:
    """One prompt pattern for every wording of a question (a tool's old and new
    releases), each taken literally — so an upstream prompt can be pasted as printed —
    with any run of whitespace matching any other: `prompt_forms("Name of new provider:",
    "What is the name of your new provider? :")`."""
    if not forms or not all(form.split() for form in forms):
        raise ValueError("prompt_forms needs at least one non-blank prompt")
    return "|".join("(?:" + r"\s+".join(map(re.escape, form.split())) + ")" for form in forms)


class ApiCall(_Item):
    """A remote API call; `execute` performs it (bound by the step's plan)."""

    kind: Literal["api"] = "api"
    method: str
    url: str
    body: Any = Field(default=None, description="request body as shown (secrets masked)")
    changes_remote: bool = True
    execute: Callable[[], Any] | None = Field(default=None, exclude=True, repr=False)


class FileRemove(_Item):
    """A file CloudRig wrote and teardown removes (absent is fine) — only when the
    ownership record says CloudRig created it; a file it replaced is put back from its
    first backup instead, and one it has no record of is left, with a sentence."""

    kind: Literal["remove"] = "remove"
    path: str
    recorded_only: bool = Field(
        default=True,
        description="False for a file the runbook itself says to delete though CloudRig "
                    "did not write it (e.g. a key the connector regenerates)")


class FileRestore(_Item):
    """A file put back as it was before CloudRig's first write (`teardown --restore`):
    the oldest `NAME.cloudrig-*.bak` beside it; without one the file is left."""

    kind: Literal["restore"] = "restore"
    path: str


class Manual(_Item):
    """Something only the operator can do; shown, and confirmed by them."""

    kind: Literal["manual"] = "manual"
    text: str


PlanItem = Annotated[
    FileWrite | FileRemove | FileRestore | Command | ApiCall | Manual,
    Field(discriminator="kind")
]


# ---------------------------------------------------------------- ownership


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OwnedFile(BaseModel):
    """A file CloudRig wrote: whether it created it or replaced the operator's (then
    `backup`, the final path of the version from before CloudRig, is what teardown
    puts back). Recorded before the file changes, so a killed run cannot lose it."""

    path: str
    created: bool
    backup: str | None = None
    step: str | None = None
    at: datetime = Field(default_factory=_utcnow)


class OwnedObject(BaseModel):
    """A remote object CloudRig created (an ACL policy, a token's accessor, a KV key,
    a catalog registration…). `id` is None while it is being created: the run may have
    died before it learnt the id the server gave; the next run that finds an object
    with this `label` adopts it (`Context.adopt`)."""

    kind: str
    id: str | None
    label: str
    step: str | None = None
    at: datetime = Field(default_factory=_utcnow)


class Ownership(BaseModel):
    """What CloudRig created for one procedure on this host: teardown removes only
    that (DESIGN.md, "Safety rules"). Kept in the state directory; without it,
    `teardown --purge` refuses."""

    files: dict[str, OwnedFile] = {}
    objects: list[OwnedObject] = []

    def file(self, path: str) -> OwnedFile | None:
        return self.files.get(path)

    def find(self, kind: str, id: str | None = None, label: str | None = None
             ) -> OwnedObject | None:
        return next((o for o in self.objects if o.kind == kind
                     and (id is None or o.id == id) and (label is None or o.label == label)),
                    None)

    def ids(self, kind: str) -> list[str]:
        return [o.id for o in self.objects if o.kind == kind and o.id is not None]


# ---------------------------------------------------------------- events


class Event(BaseModel):
    """A progress event: the CLI prints it to stderr, the TUI shows it live."""

    step: str | None = None
    # "poll": one attempt of a wait, for a live line; not logged (the wait's changes are).
    # "staged": a step done under --root whose host commands were not run.
    kind: Literal["start", "done", "manual", "staged", "failed", "skipped", "info", "warning",
                  "item", "poll"] = "info"
    message: str
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


# ---------------------------------------------------------------- steps


ANY_HOST = "any"


class Step(Generic[A]):
    """One runbook stage. Subclasses override `plan`, and `apply`/`check`/`undo` when
    the generic behaviour (execute the plan; compare the plan's files) is not enough.
    Generic over the procedure's answers model (`class Policy(Step[CarbonioAnswers])`),
    so a step reads `ctx.answers` typed, without a cast."""

    id: str = ""
    title: str = ""
    summary: str = ""
    host: str = ANY_HOST
    """Which host the step runs on (a value of the procedure's host field), or "any".
    A step for another host is planned from the answers alone and exported as files
    plus a script instead of run (see `tui/export.py`)."""
    renders: tuple[str, ...] = ()
    """Templates (paths under templates/) the step renders: `Procedure` checks each is
    shipped, so a misspelt one fails when the procedure is built, not mid-apply."""

    def files(self, ctx: Context[A]) -> list[FileWrite]:
        """The files this step writes, known from the answers alone (no remote calls):
        what `cloudrig render` writes and what the generic check compares."""
        return []

    def plan(self, ctx: Context[A]) -> list[PlanItem]:
        """Everything apply will do; may make read-only remote calls to decide."""
        return list(self.files(ctx))

    def apply(self, ctx: Context[A]) -> None:
        ctx.execute(self.plan(ctx))

    def check(self, ctx: Context[A]) -> CheckResult:
        return ctx.check_files(self.files(ctx))

    def undo_plan(self, ctx: Context[A]) -> list[PlanItem]:
        """What teardown does for this step (executed in order); empty when the runbook
        has no removal or it is already gone, so a second teardown does nothing."""
        return []

    def undo_secrets(self, ctx: Context[A]) -> set[str]:
        """Secret fields teardown will need; by default those apply needs. A step whose
        undo only removes files (or only calls an API under --purge) says less, so a
        teardown does not ask for passwords it will not use."""
        return self.needs_secrets(ctx)

    def restorable(self, ctx: Context[A]) -> list[str]:
        """Files (final host paths) `teardown --restore` puts back as they were before
        CloudRig's first write: files that are the operator's, which teardown keeps."""
        return []

    def applies(self, answers: A) -> bool:
        """Whether the step is part of this run (e.g. the database step is optional)."""
        return True

    def needs_secrets(self, ctx: Context[A]) -> set[str]:
        """Secret fields apply will need; resolved (or refused) before anything changes."""
        return set()

    def provides_secrets(self, ctx: Context[A]) -> set[str]:
        """Secret fields this step can obtain itself (e.g. a bootstrap token)."""
        return set()


class Action(Generic[A]):
    """Something an operator runs now and then outside apply (e.g. rotate a token):
    shown before it runs (`plan`), confirmed (`confirmation`), then `execute`d with the
    same Context as steps. `cloudrig action PROC ACTION` runs it; the state records
    when it last ran."""

    id: str = ""
    title: str = ""
    help: str = ""

    def plan(self, ctx: Context[A]) -> list[PlanItem]:
        """What it will do, shown before it runs (and all --dry-run does)."""
        return []

    def confirmation(self, ctx: Context[A]) -> str:
        """The yes/no question asked before it runs."""
        return f"{self.title} now?"

    def needs_secrets(self, ctx: Context[A]) -> set[str]:
        """Secret fields it needs; resolved (or refused) before anything changes."""
        return set()

    def execute(self, ctx: Context[A]) -> None:
        ctx.execute(self.plan(ctx))


@dataclass(frozen=True)
class Page:
    """One wizard screen: a runbook stage and the answer fields it asks for."""

    title: str
    help: str
    fields: tuple[str, ...]
    when: Callable[[Mapping[str, Any]], bool] | None = None
    """Whether the page applies, given the answers typed so far (e.g. only in one
    mode); the wizard skips a page that does not. None: always."""
    probe: Callable[[Mapping[str, Any], SecretSource], str] | None = None
    """A read-only "test connection" with this page's answers (the others may not be
    typed yet) and secrets: returns one sentence saying what answered, or raises
    OperatorError saying what to fix. None: the page has nothing to test."""

    def applies(self, values: Mapping[str, Any]) -> bool:
        return self.when is None or bool(self.when(values))


C = TypeVar("C")


@dataclass(frozen=True)
class Remote(Generic[A, C]):
    """A remote service a procedure talks to, declared once: how its client is made,
    the secret it is made with, whether plan may read it, and how a call plan could not
    decide is shown. The Context makes one client per run from it (`Context.client`)
    and says whether plan may read it now (`Context.reads`), so no step re-writes that."""

    key: str
    """Names the run's one client (e.g. "consul"); unique within the procedure."""
    name: str
    """The service as an operator reads it in a preview: "Consul", "Keystone"."""
    secret: str
    """The secret answer field the client is made with."""
    client: Callable[[A, str], C]
    """Makes the client from the answers and the secret's value."""
    base_url: Callable[[A], str]
    """What a path is appended to for a previewed call's URL."""
    plan_reads: bool = True
    """Whether plan may read the remote (read-only calls) when the secret is at hand
    without asking; otherwise plan shows `placeholder` calls."""
    unread: str | None = None
    """What a placeholder says when the remote was not read (default: "<name> not read:
    no <secret> at hand")."""

    def url(self, answers: A, path: str) -> str:
        return self.base_url(answers) + path

    def not_read(self) -> str:
        return self.unread or f"{self.name} not read: no {self.secret} at hand"

    def placeholder(self, ctx: Context[A], method: str, path: str, what: str, *,
                    changes_remote: bool = True) -> ApiCall:
        """A call plan cannot decide without reading the remote: shown, never executed
        as is (apply plans again with the secret at hand)."""
        return ApiCall(method=method, url=self.url(ctx.answers, path),
                       changes_remote=changes_remote, description=f"{what} ({self.not_read()})")


@dataclass(frozen=True)
class CliVerb:
    """A command only one procedure has (`cloudrig metadata`), contributed through
    `Procedure.cli_verbs`: tui/cli.py adds it where the registry lists it (so `cloudrig
    --help` needs no procedure module) and imports the procedure only to run it."""

    name: str
    help: str
    """The one line `cloudrig --help` shows; tui/registry.py repeats it."""
    arguments: Callable[[ArgumentParser], None]
    """Adds the verb's options to its sub-parser."""
    run: Callable[[Namespace], int]
    """Runs it; returns the exit code (an OperatorError becomes its sentence)."""


@dataclass(frozen=True)
class Procedure(Generic[A]):
    """A runbook as data. Built, it checks its own invariants (`ProcedureInvalid`, every
    problem named): each answer field on exactly one page, unique step, action, remote
    and command ids, every template a step renders shipped, the host and export fields
    and each remote's secret are fields of the answers. `get_procedure` checks that its
    title, summary and commands are the ones tui/registry.py lists."""

    id: str
    title: str
    """Shown on home, in `cloudrig list` and in every header; tui/registry.py repeats it
    so `cloudrig list` needs no procedure module (checked when the registry loads it)."""
    summary: str
    """One line saying what the procedure does (as the registry's)."""
    runbook: str
    answers_model: type[A]
    pages: tuple[Page, ...]
    steps: tuple[Step[A], ...]
    host_field: str | None = None
    """The answer field that says which host this is; None: every step runs here."""
    export_field: str | None = None
    """The answer field with the directory (on this host) where steps for another host
    are exported; required when `host_field` is set."""
    actions: tuple[Action[A], ...] = ()
    """Operator actions beside the steps (`cloudrig action PROC`)."""
    remotes: tuple[Remote[A, Any], ...] = ()
    """The remote services its steps call, each declared once."""
    cli_verbs: tuple[CliVerb, ...] = ()
    """Commands only this procedure has (`cloudrig metadata`)."""

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ProcedureInvalid(self.id, "; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with the declaration, one sentence each (empty: nothing)."""
        fields = self.answers_model.model_fields
        model = self.answers_model.__name__
        problems = []
        on_pages: dict[str, list[str]] = {}
        for page in self.pages:
            for name in page.fields:
                on_pages.setdefault(name, []).append(page.title)
                if name not in fields:
                    problems.append(f"page {page.title!r} asks for {name!r}, which is not a "
                                    f"field of {model}")
        missing = [name for name in fields if name not in on_pages]
        if missing:
            problems.append(f"answer field(s) {', '.join(missing)} of {model} on no page "
                            "(every answer is asked on exactly one wizard page)")
        problems += [f"answer field {name!r} is on more than one page: "
                     + ", ".join(repr(title) for title in titles)
                     for name, titles in on_pages.items() if len(titles) > 1]
        for kind, ids in (("step", [s.id for s in self.steps]),
                          ("action", [a.id for a in self.actions]),
                          ("remote", [r.key for r in self.remotes]),
                          ("command", [v.name for v in self.cli_verbs])):
            problems += [f"{kind} id {id!r} is used {n} times (ids must be unique)"
                         for id, n in Counter(ids).items() if n > 1]
            problems += [f"a {kind} has no id" for id in ids if not id]
        rendered = [(step.id, name) for step in self.steps for name in step.renders]
        if rendered:
            shipped = data_dir("templates")
            problems += [f"step {id!r} renders templates/{name}, which is not shipped"
                         for id, name in rendered if not (shipped / name).is_file()]
        for role, named in (("host_field", self.host_field),
                            ("export_field", self.export_field)):
            if named is not None and named not in fields:
                problems.append(f"{role} {named!r} is not a field of {model}")
        if self.host_field is not None and self.export_field is None:
            problems.append("host_field is set but export_field is not (steps for another "
                            "host are exported there)")
        for remote in self.remotes:
            field = fields.get(remote.secret)
            if field is None or SecretStr not in (field.annotation,
                                                  *getattr(field.annotation, "__args__", ())):
                problems.append(f"remote {remote.key!r} is made with {remote.secret!r}, "
                                f"which is not a secret field (SecretStr) of {model}")
        return problems

    def cli_verb(self, name: str) -> CliVerb:
        return next(verb for verb in self.cli_verbs if verb.name == name)

    def runs_elsewhere(self, step: Step, answers: BaseModel) -> str | None:
        """The host `step` must run on when that is not this one, else None."""
        if self.host_field is None or step.host == ANY_HOST:
            return None
        here = getattr(answers, self.host_field)
        return None if step.host == here else step.host

    def export_dir(self, answers: BaseModel) -> str:
        if self.export_field is None:
            raise ValueError(f"procedure {self.id} has host roles but no export_field")
        return str(getattr(answers, self.export_field))

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        known = ", ".join(s.id for s in self.steps)
        raise UsageError(f"{self.id} has no step {step_id!r}; its steps are: {known}")

    def action(self, action_id: str) -> Action:
        for action in self.actions:
            if action.id == action_id:
                return action
        known = ", ".join(a.id for a in self.actions) or "none"
        raise UsageError(f"{self.id} has no action {action_id!r}; its actions are: {known} "
                         f"(`cloudrig action {self.id}` lists them)")


