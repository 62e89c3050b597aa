"""What a command's whole session is doing, and ending all of it.

A command run on a pseudo-terminal is a session leader (ptyprocess calls setsid), so
everything it starts — a shell's children, sudo's command, a tool's helper — shares
its session id unless it deliberately leaves. Linux's /proc tells us, per thread,
which system call each member sleeps in (`/proc/PID/task/TID/syscall`, see proc(5)),
and that is how the prompt runner knows a child is *waiting for the terminal*
rather than busy: a thread asleep in read() on a terminal is waiting for someone to
type. Where that cannot be seen (no /proc, an architecture whose syscall numbers are
not listed here, a set-uid member such as sudo whose /proc entries are closed to us),
the answer is "unknown" and the caller falls back to a slower rule.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import time
from enum import StrEnum
from pathlib import Path

PROC = Path("/proc")

# System call numbers (Linux uapi unistd tables): reading a descriptor, and waiting
# on descriptors without saying which (so possibly the terminal).
_READS = {"x86_64": {0, 17, 19, 295, 327},  # read, pread64, readv, preadv, preadv2
          "aarch64": {63, 65, 67, 69, 286}}  # read, readv, pread64, preadv, preadv2
# poll, select, epoll_wait, pselect6, ppoll, epoll_pwait, epoll_pwait2
_WAITS = {"x86_64": {7, 23, 232, 270, 271, 281, 441},
          "aarch64": {22, 72, 73, 441}}  # epoll_pwait, pselect6, ppoll, epoll_pwait2


class Waiting(StrEnum):
    """What the session's members are doing, as far as /proc shows."""

    TERMINAL = "terminal"  # some thread sleeps in read() on a terminal: it waits for input
    UNKNOWN = "unknown"  # cannot tell (poll/select on unknown fds, closed /proc entries)
    BUSY = "busy"  # every thread runs or sleeps on something else (a socket, a child, a timer)


def _stat_fields(pid: int) -> list[str] | None:
    """proc(5) stat fields after the command name (state is [0], session id is [3])."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is `sid`."""
    found: list[int] = []
    try:
        entries = os.listdir(PROC)
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields and len(fields) > 3 and fields[3] == str(sid) and fields[0] not in "ZX":
            found.append(int(entry))
    return found


def _thread_waits(task: Path, reads: set[int], waits: set[int], pid: int) -> Waiting:
    try:
        state = (task / "stat").read_text()
        syscall = (task / "syscall").read_text().split()
    except PermissionError:
        return Waiting.UNKNOWN
    except OSError:
        return Waiting.BUSY  # the thread ended meanwhile
    state = state[state.rfind(")") + 2:].split()[0]
    if state != "S" or not syscall or syscall[0] in ("running", "-1"):
        return Waiting.BUSY  # running, runnable (just woken), stopped, or in user code
    number = int(syscall[0])
    if number in reads and len(syscall) > 1:
        try:
            target = os.readlink(PROC / str(pid) / "fd" / str(int(syscall[1], 16)))
        except PermissionError:
            return Waiting.UNKNOWN
        except OSError:
            return Waiting.BUSY
        return Waiting.TERMINAL if target == "/dev/tty" or target.startswith(
            "/dev/pts/") else Waiting.BUSY
    return Waiting.UNKNOWN if number in waits else Waiting.BUSY


def waiting(sid: int) -> Waiting:
    """Whether the session `sid` is waiting for its terminal (see the module doc)."""
    arch = platform.machine()
    if arch not in _READS or not PROC.is_dir():
        return Waiting.UNKNOWN
    verdict = Waiting.BUSY
    for pid in members(sid):
        try:
            tasks = list((PROC / str(pid) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            seen = _thread_waits(task, _READS[arch], _WAITS[arch], pid)
            if seen is Waiting.TERMINAL:
                return seen
            if seen is Waiting.UNKNOWN:
                verdict = Waiting.UNKNOWN
    return verdict


def kill_all(leader: int, settle: float = 5.0) -> None:
    """SIGKILL the process group `leader` leads and every member of its session, then
    wait (at most `settle` s) until none is left running.

    Call it before reaping the leader: while the leader is unreaped its pid (and so
    the session id) cannot be reused by an unrelated process."""
    targets = set(members(leader))
    with contextlib.suppress(OSError):  # the group may be empty already
        os.killpg(leader, signal.SIGKILL)
    for pid in targets:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        # SIGKILL is final but not instantaneous: a member leaves the list once the
        # kernel has torn it down (a zombie is not listed).
        if not members(leader):
            return
        time.sleep(0.01)
