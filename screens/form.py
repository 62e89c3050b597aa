"""The wizard's answers while they are being typed, and their validation.

Holds values as the model will receive them (so pydantic's own messages explain
problems) and the secrets typed, which stay in memory. Free of Textual: widgets
hand raw values in and read display values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
from tui.procedure import Page, Procedure


@dataclass
class FormState:
    procedure: Procedure
    values: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    specs: dict[str, FieldSpec] = field(default_factory=dict)
    # Text that could not even be parsed (broken YAML): field -> the sentence saying why.
    unreadable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        procedure: Procedure,
        given: BaseModel | None = None,
        saved: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> FormState:
        """Prefill from answers given on the command line, else the last saved answers,
        else the fields' defaults."""
        model = procedure.answers_model
        specs = {name: field_spec(model, name) for name in model.model_fields}
        known = public_answers(given) if given is not None else dict(saved or {})
        values: dict[str, Any] = {}
        for name, spec in specs.items():
            if spec.kind == "secret":
                continue
            if name in known and known[name] is not None:
                values[name] = known[name]
            elif spec.default is not None:
                values[name] = spec.default
        return cls(procedure, values, dict(secrets or {}), specs)

    @property
    def model(self) -> type[BaseModel]:
        return self.procedure.answers_model

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
            try:
                value = mapping_from_text(str(raw or ""))
            except ValueError as exc:
                self.unreadable[name] = str(exc)
                value = str(raw)  # kept as typed, so the page shows it again
        elif kind == "bool":
            value = bool(raw)
        elif kind == "list":
            value = [line.strip() for line in str(raw).splitlines() if line.strip()]
        elif kind == "int" and raw not in (None, ""):
            try:
                value = int(str(raw))
            except ValueError:
                value = str(raw)  # pydantic explains what is wrong with it
        if value is None or value == "":
            self.values.pop(name, None)  # not answered: required, or the default
        else:
            self.values[name] = value

    def display(self, name: str) -> Any:
        """The value a widget starts with: str, bool, or None for "nothing chosen"."""
        kind = self.specs[name].kind
        if kind == "secret":
            return self.secrets.get(name, "")
        value = self.values.get(name)
        if kind == "bool":
            return bool(value)
        if kind == "choice":
            return None if value is None else str(value)
        if kind == "list":
            return "\n".join(str(v) for v in value or [])
        if kind == "mapping":
            return mapping_text(value)
        return "" if value is None else str(value)

    # ------------------------------------------------------------ problems

    def problems(self, name: str) -> list[str]:
        if self.specs[name].kind == "secret":
            return []  # any secret is acceptable here; the engine says when one is missing
        if name in self.unreadable:
            return [self.unreadable[name]]
        return field_problems(self.model, self.values, name)

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
