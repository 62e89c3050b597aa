"""Any value round-trips through the format filters and every carbonio file.

Each rendered file is read back by a real parser (json, python-hcl2, and
`systemd-analyze verify` for the unit) and the values it holds must equal the
answers. systemd has no Python binding, so the unit's fields are also decoded by
`SystemdDecoder` below, which implements the documented rules: systemd.syntax(7)
(sections, comments, line continuation, quoting, C escapes) and systemd.service(5)
"COMMAND LINES" (`%%` for a literal `%`, `$$` for a literal `$`). The decoder is
strict: anything systemd would treat specially (an unescaped specifier or variable,
an unknown escape, a quote in mid-word) is an error, not a guess.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import hcl2
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tui.answers import AnswersError, validate
from tui.commands import CommandRunner
from tui.context import Context
from tui.procedures.carbonio import PROCEDURE, CarbonioAnswers
from tui.render import systemd_arg, systemd_env, systemd_value, to_hcl, to_json, to_yaml
from tui.secrets import SecretSource

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False,
                                        explicit_blocks=False)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"

# Text that tends to break quoting, mixed with arbitrary unicode (no surrogates).
TRICKY = ['"', "'", "\\", "\n", "\r", "\t", "$", "${", "$$", "%", "%{", "%%", "{{", "}}",
          "{%", "#", ";", " ", "/", "\\n", "\\u0024", "\x85", "\u2028", "\ufeff", "é", "☃",
          "𝄞", "\x7f", "\x1b"]
text = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=6)), max_size=12).map(
    "".join)
no_nul = text.filter(lambda s: "\x00" not in s)
# Paths: the same tricky text, mostly without the C0 controls the model refuses (so
# fewer examples are discarded); C1 controls such as U+0085 are valid in a path.
path_text = st.lists(
    st.one_of(st.sampled_from([t for t in TRICKY if t not in "\n\r\t\x7f\x1b"]),
              st.text(st.characters(exclude_categories=("Cs",), min_codepoint=0x20),
                      max_size=6)),
    max_size=12).map("".join)
paths = st.one_of(path_text, path_text, path_text, text)


# ---------------------------------------------------------------- systemd decoder


class SystemdSyntaxError(ValueError):
    pass


WHITESPACE = " \t\n\r"  # systemd's WHITESPACE: nothing else is stripped or separates


_SIMPLE_ESCAPES = {"a": 0x07, "b": 0x08, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09,
                   "v": 0x0B, "\\": 0x5C, '"': 0x22, "'": 0x27, "s": 0x20}


def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections → key → values, per systemd.syntax(7): `#`/`;` comment lines, a
    trailing backslash joins the next line (replaced by a space, comment lines in
    between skipped; `\\\\` at the end is an escaped backslash, not a continuation),
    whitespace around `=` and at the ends of the value ignored."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.split("\n"):
        stripped = raw.strip(WHITESPACE)
        if pending and stripped[:1] in ("#", ";"):
            continue
        line = pending + raw
        if (len(line) - len(line.rstrip("\\"))) % 2:  # an unescaped trailing backslash
            pending = line[:-1] + " "
            continue
        pending = ""
        stripped = line.strip(WHITESPACE)
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]"):
                raise SystemdSyntaxError(f"bad section header {stripped!r}")
            current = sections.setdefault(stripped[1:-1], {})
            continue
        if current is None or "=" not in stripped:
            raise SystemdSyntaxError(f"line outside a section or without '=': {stripped!r}")
        key, value = stripped.split("=", 1)
        current.setdefault(key.strip(WHITESPACE), []).append(value.strip(WHITESPACE))
    if pending:
        raise SystemdSyntaxError("file ends in a line continuation")
    return sections


def _unescape(text: str, i: int, out: bytearray) -> int:
    """Decode the C escape at text[i] (a backslash) into `out`; return the next index.
    `\\xhh` and `\\nnn` are single bytes, `\\u`/`\\U` are code points encoded as UTF-8,
    as systemd's cunescape does; NUL is refused."""
    if i + 1 >= len(text):
        raise SystemdSyntaxError("a backslash at the end of a value")
    ch = text[i + 1]
    if ch in _SIMPLE_ESCAPES:
        out.append(_SIMPLE_ESCAPES[ch])
        return i + 2
    if ch == "x":
        digits = text[i + 2:i + 4]
        if not re.fullmatch(r"[0-9a-fA-F]{2}", digits) or int(digits, 16) == 0:
            raise SystemdSyntaxError(f"bad \\x escape {text[i:i + 4]!r}")
        out.append(int(digits, 16))
        return i + 4
    if ch in "0123":
        digits = text[i + 1:i + 4]
        if not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) == 0:
            raise SystemdSyntaxError(f"bad octal escape {text[i:i + 4]!r}")
        out.append(int(digits, 8))
        return i + 4
    if ch in "uU":
        width = 4 if ch == "u" else 8
        digits = text[i + 2:i + 2 + width]
        if not re.fullmatch(rf"[0-9a-fA-F]{{{width}}}", digits):
            raise SystemdSyntaxError(f"bad \\{ch} escape {text[i:i + 2 + width]!r}")
        code = int(digits, 16)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise SystemdSyntaxError(f"invalid code point in {text[i:i + 2 + width]!r}")
        out += chr(code).encode()
        return i + 2 + width
    raise SystemdSyntaxError(f"unknown escape \\{ch}")


