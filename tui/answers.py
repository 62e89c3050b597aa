"""Answers: declaring fields, loading answers files, explaining what is wrong.

Answer fields carry a title, help taken from the runbook, a default and an example.
Every problem is reported as field + problem + a good example, on load from a file
and as a value is typed in the wizard. Secrets never come from answers files.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import textwrap
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic import Field as _Field
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUndefined

from tui.errors import UsageError


def ask(
    default: Any = PydanticUndefined,
    *,
    title: str,
    help: str,
    example: Any,
    secret: bool = False,
    multiline: bool = False,
    **kwargs: Any,
) -> Any:
    """Declare an answer field: its title and help are what the wizard shows.
    MULTILINE: a text edited as lines (a document, e.g. cloud-config user data)."""
    extra: dict[str, Any] = {"secret": True} if secret else {}
    if multiline:
        extra["multiline"] = True
    if secret and default is PydanticUndefined:
        default = None
    return _Field(
        default,
        title=title,
        description=help,
        examples=[example],
        json_schema_extra=extra,
        **kwargs,
    )


# ---------------------------------------------------------------- validators

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_hostname(value: str) -> bool:
    """RFC 1123 host name (letters, digits, hyphens; dot-separated labels)."""
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(p) for p in name.split("."))


def check_host(value: str) -> str:
    value = value.strip()
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not is_hostname(value):
        raise ValueError(f"{value!r} is not a host name or IP address")
    return value


def check_abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path (it must start with /)")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("a path cannot contain line breaks or control characters")
    if any(part == ".." for part in value.split("/")):
        raise ValueError(f"{value!r} contains '..'; give the real directory")
    long = next((p for p in value.split("/") if len(p.encode("utf-8", "surrogatepass")) > 255),
                None)
    if long is not None:  # NAME_MAX: no file system takes a longer name
        raise ValueError(f"the name {long[:20]}… in the path is "
                         f"{len(long.encode('utf-8', 'surrogatepass'))} bytes; a file system "
                         "allows at most 255 per name: shorten it")
    return value.rstrip("/") or "/"


def check_name(pattern: str, what: str) -> typing.Callable[[str], str]:
    compiled = re.compile(pattern)

    def _check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return _check


# Types procedures declare fields with; each carries its validator.
Host = Annotated[str, AfterValidator(check_host)]
AbsPath = Annotated[str, AfterValidator(check_abs_path)]


def matches(pattern: str, what: str) -> AfterValidator:
    """The validator of a name type: the whole value must match `pattern`, else
    "'value' is not a valid <what>". A name type is an alias type checkers see as `str`:
    `UnixName = Annotated[str, matches(r"[a-z_][a-z0-9_-]{0,30}", "user name")]`."""
    return AfterValidator(check_name(pattern, what))


class Answers(BaseModel):
    """Base of every procedure's answers: unknown keys are errors, and an empty
    value of an optional field (a blank wizard input, `key: ""`) means "not given"."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if value == "" and field is not None and field.default is None:
            return None
        return value


# ---------------------------------------------------------------- field specs


class FieldSpec(BaseModel):
    """How a front asks for one answer field (derived from the model, never typed twice)."""

    name: str
    title: str
    help: str
    kind: Literal["text", "int", "bool", "choice", "list", "mapping", "secret"]
    required: bool
    default: Any = None
    example: Any = None
    choices: list[str] = []
    multiline: bool = False


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def is_secret(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))


