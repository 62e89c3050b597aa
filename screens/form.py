"""The wizard's answers while they are being typed, and their validation.

Holds values as the model will receive them (so pydantic's own messages explain
problems) and the secrets typed, which stay in memory. Free of Textual: widgets
hand raw values in and read display values out.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from tui.answers import (
    AnswersError,
    FieldProblem,
    FieldSpec,
    field_problems,
    field_spec,
    mapping_from_text,
    mapping_text,
    public_answers,
    validate,
)
from tui.engine import missing_secrets
from tui.model import Page, Procedure


@dataclass
class FormState:
    procedure: Procedure
    values: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    specs: dict[str, FieldSpec] = field(default_factory=dict)
    # Text that could not even be parsed (broken YAML): field -> the sentence saying why.
    unreadable: dict[str, str] = field(default_factory=dict)
    # Problems an answers file had (`cloudrig wizard PROC --answers FILE`), per field,
    # shown on their fields until the value is changed; and those of no field.
    given_problems: dict[str, list[str]] = field(default_factory=dict)
    file_problems: list[str] = field(default_factory=list)
    # Whether a secret can be had without typing it (environment, store): set by the
    # screens, which own the secret sources.
    secret_available: Callable[[str], bool] = lambda name: False
    started_with: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        procedure: Procedure,
        given: BaseModel | None = None,
        saved: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
        raw: tuple[dict[str, Any], list[FieldProblem]] | None = None,
    ) -> FormState:
        """Prefill from answers given on the command line (valid, or RAW values with
        their problems), else the saved (or drafted) answers, else the defaults."""
        model = procedure.answers_model
        specs = {name: field_spec(model, name) for name in model.model_fields}
        if given is not None:
            known = public_answers(given)
        elif raw is not None:
            known = dict(raw[0])
        else:
            known = dict(saved or {})
        values: dict[str, Any] = {}
        for name, spec in specs.items():
            if spec.kind == "secret":
                continue
            if name in known and known[name] is not None:
                values[name] = known[name]
            elif spec.default is not None:
                values[name] = spec.default
        form = cls(procedure, values, dict(secrets or {}), specs)
        if raw is not None:
            for problem in raw[1]:
                name = problem.field.split(".")[0]
                if name in specs and any(name in page.fields for page in procedure.pages):
                    form.given_problems.setdefault(name, []).append(
                        _inner(problem.field) + problem.problem)
                else:
                    form.file_problems.append(problem.sentence())
        form.started_with = dict(values)
        return form

    @property
    def model(self) -> type[BaseModel]:
        return self.procedure.answers_model

    @property
    def dirty(self) -> bool:
        """Whether anything was typed since the wizard opened (a secret counts)."""
        return self.values != self.started_with or bool(self.secrets)

    # ------------------------------------------------------------ pages

    def pages(self) -> list[int]:
        """The indexes of the pages that apply to the answers typed so far."""
        return [i for i, page in enumerate(self.procedure.pages) if page.applies(self.values)]

    def next_page(self, index: int) -> int | None:
        return next((i for i in self.pages() if i > index), None)

    def page_of(self, name: str) -> int | None:
        return next((i for i, page in enumerate(self.procedure.pages) if name in page.fields),
                    None)

    def first_problem_page(self) -> int:
        """The first page with a problem from the answers file (0 when none)."""
        pages = [self.page_of(name) for name in self.given_problems]
        return min((p for p in pages if p is not None), default=0)

    # ------------------------------------------------------------ values

    def set(self, name: str, raw: Any) -> None:
        """Record a widget's value, converted to what the model expects."""
        kind = self.specs[name].kind
        if kind == "secret":
            if raw:
                self.secrets[name] = str(raw)
            else:
                self.secrets.pop(name, None)
            return
        self.unreadable.pop(name, None)
        value: Any = raw
        if kind == "mapping":
            if isinstance(raw, dict):
                value = raw or None
            else:
                try:
                    value = mapping_from_text(str(raw or ""))
                except ValueError as exc:
                    self.unreadable[name] = str(exc)
                    value = str(raw)  # kept as typed, so the page shows it again
        elif kind == "bool":
            value = bool(raw)
        elif kind == "list":
            lines = raw if isinstance(raw, list) else str(raw).splitlines()
            value = [str(line).strip() for line in lines if str(line).strip()]
        elif kind == "int" and raw not in (None, ""):
            try:
                value = int(str(raw))
            except ValueError:
                value = str(raw)  # pydantic explains what is wrong with it
        if self.values.get(name) != value:
            self.given_problems.pop(name, None)  # changed: the file's problem is gone
        if value is None or value == "":
            self.values.pop(name, None)  # not answered: required, or the default
        else:
            self.values[name] = value

    def display(self, name: str) -> Any:
        """The value a widget starts with: str, bool, list, dict, or None for "nothing
        chosen"."""
        kind = self.specs[name].kind
        if kind == "secret":
            return self.secrets.get(name, "")
        value = self.values.get(name)
        if kind == "bool":
            return bool(value)
        if kind == "choice":
            return None if value is None else str(value)
        if kind == "list":
            return [str(v) for v in value or []] if isinstance(value, list) else value
        if kind == "mapping":
            return value if isinstance(value, dict) else mapping_text(value)
        return "" if value is None else str(value)

    # ------------------------------------------------------------ problems

    def problems(self, name: str) -> list[str]:
        if name in self.given_problems:
            return self.given_problems[name]
        if self.specs[name].kind == "secret":
            return self.secret_problems(name)
        if name in self.unreadable:
            return [self.unreadable[name]]
        return field_problems(self.model, self.values, name)

    def secret_problems(self, name: str) -> list[str]:
        """A secret apply will need, that is neither typed nor to be had elsewhere, is
        required here: the preview must not look clean and apply then stop at once."""
        if name in self.secrets or self.secret_available(name):
            return []
        if name not in self.needed_secrets():
            return []
        return ["is required: apply needs it"]

    def needed_secrets(self) -> builtins.set[str]:  # `set` here is FormState.set
        """The secrets apply will need with the answers typed so far (each step asked
        with what is known; a step that cannot tell yet is not counted)."""
        try:
            answers: BaseModel = validate(self.model, self.values, "wizard")
        except AnswersError:
            answers = self.model.model_construct(**self.values)
        source = _Absent(self.secret_available, self.secrets)
        try:
            return set(missing_secrets(self.procedure, answers, source))
        except Exception:  # an answer a step needs is not typed yet: ask step by step
            pass
        needed: set[str] = set()
        for step in self.procedure.steps:
            try:
                if step.applies(answers):
                    needed |= set(missing_secrets(self.procedure, answers, source, [step]))
            except Exception:  # this step cannot tell yet
                continue
        return needed

    def page_problems(self, page: Page) -> dict[str, list[str]]:
        found = {name: self.problems(name) for name in page.fields}
        return {name: problems for name, problems in found.items() if problems}

    def finish(self) -> BaseModel:
        """The validated answers; raises AnswersError naming each field."""
        if self.unreadable:
            raise AnswersError([FieldProblem(field=name, problem=problem,
                                             example=self.specs[name].example)
                                for name, problem in self.unreadable.items()], "wizard")
        return validate(self.model, self.values, "wizard")