def split_words(value: str) -> list[str]:
    """Whitespace-separated items; a quote may open an item and must close it
    (followed by whitespace or the end); C escapes are decoded inside and outside."""
    words: list[str] = []
    i = 0
    while True:
        while i < len(value) and value[i] in WHITESPACE:
            i += 1
        if i >= len(value):
            return words
        out = bytearray()
        quote = value[i] if value[i] in "\"'" else None
        if quote:
            i += 1
        while True:
            if i >= len(value):
                if quote:
                    raise SystemdSyntaxError("unbalanced quoting")
                break
            ch = value[i]
            if quote and ch == quote:
                i += 1
                if i < len(value) and value[i] not in WHITESPACE:
                    raise SystemdSyntaxError("a closing quote must be followed by whitespace")
                break
            if not quote and ch in WHITESPACE:
                break
            if not quote and ch in "\"'":
                raise SystemdSyntaxError("a quote in the middle of an item")
            if ch == "\\":
                i = _unescape(value, i, out)
                continue
            out += ch.encode()
            i += 1
        try:
            words.append(out.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise SystemdSyntaxError(f"item is not UTF-8 after unescaping: {out!r}") from exc


def expand_specifiers(text: str) -> str:
    """systemd.unit(5) specifiers: `%%` is `%`; any other `%X` would be replaced."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "%":
            if text[i + 1:i + 2] != "%":
                raise SystemdSyntaxError(f"unescaped specifier in {text!r}")
            out.append("%")
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def expand_variables(text: str) -> str:
    """systemd.service(5): `$$` is a literal `$`; `$NAME`/`${NAME}` would be replaced."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$":
            if text[i + 1:i + 2] != "$":
                raise SystemdSyntaxError(f"unescaped $ (a variable reference) in {text!r}")
            out.append("$")
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def exec_argv(value: str) -> list[str]:
    """An ExecStart= value as the argv the process receives."""
    words = [expand_specifiers(w) for w in split_words(value)]
    if not words:
        raise SystemdSyntaxError("empty command line")
    return words[:1] + [expand_variables(w) for w in words[1:]]


def plain_value(value: str) -> str:
    """A setting such as User=: no unquoting, specifiers expanded."""
    return expand_specifiers(value)


def test_decoder_follows_the_documented_rules() -> None:
    unit = ('[Service]\nExecStart=/bin/x "a b" \'c\' d\\x41 "\\u00e9\\xc3\\xa9" \\\n'
            '# skipped\n    "%%$$"\nUser=u%%1\n')
    service = unit_settings(unit)["Service"]
    assert exec_argv(service["ExecStart"][0]) == ["/bin/x", "a b", "c", "dA", "éé", "%$"]
    assert plain_value(service["User"][0]) == "u%1"
    for bad in ('"/bin/x', "/bin/x a\"b\"", "/bin/x %n", "/bin/x $HOME", "/bin/x \\q",
                '/bin/x "\\x85"', '/bin/x "\\x00"'):
        with pytest.raises(SystemdSyntaxError):
            exec_argv(bad)


# ---------------------------------------------------------------- systemd-analyze


def systemd_verify(unit_name: str, content: str, executables: tuple[str, ...]) -> None:
    """`systemd-analyze verify` offline: the unit is placed in DIR/etc/systemd/system
    and verified with `--root=DIR`, so ExecStart's executable is looked up under DIR
    (a stub stands in for /usr/bin/consul); `--recursive-errors=no` keeps it from
    loading the host's targets; `--man=no` skips Documentation= checks."""
    if not Path(SYSTEMD_ANALYZE).exists():
        pytest.skip("systemd-analyze is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for exe in executables:
            stub = root / exe.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
        unit = root / "etc/systemd/system" / unit_name
        unit.parent.mkdir(parents=True)
        unit.write_text(content, encoding="utf-8")
        proc = subprocess.run(
            [SYSTEMD_ANALYZE, "verify", f"--root={root}", "--man=no",
             "--recursive-errors=no", str(unit)],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and not proc.stderr.strip(), (proc.stderr, content)


def test_systemd_verify_rejects_a_broken_unit() -> None:
    """The verification above is real: it fails on bad quoting and a missing binary."""
    good = "[Service]\nExecStart=/usr/bin/consul \"a\"\n"
    systemd_verify("ok.service", good, ("/usr/bin/consul",))
    for bad, exes in (("[Service]\nExecStart=/usr/bin/consul \"a\n", ("/usr/bin/consul",)),
                      (good, ())):
        with pytest.raises(AssertionError):
            systemd_verify("bad.service", bad, exes)


# ---------------------------------------------------------------- filters, directly


@PROPERTY
@given(text)
def test_json_filter_round_trips(value: str) -> None:
    assert json.loads(to_json(value)) == value
    assert json.loads("{" + to_json(value) + ": " + to_json(value) + "}") == {value: value}


@PROPERTY
@given(text)
def test_yaml_filter_round_trips(value: str) -> None:
    literal = to_yaml(value)
    assert "\n" not in literal
    assert yaml.safe_load(literal) == value
    assert yaml.safe_load(f"key: {literal}\nother: 1\n") == {"key": value, "other": 1}


@PROPERTY
@given(text)
def test_hcl_filter_round_trips(value: str) -> None:
    literal = to_hcl(value)
    # No template sequence survives: `${`/`%{` would be interpolation in HCL2.
    assert "${" not in literal and "%{" not in literal
    parsed = hcl2.loads(f"A = {literal}\nB = [{literal}, 1]\n",
                        serialization_options=HCL_OPTIONS)
    assert parsed["A"] == value
    assert parsed["B"][0] == value


@PROPERTY
@given(no_nul)
def test_systemd_arg_round_trips(value: str) -> None:
    line = f"/usr/bin/consul -x {systemd_arg(value)} -y"
    assert "\n" not in line
    assert exec_argv(line) == ["/usr/bin/consul", "-x", value, "-y"]


@PROPERTY
@given(no_nul)
def test_systemd_env_round_trips(value: str) -> None:
    assignment = systemd_env("NAME", value)
    assert "\n" not in assignment
    words = [expand_specifiers(w) for w in split_words(assignment)]
    assert words == [f"NAME={value}"]  # Environment= does no $ expansion


@PROPERTY
@given(text)
@example(" padded ")  # systemd strips a value's surrounding whitespace
@example("ends in a backslash \\")  # which would join the next line
@example("100%")
def test_systemd_value_round_trips_or_refuses(value: str) -> None:
    try:
        rendered = systemd_value(value)
    except ValueError:
        return  # refused loudly: it cannot be written as a plain setting
    unit = unit_settings(f"[Service]\nDescription={rendered}\nUser=x\n")["Service"]
    assert plain_value(unit["Description"][0]) == value
    assert unit["User"] == ["x"]


def test_systemd_filters_refuse_nul() -> None:
    """A NUL cannot be in an argv or environment; systemd would reject its escape."""
    for filt in (systemd_arg, lambda v: systemd_env("N", v), systemd_value):
        with pytest.raises(ValueError):
            filt("a\x00b")


# ---------------------------------------------------------------- every carbonio file

unix_name = st.from_regex(r"[a-z_][a-z0-9_-]{0,32}", fullmatch=True)  # 33: one too long
consul_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", fullmatch=True)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label, min_size=1, max_size=4).map(".".join)
address = st.one_of(hostname, st.ip_addresses().map(str))


def render_carbonio(answers: CarbonioAnswers) -> dict[str, str]:
    """Every carbonio file, through the procedure's own steps (path → content)."""
    ctx = Context(procedure=PROCEDURE, answers=answers,
                  secrets=SecretSource("carbonio", [], interactive=False),
                  runner=CommandRunner(dry_run=True))
    return {item.path: item.content for step in PROCEDURE.steps for item in step.files(ctx)}


@PROPERTY
@given(
    config_dir=paths, unit_dir=paths, ca_file=paths, give_ca=st.booleans(),
    sni=st.one_of(st.none(), hostname),
    gateway_name=unix_name, service_name=consul_name, external_node=consul_name,
    external_address=address, external_port=st.integers(1, 65535),
    consul_url=st.sampled_from([None, "http://127.0.0.1:8500", "http://10.0.0.5:8500",
                                "https://consul.example.com:8501"]),
    consul_ca_file=st.one_of(st.none(), paths),
)
def test_every_carbonio_file_parses_back_to_the_answers(
    config_dir: str, unit_dir: str, ca_file: str, give_ca: bool, sni: str | None,
    gateway_name: str,
    service_name: str, external_node: str, external_address: str, external_port: int,
    consul_url: str | None, consul_ca_file: str | None,
) -> None:
    data = {
        "consul_url": consul_url,
        "consul_ca_file": ("/" + consul_ca_file) if consul_ca_file is not None else None,
        "config_dir": "/" + config_dir, "unit_dir": "/" + unit_dir,
        "ca_file": ("/" + ca_file) if give_ca else None,
        "sni": sni, "gateway_name": gateway_name, "service_name": service_name,
        "external_node": external_node, "external_address": external_address,
        "external_port": external_port, "db_name": "files", "db_username": "files",
    }
    try:
        answers = validate(CarbonioAnswers, {k: v for k, v in data.items() if v is not None})
    except AnswersError:
        assume(False)
    # The model only trims trailing slashes from paths; everything else is kept as given.
    assert answers.config_dir == (data["config_dir"].rstrip("/") or "/")
    assert answers.unit_dir == (data["unit_dir"].rstrip("/") or "/")
    assert answers.ca_file == (data["ca_file"] and (data["ca_file"].rstrip("/") or "/"))

    files = render_carbonio(answers)
    base = answers.config_dir
    assert set(files) == {
        f"{base}/policies.json", f"{base}/{service_name}-external.json",
        f"{base}/gateway-config.hcl", f"{answers.unit_dir}/{gateway_name}.service",
    }

    policy = json.loads(files[f"{base}/policies.json"])
    assert policy["key_prefix"] == [{f"{gateway_name}/": {"policy": "read"}}]
    assert policy["node_prefix"] == [{"": {"policy": "read"}}]
    assert policy["service"] == [{gateway_name: {"policy": "write"},
                                  service_name: {"policy": "write"}}]
    # Consul's terminating-gateway token docs: read on every service and the agent.
    assert policy["service_prefix"] == [{"": {"policy": "read"}}]
    assert policy["agent_prefix"] == [{"": {"policy": "read"}}]
    writes = [(kind, name) for kind, blocks in policy.items() for block in blocks
              for name, rule in block.items() if rule["policy"] == "write"]
    assert set(writes) == {("service", gateway_name), ("service", service_name)}

    external = json.loads(files[f"{base}/{service_name}-external.json"])
    assert external == {
        "Address": external_address, "Node": external_node,
        "NodeMeta": {"external-node": "true", "external-probe": "true"},
        "Service": {"ID": service_name, "Port": external_port, "Service": service_name},
    }

    hcl_text = files[f"{base}/gateway-config.hcl"]
    assert "${" not in hcl_text and "%{" not in hcl_text
    gateway = hcl2.loads(hcl_text, serialization_options=HCL_OPTIONS)
    expected_service = {"Name": service_name}
    if answers.ca_file:
        expected_service["CAFile"] = answers.ca_file
    if sni:
        expected_service["SNI"] = sni
    assert gateway == {"Kind": "terminating-gateway", "Name": gateway_name,
                       "Services": [expected_service]}

    unit_text = files[f"{answers.unit_dir}/{gateway_name}.service"]
    service = unit_settings(unit_text)["Service"]
    # Envoy's registration goes to the agent CloudRig configured: -http-addr unless
    # it is the local default, -ca-file when a CA bundle is given.
    agent = ["-http-addr", answers.consul_url] if answers.consul_url != (
        "http://127.0.0.1:8500") else []
    agent += ["-ca-file", answers.consul_ca_file] if answers.consul_ca_file else []
    assert exec_argv(service["ExecStart"][0]) == [
        "/usr/bin/consul", "connect", "envoy", "-token-file", f"{base}/token", *agent,
        "-admin-bind", "localhost:0", "-gateway=terminating", "-register", "-service",
        gateway_name,
    ]
    assert [plain_value(v) for v in service["User"]] == [gateway_name]
    systemd_verify(f"{gateway_name}.service", unit_text, ("/usr/bin/consul",))


def test_gateway_name_fits_systemds_strict_user_names() -> None:
    """User= takes the gateway name: 31 characters pass verify quietly; 32 are refused
    by the answers model (systemd only accepts them with a warning)."""
    base = {"external_address": "db.example.com", "db_name": "d", "db_username": "u"}
    name = "g" * 31
    files = render_carbonio(validate(CarbonioAnswers, base | {"gateway_name": name}))
    systemd_verify(f"{name}.service", files[f"/lib/systemd/system/{name}.service"],
                   ("/usr/bin/consul",))
    with pytest.raises(AnswersError) as err:
        validate(CarbonioAnswers, base | {"gateway_name": "g" * 32})
    assert "gateway_name" in str(err.value)


def test_default_answers_render_the_runbook_files() -> None:
    """A fixed example, readable on failure: the defaults give the runbook's files."""
    answers = CarbonioAnswers(external_address="db.example.com", db_name="files",
                              db_username="files", ca_file="/etc/ssl/db ca%.pem",
                              sni="db.example.com")
    files = render_carbonio(answers)
    unit = files["/lib/systemd/system/carbonio-gateway.service"]
    assert ('-token-file "/etc/carbonio/gateway/service-discover/token"' in unit)
    systemd_verify("carbonio-gateway.service", unit, ("/usr/bin/consul",))
    hcl = files["/etc/carbonio/gateway/service-discover/gateway-config.hcl"]
    services = hcl2.loads(hcl, serialization_options=HCL_OPTIONS)["Services"]
    assert services == [{"Name": "carbonio-files-db", "CAFile": "/etc/ssl/db ca%.pem",
                         "SNI": "db.example.com"}]