def field_spec(model: type[BaseModel], name: str) -> FieldSpec:
    info = model.model_fields[name]
    annotation, _optional = _unwrap_optional(info.annotation)
    choices: list[str] = []
    if is_secret(info) or annotation is SecretStr:
        kind = "secret"
    elif annotation is bool:
        kind = "bool"
    elif annotation is int:
        kind = "int"
    elif typing.get_origin(annotation) is Literal:
        kind, choices = "choice", [str(a) for a in typing.get_args(annotation)]
    elif typing.get_origin(annotation) is list:
        kind = "list"
    elif typing.get_origin(annotation) is dict or annotation is dict:
        kind = "mapping"
    else:
        kind = "text"
    default = None if info.default is PydanticUndefined else info.default
    return FieldSpec(
        name=name,
        title=info.title or name,
        help=info.description or "",
        kind=kind,
        required=info.is_required(),
        default=default,
        example=(info.examples or [None])[0],
        choices=choices,
        multiline=isinstance(info.json_schema_extra, dict)
        and bool(info.json_schema_extra.get("multiline")),
    )


def secret_fields(model: type[BaseModel]) -> list[str]:
    return [n for n, info in model.model_fields.items() if is_secret(info)]


# ---------------------------------------------------------------- problems


class FieldProblem(BaseModel):
    field: str
    problem: str
    example: Any = None
    # Where the offending key is in the answers file (1-based), when it came from one.
    line: int | None = None
    column: int | None = None
    # The closest known answer name, for a key that is not one.
    suggestion: str | None = None

    def sentence(self) -> str:
        text = f"{self.field}: {self.problem}"
        if self.suggestion:
            text += f"; did you mean `{self.suggestion}`?"
        if self.example is not None:
            # The example is the whole field's value, so it is keyed by the field's
            # name, not by the position of the bad item (`features.1`).
            name = self.field.split(".")[0]
            text += f" (for example: {name}: {_yaml_scalar(self.example)})"
        return text

    def located(self) -> str:
        """The sentence after the key's place in the file: `line 4, column 1: …`."""
        if self.line is None:
            return self.sentence()
        column = f", column {self.column}" if self.column is not None else ""
        return f"line {self.line}{column}: {self.sentence()}"

    def as_json(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "message": self.located()}


class AnswersError(UsageError):
    """Invalid answers: one line per field, each with a good example (and, from a
    file, the line and column of the offending key)."""

    def __init__(self, problems: list[FieldProblem], source: str = "answers",
                 sentence: str | None = None) -> None:
        self.problems = problems
        self.source = source
        if sentence is None:
            lines = [f"{source}: answers are not valid:"]
            sentence = "\n".join(lines + [f"  {p.located()}" for p in problems])
        super().__init__(sentence)

    def as_json(self) -> dict[str, Any]:
        """What `--json` commands print on stdout: the same messages, as data."""
        return {"error": "invalid answers", "source": self.source, "exit_code": self.exit_code,
                "message": self.sentence, "problems": [p.as_json() for p in self.problems]}


def inline_yaml(value: Any) -> str:
    """A value on one line as YAML writes it: `prod`, `[a, b]`, `{team: platform}`."""
    return _yaml_scalar(value)


def _yaml_scalar(value: Any) -> str:
    # A string with line breaks is double-quoted ("a\nb") so it stays on one line,
    # inside an error sentence or a commented example alike.
    style = '"' if isinstance(value, str) and "\n" in value else None
    dumped = yaml.safe_dump(value, default_flow_style=True, width=1000, default_style=style)
    return dumped.removesuffix("\n...\n").strip()


NUMBER_TYPES = ("int_type", "float_type", "int_from_float")


