"""The file plan: preview with diffs, atomic writes, backups, modes, owners, --root.

A FileWrite names the file's final path on the host. Under `--root DIR` it is
written to DIR + that path, but every message, diff and state record still names
the final path, because that is where the file belongs.

A hostile host (DESIGN.md, "Safety rules"): a service user who owns a directory
CloudRig writes in can plant links there. So every path is walked one component at
a time from the root (or /) with directory descriptors and O_NOFOLLOW, never by
name: a target that is a symbolic link is refused (it is never read for a diff,
backed up or replaced through), a parent that is a link is followed only when it
stays in the expected tree — under --root, inside the root; on the host, a link root
(or the user running CloudRig) made — and every other case is refused with one
sentence naming the path. Directories CloudRig creates get their mode explicitly
(the umask does not matter) and a file's planned owner is set on the open temp file
before it is renamed into place: nothing is chowned by name, nothing recursively.
Host errors (full disk, read-only file system, a name over 255 bytes, a directory
where a file belongs) become that one sentence too, never a traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import grp
import os
import pwd
import re
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from tui.atomic import DIR_MODE, NAME_MAX, make_dirs, sweep_at, write_at
from tui.errors import OperatorError
from tui.model import CheckResult, FileRemove, FileWrite, OwnedFile, Status

MAX_LINKS = 40  # links followed in one path, as the kernel allows (ELOOP beyond)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class FileError(OperatorError):
    """A file CloudRig cannot read or write safely: one sentence naming the path."""


def host_path(path: str, root: Path | None) -> Path:
    """Where `path` (absolute, on the host) is on disk for this run (by name: for
    listing and messages; reads and writes go through `files`' safe walk)."""
    if not path.startswith("/"):
        raise ValueError(f"file targets must be absolute paths, not {path!r}")
    return Path(path) if root is None else Path(root) / path.lstrip("/")


# ---------------------------------------------------------------- errors


def os_error(exc: OSError, path: str, doing: str = "write") -> FileError:
    """The sentence for a host error on PATH (a final host path)."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
        return FileError(f"cannot {doing} {path}: {what}; free space on its file system "
                         "and rerun")
    if code == errno.EROFS:
        return FileError(f"cannot {doing} {path}: its file system is read-only; remount it "
                         "read-write (or choose another path) and rerun")
    if code == errno.ENAMETOOLONG:
        return FileError(f"cannot {doing} {path}: a name in it is longer than {NAME_MAX} "
                         "bytes (or the whole path is too long); choose a shorter path")
    if code == errno.EISDIR:
        return FileError(f"cannot {doing} {path}: it is a directory; move the directory "
                         "away or choose another path")
    if code == errno.ENOTDIR:
        return FileError(f"cannot {doing} {path}: a part of it is not a directory")
    if code in (errno.EACCES, errno.EPERM):
        return FileError(f"cannot {doing} {path}: permission denied; run CloudRig as root "
                         "(or as the owner of the directory)")
    if code == errno.ELOOP:
        return FileError(f"refusing {path}: too many symbolic links on the way to it")
    reason = exc.strerror or str(exc)
    return FileError(f"cannot {doing} {path}: {reason[:1].lower()}{reason[1:]}")


def state_write_failure(exc: OSError, path: Path) -> OperatorError:
    """One sentence for a write to CloudRig's state directory that failed: the file
    named, the old state still whole (writes are atomic), and where the state lives."""
    sentence = os_error(exc, str(path), "save CloudRig's state to").sentence
    return OperatorError(f"{sentence} (the state directory is set by CLOUDRIG_STATE_DIR; "
                         "the previous state is intact, so a rerun resumes)")


def _link_refused(path: str, dest: str) -> FileError:
    return FileError(f"refusing {path}: it is a symbolic link (to {dest}); CloudRig never "
                     "reads, backs up or writes through a link: remove the link (or put "
                     "the real file there) and rerun")


def _joined(where: str, name: str) -> str:
    return f"{where.rstrip('/')}/{name}"


def _check_name(name: str, path: str) -> None:
    if len(os.fsencode(name)) > NAME_MAX:
        raise FileError(f"cannot use {path}: its name {name[:24]}… is "
                        f"{len(os.fsencode(name))} bytes, more than the {NAME_MAX} a file "
                        "system allows; choose a shorter path")


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


# ---------------------------------------------------------------- the safe walk


def _open_root(root: Path | None, create: bool) -> tuple[int, str] | None:
    base = os.path.realpath(root) if root is not None else "/"
    try:
        if create and root is not None and not os.path.isdir(base):
            make_dirs(Path(base), DIR_MODE)
        return os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), base
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_error(exc, f"the --root directory {base}", "create") from None


def open_dir(final: str, root: Path | None, create: int | None = None) -> int | None:
    """A descriptor of directory FINAL (a final host path) for this run, or None when it
    is missing and CREATE is None. With CREATE, missing directories are made: the last
    with mode CREATE, the others DIR_MODE, set explicitly. Each component is opened with
    O_NOFOLLOW; a link is followed only if it stays in the expected tree (see the
    module's docstring), else FileError names it."""
    opened = _open_root(root, create is not None)
    if opened is None:
        return None
    stack: list[tuple[int, str]] = [(opened[0], "/")]  # descriptors and their final paths
    base = opened[1]
    todo = deque(p for p in final.split("/") if p not in ("", "."))
    made: set[str] = set()
    links = 0
    try:
        while todo:
            part = todo.popleft()
            fd, where = stack[-1]
            shown = _joined(where, part)
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop()[0])
                elif root is not None:
                    raise FileError(f"refusing {final}: a symbolic link on the way leads "
                                    "above --root; every file must stay under the root")
                continue
            _check_name(part, shown)
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if create is None:
                    return None
                try:  # the mode again on the open directory below: the umask aside
                    os.mkdir(part, create if not todo else DIR_MODE, dir_fd=fd)
                    made.add(shown)
                except FileExistsError:
                    pass  # made meanwhile: opened (and judged) like any other
                except OSError as exc:
                    raise os_error(exc, shown, "create the directory") from None
                todo.appendleft(part)
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise os_error(exc, shown, "open") from None
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISLNK(info.st_mode):
                    raise FileError(f"cannot write under {shown}: it is not a directory; "
                                    "move it away or choose another path") from None
                links += 1
                if links > MAX_LINKS:
                    raise FileError(f"refusing {final}: more than {MAX_LINKS} symbolic "
                                    "links on the way to it") from None
                dest = os.readlink(part, dir_fd=fd)
                _judge_link(shown, dest, info, root, base)
                if dest.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop()[0])
                    if root is not None:
                        dest = os.path.relpath(os.path.normpath(dest), base)
                todo.extendleft(reversed([p for p in dest.split("/") if p not in ("", ".")]))
                continue
            if create is not None and shown in made:  # `made` is only filled with CREATE
                os.fchmod(nfd, create if not todo else DIR_MODE)  # explicit, umask aside
            stack.append((nfd, shown))
        fd = stack.pop()[0]
        return fd
    finally:
        for fd, _where in stack:
            os.close(fd)