class _Absent:
    """A secret supply (tui.secrets.SecretSupply) that only says which secrets are at
    hand (typed or elsewhere) and gives no value: asking what apply will need must not
    reach a remote with a secret or prompt on the TUI's terminal."""

    def __init__(self, available: Callable[[str], bool], typed: dict[str, str]) -> None:
        self._available = available
        self._typed = typed
        self._kept: set[str] = set()

    def available(self, name: str) -> bool:
        return name in self._typed or name in self._kept or self._available(name)

    def get(self, name: str) -> str:
        raise KeyError(name)

    def remember(self, name: str, value: str) -> str:
        """A secret a step would obtain (only an apply does): at hand from now on for
        this question, its value kept nowhere."""
        self._kept.add(name)
        return "nowhere (the wizard only asks what apply will need)"


def _inner(where: str) -> str:
    parts = where.split(".")[1:]
    return f"{'.'.join(parts)}: " if parts else ""


def page_for_problem(procedure: Procedure, values: dict[str, Any], message: str,
                     fields: list[str] | None = None) -> int:
    """The wizard page to fix a problem on: the page of the answer the message names
    (a URL or host that did not answer, the longest such value), else of the first of
    FIELDS (what the failing step uses), else the first page."""
    best: tuple[int, int] | None = None
    for index, page in enumerate(procedure.pages):
        for name in page.fields:
            value = values.get(name)
            if (isinstance(value, str) and len(value) >= 4 and _mentioned(value, message)
                    and (best is None or len(value) > best[1])):
                best = (index, len(value))
    if best is not None:
        return best[0]
    for name in fields or []:
        for index, page in enumerate(procedure.pages):
            if name in page.fields:
                return index
    return 0


def _mentioned(value: str, message: str) -> bool:
    """Whether MESSAGE names VALUE, a URL counted by its scheme, host and port."""
    if value in message:
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and f"{parts.scheme}://{parts.netloc}" in message


def operator_text(text: str, model: type[BaseModel], own: str | None = None) -> str:
    """Help text as an operator reads it: another answer named by its answers-file key
    (`consul_url`, `<config_dir>`) is named by its title instead (‹Consul HTTP API›);
    the field's own key may stay (it is often the product's own setting name). Only
    keys with an underscore: a one-word key is an ordinary word in a sentence."""
    titles = {name: info.title for name, info in model.model_fields.items()
              if "_" in name and name != own and info.title}
    if not titles:
        return text
    keys = "|".join(map(re.escape, sorted(titles, key=len, reverse=True)))
    pattern = re.compile(rf"<({keys})>|(?<![\w.-])({keys})(?![\w-])")
    return pattern.sub(lambda m: f"‹{titles[m.group(1) or m.group(2)]}›", text)
