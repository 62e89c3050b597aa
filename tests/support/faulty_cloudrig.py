"""`cloudrig` with a host fault injected at a deterministic point (tests only).

Run as `python tests/faulty_cloudrig.py ARGS…` (ARGS as for `cloudrig`). The fault
comes from the environment variable CLOUDRIG_TEST_FAULT, a JSON object:

- {"kill": "before-replace" | "after-replace", "at": N}: SIGKILL this process at its
  N-th `os.replace` — every atomic write of a file, a backup or the state ends in
  one — before the rename (the temp file is written and fsynced, the target is not
  touched) or right after it (the rename is done, nothing that follows is);
- {"errno": "ENOSPC" | "EROFS", "under": DIR}: every write under DIR fails as a full
  or read-only file system fails it (data written: ENOSPC; files and directories
  created, renamed or removed: EROFS) — for hosts where a test cannot mount a real
  small or read-only file system.

Without it, this is `cloudrig`. Nothing here is in CloudRig itself: the process is
patched from outside, the way a kill or a full disk reaches it from outside.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
from typing import Any


def _kill_at(when: str, at: int) -> None:
    real = os.replace
    calls = 0

    def replace(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == at and when == "before-replace":
            os.kill(os.getpid(), signal.SIGKILL)
        real(*args, **kwargs)
        if calls == at and when == "after-replace":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace  # type: ignore[assignment]


def _where(path: Any, dir_fd: int | None) -> str:
    """The absolute path a call acts on (PATH relative to DIR_FD, or an fd's file)."""
    if isinstance(path, int):
        return os.readlink(f"/proc/self/fd/{path}")
    path = os.fsdecode(path)
    if dir_fd is not None and not path.startswith("/"):
        return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    return os.path.abspath(path)


def _fail_under(name: str, under: str) -> None:
    code = getattr(errno, name)
    under = os.path.realpath(under)

    def inside(path: Any, dir_fd: int | None = None) -> bool:
        where = _where(path, dir_fd)
        return where == under or where.startswith(under.rstrip("/") + "/")

    def fail(path: str) -> OSError:
        return OSError(code, os.strerror(code), path)

    real_write, real_open, real_mkdir = os.write, os.open, os.mkdir
    real_replace, real_unlink = os.replace, os.unlink

    def write(fd: int, data: Any) -> int:
        if name == "ENOSPC" and inside(fd):
            raise fail(_where(fd, None))
        return real_write(fd, data)

    def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if name == "EROFS" and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR) \
                and inside(path, dir_fd):
            raise fail(_where(path, dir_fd))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if inside(path, dir_fd):
            raise fail(_where(path, dir_fd))  # a new directory needs space, and a writable fs
        real_mkdir(path, mode, dir_fd=dir_fd)

    def replace(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                dst_dir_fd: int | None = None) -> None:
        if name == "EROFS" and inside(dst, dst_dir_fd):
            raise fail(_where(dst, dst_dir_fd))
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def unlink(path: Any, *, dir_fd: int | None = None) -> None:
        if name == "EROFS" and inside(path, dir_fd):
            raise fail(_where(path, dir_fd))
        real_unlink(path, dir_fd=dir_fd)

    os.write, os.open, os.mkdir = write, open_, mkdir  # type: ignore[assignment]
    os.replace, os.unlink = replace, unlink  # type: ignore[assignment]


def main() -> int:
    fault = json.loads(os.environ.get("CLOUDRIG_TEST_FAULT") or "{}")
    if "kill" in fault:
        _kill_at(fault["kill"], int(fault["at"]))
    elif "errno" in fault:
        _fail_under(fault["errno"], fault["under"])
    from tui.cli import main as cloudrig

    return cloudrig(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