def _judge_link(shown: str, dest: str, info: os.stat_result, root: Path | None,
                base: str) -> None:
    """Refuse a parent link that leaves the expected tree. Under --root a relative link
    is judged as its components are walked (`..` above the root is refused there)."""
    if root is not None:
        if dest.startswith("/"):
            target = os.path.normpath(dest)
            if not (target == base or target.startswith(base.rstrip("/") + "/")):
                raise FileError(f"refusing {shown}: it is a symbolic link to {dest}, outside "
                                "--root; every file must stay under the root") from None
        return
    if info.st_uid not in (0, os.geteuid()):
        raise FileError(f"refusing {shown}: it is a symbolic link (to {dest}) made by "
                        f"{_owner_name(info.st_uid)}, not by root; CloudRig follows only "
                        "links root made: replace it with the real directory, or give the "
                        "real path in the answers") from None


@contextlib.contextmanager
def _parent(path: str, root: Path | None, create: int | None = None
            ) -> Iterator[tuple[int | None, str]]:
    """(descriptor of PATH's directory or None when missing, PATH's file name)."""
    if not path.startswith("/"):
        raise ValueError(f"file targets must be absolute paths, not {path!r}")
    directory, name = os.path.split(path.rstrip("/"))
    if not name:
        raise FileError(f"cannot write {path}: it names a directory, not a file")
    _check_name(name, path)
    fd = open_dir(directory, root, create)
    try:
        yield fd, name
    finally:
        if fd is not None:
            os.close(fd)


