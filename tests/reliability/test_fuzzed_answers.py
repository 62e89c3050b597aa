"""Generated answers files never produce a traceback.

Hypothesis writes answers files of every shape — random YAML documents, the
procedure's own field names with values of the wrong type, huge strings, unicode,
control characters, bytes that are not UTF-8, text that is not YAML — and feeds
them to `cloudrig plan` and `cloudrig render` of every procedure, in-process through
`tui.cli.main` (an uncaught exception fails the test with its traceback). Each run
must exit 0 (the answers happen to be valid) or 2 with a `cloudrig:` sentence, and a
refused file must leave the output directory empty.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tui.cli import main
from tui.registry import REGISTRY, get_procedure

PROCEDURES = sorted(REGISTRY)

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=40)
           | st.sampled_from(["", "~", "null", "0x1F", "1e999", "-0", "{{ x }}", "${x}",
                              "/etc/passwd", "http://", "a\x00b", "\u202e", "😀" * 3]))
huge = st.builds(lambda text, times: text * times, st.text(min_size=1, max_size=3),
                 st.integers(min_value=20_000, max_value=100_000))
values = st.recursive(scalars,
                      lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                      max_leaves=12)


def _field_names(procedure_id: str) -> list[str]:
    return sorted(get_procedure(procedure_id).answers_model.model_fields)


@st.composite
def answers_files(draw: st.DrawFn, procedure_id: str) -> bytes:
    """The bytes of one answers file."""
    kind = draw(st.sampled_from(["own-fields", "any-yaml", "text", "bytes"]))
    if kind == "own-fields":
        names = draw(st.lists(st.sampled_from(_field_names(procedure_id)), max_size=8))
        document: Any = {name: draw(values) for name in names}
        if names and draw(st.booleans()):
            document[names[0]] = draw(huge)  # one answer far longer than any real one
        if draw(st.booleans()):
            document[draw(st.text(max_size=10))] = draw(values)  # an unknown key too
        return yaml.safe_dump(document, allow_unicode=True).encode()
    if kind == "any-yaml":
        return yaml.safe_dump(draw(values), allow_unicode=True).encode()
    if kind == "text":
        return draw(st.text(max_size=400)).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=400))


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A private state dir and secret store for the in-process CLI (module-wide: a
    Hypothesis test cannot take function-scoped fixtures)."""
    directory = Path(tempfile.mkdtemp(prefix="cloudrig-fuzz-"))
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("CLOUDRIG_")]:
        del os.environ[key]
    os.environ.update(CLOUDRIG_STATE_DIR=str(directory / "state"), NO_COLOR="1",
                      CLOUDRIG_SECRETS_BACKEND="file", HOME=str(directory / "home"))
    try:
        yield directory
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(directory, ignore_errors=True)


class _ThisThread(io.StringIO):
    """Keeps what this thread writes; passes other threads' writes to FALLBACK.
    redirect_stderr swaps sys.stderr for the whole process, and a thread left by
    another test in this worker (a fake server, a browser driver) may print there."""

    def __init__(self, fallback: Any) -> None:
        super().__init__()
        self.thread, self.fallback = threading.get_ident(), fallback

    def write(self, text: str) -> int:
        if threading.get_ident() != self.thread:
            return self.fallback.write(text)
        return super().write(text)


def _run(argv: list[str]) -> tuple[int, str]:
    err = _ThisThread(sys.stderr)
    with contextlib.redirect_stdout(_ThisThread(sys.stdout)), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


@pytest.mark.parametrize("procedure_id", PROCEDURES)
def test_generated_answers_are_a_sentence_or_valid(procedure_id: str, workdir: Path) -> None:
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=answers_files(procedure_id), command=st.sampled_from(["plan", "render"]))
    @example(data=b"external_port: \x80\n", command="plan")  # not UTF-8: found by this test
    @example(data=b"- a\n- b\n", command="render")
    @example(data=b"key: [unclosed\n", command="plan")
    def check(data: bytes, command: str) -> None:
        answers = workdir / "answers.yaml"
        answers.write_bytes(data)
        out = workdir / "out"
        shutil.rmtree(out, ignore_errors=True)
        argv = [command, procedure_id, "--answers", str(answers)]
        if command == "render":
            argv += ["--out", str(out)]
        code, stderr = _run(argv)
        assert code in (0, 2), f"exit {code}: {stderr}"
        assert "Traceback" not in stderr
        if code == 2:
            assert stderr.startswith("cloudrig: ") and len(stderr.strip()) > 20, stderr
            assert not out.exists() or not any(out.rglob("*")), "a refused file wrote files"

    check()
