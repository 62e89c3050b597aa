"""The file plan: preview with diffs, atomic writes, backups, modes, owners, --root.

A FileWrite names the file's final path on the host. Under `--root DIR` it is
written to DIR + that path, but every message, diff and state record still names
the final path, because that is where the file belongs.
"""

from __future__ import annotations

import contextlib
import difflib
import glob
import grp
import os
import pwd
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from tui.procedure import CheckResult, FileWrite, Status


def host_path(path: str, root: Path | None) -> Path:
    """Where `path` (absolute, on the host) is on disk for this run."""
    if not path.startswith("/"):
        raise ValueError(f"file targets must be absolute paths, not {path!r}")
    return Path(path) if root is None else Path(root) / path.lstrip("/")


def read_current(item: FileWrite, root: Path | None) -> bytes | None:
    try:
        return host_path(item.path, root).read_bytes()
    except FileNotFoundError:
        return None


class FileView(BaseModel):
    """A file as the preview shows it: action, mode, owner and a diff (never a secret)."""

    path: str
    action: Literal["create", "update", "unchanged"]
    mode: str
    owner: str | None
    diff: str
    secret: bool
    mode_drift: str | None = None


def _mode_of(target: Path) -> int | None:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return None


def view(item: FileWrite, root: Path | None) -> FileView:
    current = read_current(item, root)
    new = item.payload()
    action = "create" if current is None else ("unchanged" if current == new else "update")
    if item.secret:
        diff = f"(secret content, {len(new)} bytes: not shown)"
    elif item.binary is not None:
        diff = "" if action == "unchanged" else f"(binary content, {len(new)} bytes)"
    elif action == "unchanged":
        diff = ""
    else:
        old_text = (current or b"").decode("utf-8", errors="replace")
        diff = "".join(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                item.content.splitlines(keepends=True),
                fromfile="/dev/null" if current is None else item.path,
                tofile=item.path,
            )
        )
    mode = _mode_of(host_path(item.path, root))
    mode_drift = None
    if mode is not None and mode != item.mode:
        mode_drift = f"mode {mode:04o} on disk, {item.mode:04o} planned"
    owner = f"{item.owner}:{item.group or item.owner}" if item.owner else None
    return FileView(path=item.path, action=action, mode=f"{item.mode:04o}", owner=owner,
                    diff=diff, secret=item.secret, mode_drift=mode_drift)


class FileOutcome(BaseModel):
    path: str
    action: Literal[
        "created", "updated", "unchanged", "would create", "would update", "removed",
        "would remove", "restored", "would restore", "kept"
    ]
    backup: str | None = None
    note: str | None = None

    def sentence(self) -> str:
        text = f"{self.path}: {self.action}"
        if self.backup:
            text += f" (previous version saved as {self.backup})"
        if self.note:
            text += f"; {self.note}"
        return text