@dataclass(frozen=True)
class Current:
    """A file as it is on disk, read without following a link."""

    data: bytes
    info: os.stat_result

    @property
    def mode(self) -> int:
        return stat.S_IMODE(self.info.st_mode)


def _read_at(fd: int, name: str, path: str) -> Current | None:
    """NAME in directory FD, or None when absent; a link, a directory or anything but a
    regular file is refused (FileError naming PATH)."""
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_error(exc, path, "read") from None
    if stat.S_ISLNK(info.st_mode):
        raise _link_refused(path, os.readlink(name, dir_fd=fd))
    if stat.S_ISDIR(info.st_mode):
        raise FileError(f"cannot write {path}: it is a directory; move the directory away "
                        "or choose another path")
    if not stat.S_ISREG(info.st_mode):
        raise FileError(f"refusing {path}: it is not a regular file (a device, pipe or "
                        "socket); move it away and rerun")
    try:
        handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_refused(path, os.readlink(name, dir_fd=fd)) from None
        raise os_error(exc, path, "read") from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):  # swapped since the look above
            raise FileError(f"refusing {path}: it changed into something other than a "
                            "file while CloudRig read it; rerun")
        chunks = []
        while chunk := os.read(handle, 1 << 20):
            chunks.append(chunk)
        return Current(b"".join(chunks), info)
    except OSError as exc:
        raise os_error(exc, path, "read") from None
    finally:
        os.close(handle)


def current(path: str, root: Path | None) -> Current | None:
    """The file at final host path PATH for this run (None when absent), safely."""
    with _parent(path, root) as (fd, name):
        return None if fd is None else _read_at(fd, name, path)


def read_path(path: str, root: Path | None) -> bytes | None:
    return None if (found := current(path, root)) is None else found.data


def read_current(item: FileWrite, root: Path | None) -> bytes | None:
    return read_path(item.path, root)


# ---------------------------------------------------------------- preview and apply


class FileView(BaseModel):
    """A file as the preview shows it: action, mode, owner and a diff (never a secret)."""

    path: str
    action: Literal["create", "update", "unchanged"]
    mode: str
    owner: str | None
    diff: str
    secret: bool
    mode_drift: str | None = None


def view(item: FileWrite, root: Path | None) -> FileView:
    found = current(item.path, root)
    old = found.data if found else None
    new = item.payload()
    action = "create" if old is None else ("unchanged" if old == new else "update")
    if item.secret:
        diff = f"(secret content, {len(new)} bytes: not shown)"
    elif item.binary is not None:
        diff = "" if action == "unchanged" else f"(binary content, {len(new)} bytes)"
    elif action == "unchanged":
        diff = ""
    else:
        old_text = (old or b"").decode("utf-8", errors="replace")
        diff = "".join(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                item.content.splitlines(keepends=True),
                fromfile="/dev/null" if old is None else item.path,
                tofile=item.path,
            )
        )
    mode_drift = None
    if found is not None and found.mode != item.mode:
        mode_drift = f"mode {found.mode:04o} on disk, {item.mode:04o} planned"
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
    staged: str | None = None
    """What is left for the target host (the planned owner, not set under --root)."""

    def sentence(self) -> str:
        text = f"{self.path}: {self.action}"
        if self.backup:
            text += f" (previous version saved as {self.backup})"
        if self.note:
            text += f"; {self.note}"
        return text