def _problem_text(error: ErrorDetails, raw: str | None = None) -> str:
    """Pydantic's message for one error, in the operator's words. RAW is the value as
    written in the answers file (`yes`), when known."""
    kind = error.get("type", "")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known answer"
    value = error.get("input")
    written = raw if raw is not None else repr(value)
    if kind in NUMBER_TYPES and isinstance(value, bool):
        # YAML 1.1 (PyYAML) reads yes/no/on/off/true/false as booleans: `port: yes` is
        # not port 1.
        return (f"must be a number, not a boolean (got {written}, which YAML reads as "
                f"{str(value).lower()})")
    if kind in NUMBER_TYPES and isinstance(value, str):
        return f"must be a number, not text (got {written}); write it without quotes"
    if kind == "bool_type" and isinstance(value, str):
        return f"must be true or false, not text (got {written}); write it without quotes"
    if kind == "bool_type" and isinstance(value, int | float):
        return f"must be true or false, not a number (got {written})"
    message = str(error.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ")
    if "input" in error and kind not in ("value_error",) and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return message


def problems_from(model: type[BaseModel], exc: ValidationError,
                  where: Positions | None = None) -> list[FieldProblem]:
    """One problem per pydantic error; with WHERE (an answers file's key positions)
    each names the line and column of its key, and an unknown key the closest known one."""
    problems: list[FieldProblem] = []
    for error in exc.errors():
        path = tuple(error.get("loc", ()))
        loc = [str(p) for p in path]
        name = loc[0] if loc else "answers"
        info = model.model_fields.get(name)
        example = (info.examples or [None])[0] if info else None
        field = ".".join(loc) if loc else "answers"
        mark, raw = where.find(path) if where else (None, None)
        suggestion = None
        problem = _problem_text(error, raw)
        if error.get("type") == "extra_forbidden" and len(loc) == 1:
            suggestion = closest_answer(model, name)
            if suggestion in secret_fields(model):
                problem += (f" (`{suggestion}` is a secret: it goes in the secret store or "
                            f"CLOUDRIG_SECRET_{suggestion.upper()}, never in this file)")
                suggestion = None
        problems.append(FieldProblem(
            field=field, problem=problem, example=example,
            line=mark[0] if mark else None, column=mark[1] if mark else None,
            suggestion=suggestion))
    # In the file's order (what is not in the file, e.g. a required key, comes last).
    problems.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
    return problems


def closest_answer(model: type[BaseModel], key: str) -> str | None:
    """The known answer name closest to KEY (a typo's intended key), if one is close."""
    found = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    if not found:
        lowered = {name.lower(): name for name in model.model_fields}
        found = [lowered[key.lower()]] if key.lower() in lowered else []
    return found[0] if found else None


def validate(model: type[BaseModel], data: dict[str, Any], source: str = "answers",
             *, strict: bool = False, where: Positions | None = None) -> Any:
    """Validate answers (never secrets) and raise AnswersError listing every problem.

    STRICT (answers files): numbers and booleans must be written as such: no `true` or
    `yes` as a port, no "5432" in quotes as a number, no 1 as a boolean. The wizard
    validates its typed text without it (its text boxes hold strings)."""
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise AnswersError(problems_from(model, exc, where), source) from None


def field_problems(model: type[BaseModel], data: dict[str, Any], name: str) -> list[str]:
    """Problems with field `name` given the other values typed so far (wizard use).

    A problem inside a mapping or list names where (`PRD-1.grant: is required`,
    `item 2: ...`): the field's box shows many values and the operator must find the
    bad one."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [
            _inner_where(err) + _problem_text(err)
            for err in exc.errors()
            if err.get("loc") and str(err["loc"][0]) == name
        ]
    return []


def _inner_where(error: ErrorDetails) -> str:
    inner = [f"item {part + 1}" if isinstance(part, int) else str(part)
             for part in error["loc"][1:]]
    return f"{'.'.join(inner)}: " if inner else ""


def mapping_from_text(text: str) -> Any:
    """A mapping field's value from the YAML typed for it (`key: value` per line).

    Text that is not a YAML mapping is returned unchanged, so the model decides: a
    field may accept its own text form (cloudcasa's `key=value` tags), else pydantic
    says it wants a dictionary. Raises ValueError (one sentence) on broken YAML."""
    if not text.strip():
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where, problem = yaml_problem(exc, column=False)
        raise ValueError(f"is not valid YAML{where} ({problem or 'it cannot be read'}); "
                         "write one `key: value` "
                         "per line, nested values indented under their key") from None
    return value if isinstance(value, dict) else text


def yaml_problem(exc: yaml.YAMLError, column: bool = True) -> tuple[str, str]:
    """(" at line L[, column C]", PyYAML's problem) of a parse error, each possibly ""."""
    mark = getattr(exc, "problem_mark", None)
    where = ""
    if mark:
        where = f" at line {mark.line + 1}" + (f", column {mark.column + 1}" if column else "")
    return where, getattr(exc, "problem", None) or ""


def mapping_text(value: Any) -> str:
    """A mapping shown for editing: block YAML, keys in their own order."""
    if isinstance(value, str):
        return value
    if not value:
        return ""
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=False,
                          allow_unicode=True, width=1000)


# ---------------------------------------------------------------- files


def load_file(model: type[BaseModel], path: Path) -> Any:
    """Read and validate an answers file; secrets found in it are refused."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"answers file {source} does not exist; create one with "
                         f"`cloudrig init PROC -o {source}`") from None
    except OSError as exc:
        raise UsageError(f"cannot read answers file {source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source} is not UTF-8 text (byte {exc.start + 1} is "
                         f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8, "
                         "e.g. `iconv -f latin1 -t utf-8`") from None
    try:
        data, where = read_yaml(text)
    except DuplicateKey as dup:
        twice = FieldProblem(
            field=dup.path, line=dup.line, column=dup.column,
            problem=f"is given twice, at line {dup.first} and again at line {dup.line}; "
                    "keep one of them (YAML would silently keep the last)")
        raise AnswersError([twice], source,
                           f"{source}: line {dup.line}, column {dup.column}: "
                           f"{twice.sentence()}") from None
    except yaml.YAMLError as exc:
        at, problem = yaml_problem(exc)
        mark = getattr(exc, "problem_mark", None)
        sentence = f"{source} is not valid YAML{at}: {problem or 'invalid YAML'}"
        raise AnswersError([FieldProblem(
            field="answers", problem=f"is not valid YAML: {problem or 'invalid YAML'}",
            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None,
        )], source, sentence) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        sentence = (f"{source} must be a YAML mapping of answer names to values, "
                    f"for example `external_port: 5432`")
        raise AnswersError([FieldProblem(field="answers", problem=sentence, line=1,
                                         column=1)], source, sentence)
    return from_mapping(model, data, source, strict=True, where=where)


class Positions:
    """Where each key of a parsed answers file is: (line, column), 1-based, and the
    value as written (`yes`, `"5432"`), found by the path pydantic reports an error at."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def find(self, path: tuple[Any, ...]) -> tuple[tuple[int, int] | None, str | None]:
        """(position of the deepest key or item on PATH, raw text of the value there)."""
        node, mark, raw = self.root, None, None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                # The last: PyYAML puts `<<` merged pairs first, and the explicit key wins.
                match = next(((k, v) for k, v in reversed(node.value)
                              if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
                if match is None:
                    return mark, None
                key, node = match
                mark = (key.start_mark.line + 1, key.start_mark.column + 1)
            elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
                  and 0 <= part < len(node.value)):
                node = node.value[part]
                mark = (node.start_mark.line + 1, node.start_mark.column + 1)
            else:
                return mark, None
        if isinstance(node, yaml.ScalarNode) and node.style in (None, "'", '"'):
            raw = f"{node.style or ''}{node.value}{node.style or ''}"
        return mark, raw


class DuplicateKey(yaml.YAMLError):
    """A mapping that gives one key twice (PyYAML would keep the last one silently)."""

    def __init__(self, path: str, first: int, line: int, column: int) -> None:
        super().__init__(f"{path} at line {first} and line {line}")
        self.path, self.first, self.line, self.column = path, first, line, column


def read_yaml(text: str) -> tuple[Any, Positions]:
    """yaml.safe_load, refusing duplicate keys, with the position of every key.

    The document is composed into nodes first (SafeLoader, so no Python objects), each
    mapping is checked for a key given twice, then the same nodes are constructed."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, Positions(None)
        _no_duplicates(loader, root, (), set())
        return loader.construct_document(root), Positions(root)
    finally:
        loader.dispose()


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.Node, path: tuple[str, ...],
                   seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias met again (or a recursive anchor)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _no_duplicates(loader, item, (*path, str(index + 1)), seen_nodes)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
            _no_duplicates(loader, value_node, path, seen_nodes)
            continue
        key = loader.construct_object(key_node, deep=True)
        name = ".".join((*path, str(key)))
        try:
            first = lines.get(key)
        except TypeError:  # an unhashable key: construction refuses it with its own words
            continue
        if first is not None:
            raise DuplicateKey(name, first, key_node.start_mark.line + 1,
                               key_node.start_mark.column + 1)
        lines[key] = key_node.start_mark.line + 1
        _no_duplicates(loader, value_node, (*path, str(key)), seen_nodes)


def from_mapping(model: type[BaseModel], data: dict[str, Any], source: str, *,
                 strict: bool = False, where: Positions | None = None) -> Any:
    secrets = [key for key in secret_fields(model) if data.get(key) not in (None, "")]
    if secrets:
        names = ", ".join(secrets)
        envs = ", ".join(f"CLOUDRIG_SECRET_{k.upper()}" for k in secrets)
        lines = [mark[0] for mark, _ in (where.find((k,)) for k in secrets) if mark] \
            if where else []
        at = f" (line {', '.join(map(str, lines))})" if lines else ""
        raise UsageError(
            f"{source} contains secret(s) {names}{at}; secrets never go in answers files. "
            f"Remove them and use `cloudrig secrets set KEY` or the environment ({envs})."
        )
    # An empty value (`db_name:`) means "not answered": the error then says required.
    data = {k: v for k, v in data.items() if k not in secret_fields(model) and v is not None}
    return validate(model, data, source, strict=strict, where=where)


def public_answers(answers: BaseModel) -> dict[str, Any]:
    """The answers as stored and shown: JSON-safe, secrets left out."""
    return answers.model_dump(mode="json", exclude=set(secret_fields(type(answers))))


def example_yaml(model: type[BaseModel], procedure_id: str, title: str) -> str:
    """A commented example answers file: every field with its help and a value."""
    lines = [
        f"# CloudRig answers for `{procedure_id}`: {title}",
        f"# Check with `cloudrig plan {procedure_id} --answers FILE`.",
        "# Secrets are not written here: set them with `cloudrig secrets set KEY`",
        "# or the environment variable CLOUDRIG_SECRET_<KEY>.",
        "",
    ]
    for name in model.model_fields:
        spec = field_spec(model, name)
        lines.append(f"# {spec.title}")
        for help_line in _wrap(spec.help, 76):
            lines.append(f"#   {help_line}")
        if spec.kind == "secret":
            lines.append(f"#   secret: CLOUDRIG_SECRET_{name.upper()} or "
                         f"`cloudrig secrets set {name}`")
            lines.append("")
            continue
        if spec.required:
            lines.append(f"{name}:   # required, for example: {_yaml_scalar(spec.example)}")
            lines.append("")
            continue
        value = spec.default
        if spec.default is None:
            lines.append("#   (optional)")
            lines.append(f"# {name}: {_yaml_scalar(spec.example)}")
            lines.append("")
            continue
        dumped = yaml.safe_dump({name: value}, default_flow_style=False, width=1000,
                                allow_unicode=True, sort_keys=False)
        lines.extend(dumped.rstrip("\n").split("\n"))
        lines.append("")
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or []


def check_secret(model: type[BaseModel], name: str, value: str, source: str) -> None:
    """Run the field's validators on a secret resolved from the environment or the
    store (secrets never pass through `validate`, which reads answers files)."""
    try:
        model.__pydantic_validator__.validate_assignment(model.model_construct(), name, value)
    except ValidationError as exc:
        problems = [FieldProblem(field=name, problem=_problem_text(err),
                                 example=(model.model_fields[name].examples or [None])[0])
                    for err in exc.errors()]
        raise AnswersError(problems, source) from None
