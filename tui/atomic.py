"""Atomic writes: a file is replaced whole or not at all, whatever kills the run.

A leaf (imports nothing of CloudRig): the planned files (`tui/files.py`) and
CloudRig's own state, stores, journals and drafts are all written here. `write_at`
writes through a directory descriptor (the caller walked to it safely); a temp file
left by a run killed between writing and renaming is swept the next time its target
is written, but only while a lock says no other CloudRig writes there (`sweeping`,
entered by tui/runlock.py's locks).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

NAME_MAX = 255  # bytes in one path component (Linux, every common file system)
DIR_MODE = 0o755  # a directory CloudRig creates on the way to a file


def make_dirs(path: Path, mode: int, parents_mode: int = DIR_MODE) -> None:
    """`mkdir -p` whose directories get MODE (the last) and PARENTS_MODE (the ones on
    the way) explicitly, whatever the umask; existing directories are left as they are
    (for CloudRig's own state and export directories, which are the operator's)."""
    path = Path(os.path.abspath(path))
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        wanted = mode if directory == path else parents_mode
        try:
            os.mkdir(directory, wanted)
        except FileExistsError:
            continue
        os.chmod(directory, wanted)  # mkdir's mode went through the umask


def _temp_prefix(name: str) -> str:
    """`.NAME.`, NAME shortened so that `.NAME.<16 hex>.tmp` fits in NAME_MAX bytes."""
    while len(os.fsencode(name)) > NAME_MAX - 22:
        name = name[:-1]
    return f".{name}."


# What follows `.NAME.` in a temp file of NAME (`write_at`; mkstemp's before) or of one
# of its backups (`NAME.cloudrig-<stamp>.bak`).
_TEMP_TAIL = re.compile(r"(?:cloudrig-\d{8}T\d{6}(?:-\d+)?\.bak\.)?[0-9a-z_]+\.tmp")


def _is_temp_of(entry: str, name: str) -> bool:
    prefix = _temp_prefix(name)
    return entry.startswith(prefix) and _TEMP_TAIL.fullmatch(entry[len(prefix):]) is not None


# How many locks this process holds under which no other CloudRig writes the files it
# writes (a procedure's run lock, a brief state lock): only then is a temp file beside
# a target stale rather than another run's write in flight (tui/runlock.py).
_SWEEP_HOLDS = 0
_SWEEP_LOCK = threading.Lock()


@contextlib.contextmanager
def sweeping() -> Iterator[None]:
    """Allow the sweep of stale temp files for the body (entered by tui/runlock.py's
    locks)."""
    global _SWEEP_HOLDS
    with _SWEEP_LOCK:
        _SWEEP_HOLDS += 1
    try:
        yield
    finally:
        with _SWEEP_LOCK:
            _SWEEP_HOLDS -= 1


def sweep_at(fd: int, name: str) -> None:
    """Temp files of NAME (and of its backups) left by a run that was killed (SIGKILL,
    power loss) between writing and renaming them. Only while a lock is held
    (`sweeping`): without one, a temp file may be another run's write in flight."""
    if not _SWEEP_HOLDS:
        return
    for entry in os.listdir(fd):
        if _is_temp_of(entry, name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry, dir_fd=fd)


def remove_stale_temps(target: Path) -> None:
    try:
        fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        sweep_at(fd, target.name)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view_ = memoryview(data)
    while view_:
        view_ = view_[os.write(fd, view_):]


def write_at(fd: int, name: str, data: bytes, mode: int, ids: tuple[int, int] | None = None,
             times: tuple[int, int] | None = None) -> None:
    """NAME in directory FD becomes DATA, whole or not at all: a temp file beside it
    (O_EXCL, O_NOFOLLOW) gets owner IDS, MODE, DATA and TIMES (ns), is fsynced and
    renamed over NAME, then the directory is fsynced. OSError propagates."""
    tmp = f"{_temp_prefix(name)}{os.urandom(8).hex()}.tmp"  # no `secrets`: start-up
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=fd)
    try:
        try:
            if ids is not None:
                os.fchown(handle, *ids)
            os.fchmod(handle, mode)  # after chown, which clears set-id bits
            _write_all(handle, data)
            if times is not None:
                os.utime(handle, ns=times)
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=fd)
        raise
    os.fsync(fd)


def atomic_write(target: Path, data: bytes, mode: int) -> None:
    """Write TARGET via a temp file in the same directory, fsync, rename: never half a
    file (CloudRig's own state and stores; planned files go through `apply_file`)."""
    fd = os.open(Path(target).parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sweep_at(fd, Path(target).name)
        write_at(fd, Path(target).name, data, mode)
    finally:
        os.close(fd)
