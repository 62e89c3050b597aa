"""One run at a time per procedure, and whether a recorded run is still alive.

apply, teardown and action hold an exclusive `flock` on `<state>/<proc>.lock` for
the whole run; a second one is refused at once (exit 1) naming the holder, whose
pid, host and start time are written into the lock file while it holds it (and
cleared when it lets go). Writers of state (`confirm`, every save of a run) and of
the secret store take a second, brief lock (`<state>/<name>.brief.lock`) around
each read-modify-write, so nobody's update is lost. The kernel drops a flock when
its process dies, however it dies: no stale lock is ever left to break.

A run's process is named by pid, host and its start time in clock ticks since boot
(`/proc/<pid>/stat` field 22), so a pid reused after a reboot or a crash is never
mistaken for the run, and a zombie counts as gone.

Only the standard library: the home screen asks whether a run is alive before its
first paint.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from tui.atomic import make_dirs, sweeping
from tui.errors import OperatorError

BRIEF_WAIT = 30.0  # seconds a brief writer waits for another's read-modify-write


def this_host() -> str:
    return socket.gethostname()


def process_start(pid: int) -> int | None:
    """When process PID started (clock ticks since boot), or None when there is no
    such live process (gone, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the name, in (), may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a procedure's run lock."""

    pid: int
    host: str
    started: str  # ISO 8601, UTC
    kind: str  # apply | teardown | action
    procedure: str
    process_start: int | None = None
    action: str | None = None

    @classmethod
    def me(cls, procedure: str, kind: str, action: str | None = None) -> Holder:
        pid = os.getpid()
        return cls(pid=pid, host=this_host(), started=datetime.now(UTC).isoformat(),
                   kind=kind, procedure=procedure, process_start=process_start(pid),
                   action=action)

    def doing(self) -> str:
        """"is applying carbonio", as the refusal sentence says it."""
        if self.kind == "teardown":
            return f"is tearing down {self.procedure}"
        if self.kind == "action":
            return f"is running the action {self.action} of {self.procedure}"
        return f"is applying {self.procedure}"

    def since(self) -> str:
        return clock(self.started)


def clock(iso: str) -> str:
    """HH:MM on this host's clock (the operator's), from an ISO time; "?" if unreadable."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%H:%M")
    except (TypeError, ValueError):
        return "?"


def alive(pid: object, start: object, host: object) -> bool | None:
    """Whether the process that recorded (PID, START, HOST) still runs: None when it ran
    on another host (this one cannot tell)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if host is not None and host != this_host():
        return None
    now = process_start(pid)
    if now is None:
        return False
    return start is None or now == start


class Busy(OperatorError):
    """Another CloudRig holds the procedure's run lock (exit 1)."""

    def __init__(self, holder: Holder | None, procedure: str) -> None:
        if holder is None:
            sentence = (f"another cloudrig is running {procedure}; wait for it to finish")
        else:
            sentence = (f"another cloudrig (pid {holder.pid}, started {holder.since()}) "
                        f"{holder.doing()}; wait for it to finish")
            if holder.kind != "action":
                sentence += f" (`cloudrig attach {procedure}` follows it)"
        super().__init__(sentence)
        self.holder = holder


def lock_path(directory: Path, procedure: str) -> Path:
    return directory / f"{procedure}.lock"


def _open(path: Path) -> int:
    """The lock file, never through a symlink (a planted link cannot redirect it)."""
    try:
        make_dirs(path.parent, 0o700)  # modes set explicitly, whatever the umask
    except OSError as exc:
        from tui.files import state_write_failure  # deferred: start-up (pydantic)

        raise state_write_failure(exc, path.parent) from None
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OperatorError(f"{path} is a symbolic link; CloudRig does not follow links "
                                "in its state directory: remove it") from None
        raise OperatorError(f"cannot open the lock file {path} "
                            f"({exc.strerror or exc}); check the state directory") from None


def read_holder(directory: Path, procedure: str) -> Holder | None:
    """The record in the lock file, whether or not its writer still runs."""
    try:
        with open(lock_path(directory, procedure), "rb") as handle:
            data = json.loads(handle.read() or b"null")
        return Holder(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def running(directory: Path, procedure: str) -> Holder | None:
    """The holder of PROCEDURE's run lock when it is alive (on this host), else None."""
    holder = read_holder(directory, procedure)
    if holder is None or alive(holder.pid, holder.process_start, holder.host) is False:
        return None
    return holder


# Locks this process holds, by (lock file, thread): the same thread taking one again
# (a detached run's child, then its engine) nests instead of refusing itself.
_HELD: dict[tuple[str, int], int] = {}
_HELD_LOCK = threading.Lock()


@contextlib.contextmanager
def run_lock(directory: Path, procedure: str, kind: str,
             action: str | None = None) -> Iterator[Holder]:
    """Hold PROCEDURE's run lock for the body, or raise Busy at once."""
    path = lock_path(directory, procedure)
    key = (str(path), threading.get_ident())
    with _HELD_LOCK:
        nested = key in _HELD
        if nested:
            _HELD[key] += 1
    if nested:
        try:
            yield read_holder(directory, procedure) or Holder.me(procedure, kind, action)
        finally:
            with _HELD_LOCK:
                _HELD[key] -= 1
        return
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(read_holder(directory, procedure), procedure) from None
        holder = Holder.me(procedure, kind, action)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        except OSError as exc:  # a full state disk: one sentence, the lock let go
            from tui.files import state_write_failure  # deferred: start-up (pydantic)

            raise state_write_failure(exc, path) from None
        with _HELD_LOCK:
            _HELD[key] = 1
        try:
            with sweeping():  # no other CloudRig writes this procedure's files now
                yield holder
        finally:
            with _HELD_LOCK:
                _HELD.pop(key, None)
            os.ftruncate(fd, 0)  # nobody holds it: the record must not outlive the hold
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def brief_lock(directory: Path, name: str, wait: float = BRIEF_WAIT) -> Iterator[None]:
    """Hold `<name>.brief.lock` for one read-modify-write; waits while another writer
    holds it (they hold it for milliseconds), up to WAIT seconds."""
    path = directory / f"{name}.brief.lock"
    key = (str(path), threading.get_ident())
    with _HELD_LOCK:
        if key in _HELD:  # already ours in this thread (an update inside an update)
            _HELD[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _HELD_LOCK:
                _HELD[key] -= 1
        return
    fd = _open(path)
    try:
        deadline = time.monotonic() + wait
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OperatorError(
                        f"{path} stayed locked for {wait:g} s: another cloudrig is stuck "
                        f"writing there; find it with `fuser {path}`") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        with _HELD_LOCK:
            _HELD[key] = 1
        try:
            with sweeping():
                yield
        finally:
            with _HELD_LOCK:
                _HELD.pop(key, None)
    finally:
        os.close(fd)
