"""A run's events, one JSON object a line, in `$CLOUDRIG_STATE_DIR/<proc>.events.jsonl`.

Every apply and teardown that changes something writes one (mode 0600, never through
a symlink): a `run` record (who runs it: pid, host, start; its steps), each progress
event as the engine emitted it (already redacted: no secret), and an `end` record
with the outcome and exit code. `cloudrig attach` and the TUI's progress screen read
it, so any later login can follow a run or see how the last one ended. A new run
replaces the file (a new inode), so a reader of the previous run is never confused
by a half-overwritten one.

Only the standard library: the CLI's `attach` starts fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.atomic import atomic_write
from tui.runlock import alive

Record = dict[str, Any]


def journal_path(directory: Path, procedure: str) -> Path:
    return directory / f"{procedure}.events.jsonl"


def _line(record: Record) -> bytes:
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()


class Journal:
    """The writer: one per run, used from the engine (and the signal watcher's thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def start(self, header: Record) -> None:
        """A new journal holding only HEADER (the `run` record), replacing the last one."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path, _line({"type": "run", **header}), 0o600)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)

    def event(self, record: Record) -> None:
        self._append({"type": "event", **record})

    def end(self, record: Record) -> None:
        self._append({"type": "end", **record})
        self.close()

    def _append(self, record: Record) -> None:
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):  # a full disk must not end the run
                    os.write(self._fd, _line(record))

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass(frozen=True)
class RunStart:
    """Who runs a followed run, and its steps, read from its `run` record (what
    `cloudrig attach` says first; the list a new viewer of the run shows). A plain
    dataclass, as RunEnd; what a record lacks or has malformed is None or left out."""

    run: str | None = None
    pid: int | None = None
    host: str | None = None
    started: str | None = None
    steps: tuple[tuple[str, str], ...] = ()
    """(step id, title) of each step the run will go through, in order."""

    @classmethod
    def from_record(cls, record: Record) -> RunStart:
        pid, steps = record.get("pid"), record.get("steps")
        pairs = steps if isinstance(steps, list) else []
        return cls(run=_text(record.get("run")), pid=pid if isinstance(pid, int) else None,
                   host=_text(record.get("host")), started=_text(record.get("started")),
                   steps=tuple((str(pair[0]), str(pair[1])) for pair in pairs
                               if isinstance(pair, list) and len(pair) == 2))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class RunEnd:
    """How a followed run ended, read from its `end` record (what `cloudrig attach`
    reports and exits with). A plain dataclass: `attach` starts without pydantic."""

    outcome: str
    exit_code: int
    failed_step: str | None = None
    message: str | None = None
    steps: dict[str, str] = field(default_factory=dict)
    """step id → its word ("done", "manual", "staged", "failed", …), as the run said."""

    @property
    def waiting(self) -> list[str]:
        """Steps whose automatic part is done and whose manual part is the operator's."""
        return [step for step, word in self.steps.items() if word == "manual"]

    @classmethod
    def from_record(cls, end: Record, procedure: str) -> RunEnd:
        """END (`{}`: none was read, the run's end is unknown); a run that did not end
        done is named by PROCEDURE when its record names no step."""
        outcome = str(end.get("outcome", "interrupted"))
        failed = end.get("failed_step")
        message = end.get("message")
        steps = end.get("steps") or {}
        return cls(outcome=outcome, exit_code=int(end.get("exit_code", 130)),
                   failed_step=str(failed) if failed else (
                       procedure if outcome != "done" else None),
                   message=None if message is None else str(message),
                   steps={str(k): str(v) for k, v in dict(steps).items()})


def read(path: Path) -> list[Record]:
    """Every whole record of the journal at PATH ([] when there is none)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    return [record for record in map(_parse, data.split(b"\n")[:-1]) if record is not None]


def _parse(line: bytes) -> Record | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def writer_alive(header: Record | None) -> bool:
    """Whether the process named in a journal's `run` record still runs (on another
    host: assumed so, this one cannot tell)."""
    if header is None:
        return False

    return alive(header.get("pid"), header.get("process_start"), header.get("host")) is not False


def gone_end(header: Record | None) -> Record:
    """The `end` a run that died without writing one gets (SIGKILL, a reboot)."""
    who = ""
    if header:
        who = f" (pid {header.get('pid')} on {header.get('host')})"
    return {"type": "end", "outcome": "interrupted", "exit_code": 130, "failed_step": None,
            "message": f"the run{who} ended without recording how (killed, or the host went "
                       "down); rerun apply to resume", "steps": {}, "gone": True}


def follow(path: Path, stop: threading.Event | None = None, interval: float = 0.1,
           alive: Callable[[Record | None], bool] = writer_alive) -> Iterator[Record]:
    """The journal's records so far, then each new one as it is written, ending with its
    `end` record — or `gone_end` when its writer died without one; nothing when there is
    no journal. A newer run replacing the journal starts again at its `run` record. STOP
    (set) ends the reading early."""
    handle = None
    buffer = b""
    header: Record | None = None
    try:
        while True:
            if handle is None:
                try:
                    handle = open(path, "rb")  # noqa: SIM115 - held across yields
                except FileNotFoundError:
                    return  # no run has written one here
            chunk = handle.read()
            if chunk:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    record = _parse(line)
                    if record is None:
                        continue
                    if record.get("type") == "run":
                        header = record
                    yield record
                    if record.get("type") == "end":
                        return
                continue
            if _replaced(path, handle):
                handle.close()
                handle, buffer = None, b""
                continue
            if not alive(header):
                tail = handle.read()  # written just before it died?
                if tail:
                    buffer += tail
                    continue
                yield gone_end(header)
                return
            if _wait(stop, interval):
                return
    finally:
        if handle is not None:
            handle.close()


def _wait(stop: threading.Event | None, seconds: float) -> bool:
    """Sleep SECONDS, or less when STOP is set; whether to stop."""
    if stop is None:
        time.sleep(seconds)
        return False
    return stop.wait(seconds)


def _replaced(path: Path, handle: Any) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except OSError:
        return False