def backup_name(path: Path, now: datetime | None = None,
                exists: Callable[[Path], bool] | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%dT%H%M%S")
    taken = exists or (lambda p: os.path.lexists(p))
    candidate = path.with_name(f"{path.name}.cloudrig-{stamp}.bak")
    counter = 1
    while taken(candidate):
        candidate = path.with_name(f"{path.name}.cloudrig-{stamp}-{counter}.bak")
        counter += 1
    return candidate


def _backup_at(fd: int, name: str, found: Current, directory: str) -> str:
    """Keep FOUND (NAME's content, read without following a link) as NAME's next backup
    in directory FD, with its mode, owner (as root) and times; returns its final path."""

    def taken(candidate: Path) -> bool:
        try:
            os.stat(candidate.name, dir_fd=fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    backup = backup_name(Path(name), exists=taken).name
    ids = (found.info.st_uid, found.info.st_gid) if os.geteuid() == 0 else None
    path = _joined(directory, backup)
    try:
        write_at(fd, backup, found.data, found.mode, ids,
                 (found.info.st_atime_ns, found.info.st_mtime_ns))
    except OSError as exc:
        raise os_error(exc, path, "back up the current file as") from None
    return path


BACKUP = re.compile(r"\.cloudrig-(\d{8}T\d{6})(?:-(\d+))?\.bak$")


def backups_of(target: Path) -> list[Path]:
    """CloudRig's backups of `target` (`backup_name`), oldest first: by stamp, then by
    the counter added within one second (a plain name sort would put `-1` first)."""
    found = []
    try:
        entries = os.listdir(target.parent)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if not entry.startswith(target.name):
            continue
        match = BACKUP.fullmatch(entry[len(target.name):])
        if match:
            found.append(((match[1], int(match[2] or 0)), target.parent / entry))
    return [path for _key, path in sorted(found)]


def planned_ids(item: FileWrite) -> tuple[int, int] | None:
    """The uid and gid ITEM's owner and group have here, or None (none planned, or the
    account does not exist yet)."""
    if not item.owner:
        return None
    try:
        return (pwd.getpwnam(item.owner).pw_uid,
                grp.getgrnam(item.group or item.owner).gr_gid)
    except KeyError:
        return None


def _owner_plan(item: FileWrite, root: Path | None) -> tuple[tuple[int, int] | None, str | None]:
    """(ids to give the file, or None; the note when a planned owner is not set)."""
    if not item.owner:
        return None, None
    owner = f"{item.owner}:{item.group or item.owner}"
    if root is not None:
        return None, f"owner {owner} not set under --root"
    ids = planned_ids(item)
    if ids is None:
        return None, f"owner {owner} does not exist yet; not set"
    if os.geteuid() != 0:
        return None, f"owner {owner} needs root; not set"
    return ids, None


Recorder = Callable[[bool, str | None], None]
"""Called once the file is about to change: (CloudRig creates it, its first backup)."""


def apply_file(item: FileWrite, root: Path | None, dry_run: bool = False,
               record: Recorder | None = None) -> FileOutcome:
    """Write one planned file if it differs (content, mode or owner); back up a
    different existing file first. RECORD learns, before the file changes, whether
    CloudRig creates it or replaces what was there (and that version's backup)."""
    new = item.payload()
    ids, note = _owner_plan(item, root)

    def unchanged(found: Current | None) -> bool:
        return (found is not None and found.data == new and found.mode == item.mode
                and (ids is None or (found.info.st_uid, found.info.st_gid) == ids))

    if dry_run:
        found = current(item.path, root)
        if unchanged(found):
            return FileOutcome(path=item.path, action="unchanged")
        return FileOutcome(path=item.path,
                           action="would create" if found is None else "would update")
    staged = f"chown {item.owner}:{item.group or item.owner} {item.path}" if (
        root is not None and item.owner) else None
    directory = os.path.dirname(item.path)
    with _parent(item.path, root, create=item.dir_mode or DIR_MODE) as (fd, name):
        assert fd is not None
        found = _read_at(fd, name, item.path)
        try:
            sweep_at(fd, name)
        except OSError as exc:
            raise os_error(exc, item.path) from None
        if unchanged(found):
            return FileOutcome(path=item.path, action="unchanged", staged=staged)
        backup = None
        if found is not None and found.data != new:
            backup = _backup_at(fd, name, found, directory)
        if record is not None:
            record(found is None, backup)
        try:
            write_at(fd, name, new, item.mode, ids)
        except OSError as exc:
            raise os_error(exc, item.path) from None
    return FileOutcome(path=item.path, action="created" if found is None else "updated",
                       backup=backup, note=note, staged=staged)


def host_path_display(path: Path, root: Path | None) -> str:
    """The final host path of something under --root (for messages)."""
    if root is None:
        return str(path)
    return "/" + str(Path(path).relative_to(root))


def check_file(item: FileWrite, root: Path | None) -> CheckResult:
    found = current(item.path, root)
    if found is None:
        return CheckResult(status=Status.PENDING, detail=f"{item.path} missing")
    if found.data != item.payload():
        return CheckResult(status=Status.DRIFTED, detail=f"{item.path} differs from the plan")
    if found.mode != item.mode:
        return CheckResult(status=Status.DRIFTED,
                           detail=f"{item.path} has mode {found.mode:04o}, expected "
                                  f"{item.mode:04o}")
    ids, _note = _owner_plan(item, root)
    if ids is not None and (found.info.st_uid, found.info.st_gid) != ids:
        return CheckResult(status=Status.DRIFTED,
                           detail=f"{item.path} is owned by {_owner_name(found.info.st_uid)}, "
                                  f"expected {item.owner}")
    if root is not None and item.owner:  # as apply said: the owner is the target's to set
        return CheckResult(status=Status.STAGED,
                           detail=f"{item.path} in place; owner "
                                  f"{item.owner}:{item.group or item.owner} to set on the "
                                  "target host")
    return CheckResult(status=Status.DONE, detail=f"{item.path} in place")


def check_files(items: list[FileWrite], root: Path | None) -> CheckResult:
    return CheckResult.worst([check_file(item, root) for item in items])


def exists(path: str, root: Path | None) -> bool:
    """Whether something is at final host path PATH (a link counts; nothing followed)."""
    with _parent(path, root) as (fd, name):
        if fd is None:
            return False
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False


def remove_file(path: str, root: Path | None, dry_run: bool = False) -> FileOutcome | None:
    """Remove a file CloudRig wrote (teardown); absent is fine (idempotent). A link
    there is removed itself, never what it points to."""
    with _parent(path, root) as (fd, name):
        if fd is None:
            return None
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(info.st_mode):
            raise FileError(f"cannot remove {path}: it is a directory, not the file "
                            "CloudRig wrote; left as it is")
        if not dry_run:
            try:
                os.unlink(name, dir_fd=fd)
                os.fsync(fd)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise os_error(exc, path, "remove") from None
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


def _first_backup(path: str, root: Path | None, backup: str | None) -> str | None:
    """The final path of PATH's backup to restore: BACKUP when given (the one the
    ownership record names), else the oldest beside it."""
    if backup is not None:
        return backup
    backups = backups_of(host_path(path, root))
    return host_path_display(backups[0], root) if backups else None


def restore_view(path: str, root: Path | None, backup: str | None = None) -> RestoreView:
    first = _first_backup(path, root, backup)
    if first is None:
        return RestoreView(path=path, backup=None, action="kept")
    kept = current(first, root)
    if kept is None:
        raise FileError(f"cannot restore {path}: its backup {first} is gone; left as it is")
    found = current(path, root)
    same = found is not None and found.data == kept.data and found.mode == kept.mode
    return RestoreView(path=path, backup=first, action="unchanged" if same else "restore")


def restore_file(path: str, root: Path | None, dry_run: bool = False,
                 backup: str | None = None) -> FileOutcome:
    """Put back the backup CloudRig made before its first write of `path` (BACKUP, or
    the oldest beside it), atomically, with that backup's mode and owner. The current
    version is backed up first (nothing is lost); the oldest backup stays, so a second
    restore finds it in place."""
    planned = restore_view(path, root, backup)
    if planned.action != "restore":
        action: Literal["kept", "unchanged"] = planned.action
        return FileOutcome(path=path, action=action, note=planned.sentence().split(": ", 1)[1])
    assert planned.backup is not None
    note = f"from {planned.backup}, the version from before CloudRig's first write"
    if dry_run:
        return FileOutcome(path=path, action="would restore", note=note)
    kept = current(planned.backup, root)
    assert kept is not None
    with _parent(path, root) as (fd, name):
        if fd is None:
            raise FileError(f"cannot restore {path}: its directory is gone")
        found = _read_at(fd, name, path)
        saved = None
        if found is not None:
            saved = _backup_at(fd, name, found, os.path.dirname(path))
        ids = (kept.info.st_uid, kept.info.st_gid) if os.geteuid() == 0 else None
        try:
            write_at(fd, name, kept.data, kept.mode, ids,
                     (kept.info.st_atime_ns, kept.info.st_mtime_ns))
        except OSError as exc:
            raise os_error(exc, path) from None
    return FileOutcome(path=path, action="restored", backup=saved, note=note)


class RemoveView(BaseModel):
    """What teardown does with one file CloudRig wrote, as its ownership record says."""

    path: str
    action: Literal["remove", "restore", "keep", "absent"]
    backup: str | None = None
    text: str


def remove_view(item: FileRemove, owned: OwnedFile | None, root: Path | None) -> RemoveView:
    path = item.path
    if not exists(path, root):
        return RemoveView(path=path, action="absent", text=f"{path}: absent")
    if not item.recorded_only or (owned is not None and owned.created):
        return RemoveView(path=path, action="remove", text=f"{path}: remove")
    if owned is None:
        return RemoveView(path=path, action="keep", text=(
            f"{path}: left as it is: CloudRig has no record of creating it (it was there "
            "before CloudRig, or an older CloudRig wrote it); remove it by hand if it "
            "should go"))
    if owned.backup is None:
        return RemoveView(path=path, action="keep", text=(
            f"{path}: left as it is: it was there before CloudRig (CloudRig changed only "
            "its mode or owner)"))
    if not exists(owned.backup, root):
        return RemoveView(path=path, action="keep", backup=owned.backup, text=(
            f"{path}: left as it is: CloudRig replaced the operator's file, and its backup "
            f"{owned.backup} is gone, so there is nothing to put back"))
    return RemoveView(path=path, action="restore", backup=owned.backup, text=(
        f"{path}: put back from {owned.backup} (CloudRig replaced the operator's file "
        "there)"))


def teardown_file(item: FileRemove, owned: OwnedFile | None, root: Path | None,
                  dry_run: bool = False) -> FileOutcome | None:
    """Teardown of one file: removed when CloudRig created it, put back from its first
    backup when CloudRig replaced it, else left with the reason (None: absent)."""
    planned = remove_view(item, owned, root)
    if planned.action == "absent":
        return None
    if planned.action == "remove":
        return remove_file(item.path, root, dry_run)
    if planned.action == "restore":
        return restore_file(item.path, root, dry_run, backup=planned.backup)
    return FileOutcome(path=item.path, action="kept", note=planned.text.split(": ", 1)[1])
