"""Jinja rendering with filters that quote a value for the format it enters.

Values reach JSON, YAML, HCL and systemd files only through these filters, so any
string (quotes, backslashes, newlines, `${`, `{{`, `%`, unicode) round-trips.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jinja2
import yaml

from tui.resources import data_dir


def to_json(value: Any, indent: int | None = None) -> str:
    """A JSON literal; non-ASCII is kept as is (files are UTF-8)."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


def to_yaml(value: Any) -> str:
    """A YAML flow literal (strings double-quoted) for one value on one line."""
    text = yaml.safe_dump(
        value, default_flow_style=True, default_style='"', width=float("inf"), allow_unicode=True
    )
    return text.removesuffix("\n...\n").rstrip("\n")


_HCL_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def to_yaml_block(value: Any) -> str:
    """A block-style YAML document for a whole mapping (e.g. a dict copied from another
    YAML file), emitted by PyYAML so every string is quoted as YAML needs."""
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=False,
                          allow_unicode=True, width=float("inf"))


def to_hcl(value: Any) -> str:
    """An HCL literal. `$` and `%` are written as \\u escapes: that is literal text in
    both HCL1 (what `consul config write` parses) and HCL2 (where `${`/`%{` would
    otherwise start a template), so no value can become an interpolation."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_hcl(v) for v in value) + "]"
    out = []
    for ch in str(value):
        if ch in _HCL_ESCAPES:
            out.append(_HCL_ESCAPES[ch])
        elif ch in "$%" or _is_control(ch):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029)


_SYSTEMD_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _systemd_quote(text: str) -> str:
    if "\x00" in text:
        raise ValueError("a NUL character cannot appear in a systemd argument or variable")
    out = []
    for ch in text:
        if ch in _SYSTEMD_ESCAPES:
            out.append(_SYSTEMD_ESCAPES[ch])
        elif ch == "%":
            out.append("%%")  # specifier expansion (systemd.unit(5))
        elif _is_control(ch):
            # systemd decodes \xhh as one raw byte, so only ASCII may use it; a C1
            # control (U+0080..U+009F) must be \uXXXX to come back as that character.
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def systemd_arg(value: Any) -> str:
    """One ExecStart= argument: double-quoted with C escapes, `%` doubled for
    specifiers and `$` doubled against environment expansion (systemd.service(5))."""
    return _systemd_quote(str(value)).replace("$", "$$")


def systemd_env(name: str, value: Any) -> str:
    """One quoted Environment= assignment, `"NAME=value"` (no `$` expansion there)."""
    return _systemd_quote(f"{name}={value}")


def systemd_value(value: Any) -> str:
    """A plain single-line setting value (User=, Description=): refuses line breaks,
    which would end the setting, and doubles `%` for specifiers."""
    text = str(value)
    if any(_is_control(ch) for ch in text):
        raise ValueError(f"a control character cannot appear in a systemd setting: {text!r}")
    if text != text.strip(" ") or text.endswith("\\"):
        # systemd strips a value's surrounding whitespace, and a trailing backslash
        # would join the next line to this setting (systemd.syntax(7)).
        raise ValueError(f"a systemd setting cannot start or end with whitespace or end "
                         f"with a backslash: {text!r}")
    return text.replace("%", "%%")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        json=to_json,
        yaml=to_yaml,
        yaml_block=to_yaml_block,
        hcl=to_hcl,
        systemd_arg=systemd_arg,
        systemd_value=systemd_value,
    )
    env.globals["systemd_env"] = systemd_env
    return env


def render(template: str, **values: Any) -> str:
    """Render `templates/<template>` with `values`; a missing value is an error."""
    return environment().get_template(template).render(**values)
