"""`cloudrig ARGS` run inside the test process: `tui.cli.main(argv)` as the entry point
would run it, at a fraction of a subprocess's cost (no interpreter start, no imports).

What a fresh process would give the command is given here and taken back after it:
the environment (exactly ENV, nothing of the test's), the working directory, stdin
(/dev/null or INPUT, at the file-descriptor level, so a child the command starts reads
the same), stdout and stderr captured at the file-descriptor level (a child's output is
captured too), and an empty registry of secret values to mask. An exception `main`
does not handle becomes exit status 1 with the traceback on stderr, as the interpreter
would print it, so a test that scans for "Traceback" still sees it.

What cannot be isolated in one process stays with the real entry point (the
`subprocess` runner): commands that fork or serve (`apply --detach`, `serve`, the TUI),
whether a command imports Textual, signals sent from outside, two runs at once, exit
on a killed process. `run_in_process` refuses those commands instead of running them.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tui import redact
from tui.cli import main

# One command at a time in this process: the environment, cwd and fds are process-wide.
_one_at_a_time = threading.Lock()


def needs_a_process(args: Sequence[str]) -> str | None:
    """Why ARGS cannot run in-process (None when they can)."""
    if not args or args[0] in {"tui", "serve"}:
        return "the TUI and `serve` run an app or a server: use the subprocess runner"
    if "--detach" in args:
        return "`--detach` forks a run that outlives the command: use the subprocess runner"
    return None


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _directory(cwd: Path | None) -> Iterator[None]:
    saved = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved)


@dataclass
class Captured:
    """What the command wrote to fds 1 and 2, filled in when the call ends."""

    stdout: str = ""
    stderr: str = ""


@contextmanager
def _standard_streams(input: str | None) -> Iterator[Captured]:
    """fds 0, 1, 2 (and sys.stdin/stdout/stderr over them) on temp files for the call."""
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:
        stdin.write((input or "").encode())
        stdin.seek(0)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
        saved_streams = sys.stdin, sys.stdout, sys.stderr
        for fd, file in zip((0, 1, 2), (stdin, out, err), strict=True):
            os.dup2(file.fileno(), fd)
        # Text streams over the redirected fds, not closing them (closefd=False); they
        # live for the call, as sys.stdin/stdout/stderr live for a process.
        sys.stdin = io.TextIOWrapper(open(0, "rb", closefd=False),  # noqa: SIM115
                                     encoding="utf-8")
        sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False),  # noqa: SIM115
                                      encoding="utf-8", line_buffering=True)
        sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False),  # noqa: SIM115
                                      encoding="utf-8", line_buffering=True,
                                      errors="backslashreplace")
        captured = Captured()
        try:
            yield captured
        finally:
            for stream in (sys.stdout, sys.stderr):
                # A stream the command closed: what it wrote is in the file already.
                with suppress(OSError, ValueError):
                    stream.flush()
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            for fd, saved in zip((0, 1, 2), saved_fds, strict=True):
                os.dup2(saved, fd)
                os.close(saved)
            captured.stdout, captured.stderr = _read(out), _read(err)


def _read(file: IO[bytes]) -> str:
    file.seek(0)
    return file.read().decode("utf-8", errors="replace")


def run_in_process(env: dict[str, str], args: Sequence[str | Path], *,
                   input: str | None = None,
                   cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`cloudrig ARGS` in this process with ENV as its whole environment; the same
    result a subprocess run gives (exit status, stdout, stderr)."""
    argv = [str(a) for a in args]
    refusal = needs_a_process(argv)
    if refusal:
        raise ValueError(f"cloudrig {' '.join(argv)}: {refusal}")
    with _one_at_a_time, _environment(env), _directory(cwd), \
            _standard_streams(input) as captured:
        redact.forget_all()  # a fresh process knows no secret yet
        try:
            code: object = main(argv)
        except SystemExit as exc:
            code = exc.code
        except Exception:  # what the interpreter would print, then exit 1
            traceback.print_exc()
            code = 1
        finally:
            redact.forget_all()
        if code is None:
            returncode = 0
        elif isinstance(code, int):
            returncode = code
        else:
            print(code, file=sys.stderr)
            returncode = 1
    return subprocess.CompletedProcess(["cloudrig", *argv], returncode, captured.stdout,
                                       captured.stderr)