def backup_name(path: Path, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%dT%H%M%S")
    candidate = path.with_name(f"{path.name}.cloudrig-{stamp}.bak")
    counter = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.cloudrig-{stamp}-{counter}.bak")
        counter += 1
    return candidate


BACKUP = re.compile(r"\.cloudrig-(\d{8}T\d{6})(?:-(\d+))?\.bak$")


def backups_of(target: Path) -> list[Path]:
    """CloudRig's backups of `target` (`backup_name`), oldest first: by stamp, then by
    the counter added within one second (a plain name sort would put `-1` first)."""
    found = []
    for candidate in target.parent.glob(f"{glob_escape(target.name)}.cloudrig-*.bak"):
        match = BACKUP.search(candidate.name[len(target.name):])
        if match and candidate.name[:len(target.name)] == target.name:
            found.append(((match[1], int(match[2] or 0)), candidate))
    return [path for _key, path in sorted(found)]


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _same_owner(source: os.stat_result, target: Path) -> None:
    """Give `target` the owner of `source` when CloudRig may (as root)."""
    if os.geteuid() == 0:
        os.chown(target, source.st_uid, source.st_gid)


# How many locks this process holds under which no other CloudRig writes the files it
# writes (a procedure's run lock, a brief state lock): only then is a temp file beside
# a target stale rather than another run's write in flight (tui/runlock.py).
_SWEEP_HOLDS = 0
_SWEEP_LOCK = threading.Lock()


@contextlib.contextmanager
def sweeping() -> Iterator[None]:
    """Allow `remove_stale_temps` for the body (entered by tui/runlock.py's locks)."""
    global _SWEEP_HOLDS
    with _SWEEP_LOCK:
        _SWEEP_HOLDS += 1
    try:
        yield
    finally:
        with _SWEEP_LOCK:
            _SWEEP_HOLDS -= 1


def remove_stale_temps(target: Path) -> None:
    """Temp files of TARGET (and of its backups) left by a run that was killed (SIGKILL,
    power loss) between writing and renaming them. Only while a lock is held
    (`sweeping`): without one, a temp file may be another run's write in flight."""
    if not _SWEEP_HOLDS or not target.parent.is_dir():
        return
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def atomic_copy(source: Path, target: Path) -> None:
    """copy2 (data, mode, times) through a temp file and a rename: a backup is whole or
    absent, never the first half of the file it keeps."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(target: Path, data: bytes, mode: int) -> None:
    """Write via a temp file in the same directory, fsync, rename: never half a file."""
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _ids(item: FileWrite) -> tuple[int, int] | None:
    if not item.owner:
        return None
    try:
        uid = pwd.getpwnam(item.owner).pw_uid
        gid = grp.getgrnam(item.group or item.owner).gr_gid
    except KeyError:
        return None
    return uid, gid


def apply_file(item: FileWrite, root: Path | None, dry_run: bool = False) -> FileOutcome:
    """Write one planned file if it differs; back up a different existing file first."""
    target = host_path(item.path, root)
    current = read_current(item, root)
    new = item.payload()
    mode_ok = _mode_of(target) == item.mode
    if not dry_run:
        remove_stale_temps(target)
    if current == new and mode_ok:
        return FileOutcome(path=item.path, action="unchanged")
    if dry_run:
        return FileOutcome(path=item.path,
                           action="would create" if current is None else "would update")
    if current is None:
        target.parent.mkdir(parents=True, exist_ok=True, mode=item.dir_mode or 0o755)
    backup = None
    if current is not None and current != new:
        backup_path = backup_name(target)
        atomic_copy(target, backup_path)
        _same_owner(target.stat(), backup_path)  # the owner to restore, as root
        backup = str(host_path_display(backup_path, root))
    atomic_write(target, new, item.mode)
    note = _chown(item, target, root)
    action = "created" if current is None else "updated"
    return FileOutcome(path=item.path, action=action, backup=backup, note=note)


def host_path_display(path: Path, root: Path | None) -> str:
    """The final host path of something under --root (for messages)."""
    if root is None:
        return str(path)
    return "/" + str(Path(path).relative_to(root))


def _chown(item: FileWrite, target: Path, root: Path | None) -> str | None:
    if not item.owner:
        return None
    owner = f"{item.owner}:{item.group or item.owner}"
    if root is not None:
        return f"owner {owner} not set under --root"
    ids = _ids(item)
    if ids is None:
        return f"owner {owner} does not exist yet; not set"
    if os.geteuid() != 0:
        return f"owner {owner} needs root; not set"
    os.chown(target, *ids)
    return None


def check_file(item: FileWrite, root: Path | None) -> CheckResult:
    current = read_current(item, root)
    if current is None:
        return CheckResult(status=Status.PENDING, detail=f"{item.path} missing")
    if current != item.payload():
        return CheckResult(status=Status.DRIFTED, detail=f"{item.path} differs from the plan")
    mode = _mode_of(host_path(item.path, root))
    if mode != item.mode:
        return CheckResult(status=Status.DRIFTED,
                           detail=f"{item.path} has mode {mode:04o}, expected {item.mode:04o}")
    return CheckResult(status=Status.DONE, detail=f"{item.path} in place")


def check_files(items: list[FileWrite], root: Path | None) -> CheckResult:
    return CheckResult.worst([check_file(item, root) for item in items])


def remove_file(path: str, root: Path | None, dry_run: bool = False) -> FileOutcome | None:
    """Remove a file CloudRig wrote (teardown); absent is fine (idempotent)."""
    target = host_path(path, root)
    if not target.exists():
        return None
    if not dry_run:
        target.unlink()
    return FileOutcome(path=path, action="would remove" if dry_run else "removed")


class RestoreView(BaseModel):
    """What `teardown --restore` would do to one file (the teardown preview)."""

    path: str
    backup: str | None
    action: Literal["restore", "unchanged", "kept"]

    def sentence(self) -> str:
        if self.backup is None:
            return (f"{self.path}: no backup from before CloudRig's first write (CloudRig "
                    "created it, or never changed it): left as it is")
        if self.action == "unchanged":
            return (f"{self.path}: already the version from before CloudRig's first write "
                    f"({self.backup}): nothing to restore")
        return f"{self.path}: put back from {self.backup} (before CloudRig's first write)"


def _first_backup(path: str, root: Path | None) -> tuple[Path, Path | None]:
    target = host_path(path, root)
    backups = backups_of(target)
    return target, (backups[0] if backups else None)


def restore_view(path: str, root: Path | None) -> RestoreView:
    target, first = _first_backup(path, root)
    if first is None:
        return RestoreView(path=path, backup=None, action="kept")
    shown = host_path_display(first, root)
    same = (target.exists() and target.read_bytes() == first.read_bytes()
            and _mode_of(target) == _mode_of(first))
    return RestoreView(path=path, backup=shown, action="unchanged" if same else "restore")


def restore_file(path: str, root: Path | None, dry_run: bool = False) -> FileOutcome:
    """Put back the backup CloudRig made before its first write of `path`, atomically,
    with that backup's mode and owner. The current version is backed up first (nothing
    is lost); the oldest backup stays, so a second restore finds it in place."""
    planned = restore_view(path, root)
    if planned.action != "restore":
        action: Literal["kept", "unchanged"] = planned.action
        return FileOutcome(path=path, action=action, note=planned.sentence().split(": ", 1)[1])
    target, first = _first_backup(path, root)
    assert first is not None
    note = f"from {planned.backup}, the version from before CloudRig's first write"
    if dry_run:
        return FileOutcome(path=path, action="would restore", note=note)
    backup = None
    if target.exists():
        current = backup_name(target)
        atomic_copy(target, current)
        _same_owner(target.stat(), current)
        backup = host_path_display(current, root)
    source = first.stat()
    atomic_write(target, first.read_bytes(), stat.S_IMODE(source.st_mode))
    _same_owner(source, target)
    return FileOutcome(path=path, action="restored", backup=backup, note=note)
