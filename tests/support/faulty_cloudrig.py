"""`cloudrig` with a host fault injected at a deterministic point (tests only).

Tests start it with `start(env, args, fault)` (or `run`): a real process, forked from
a fork server that imported CloudRig once (multiprocessing's "forkserver" start
method), so a test that kills a hundred runs does not pay a hundred interpreter starts
and imports. Each run is its own process — its own pid, environment, cwd, fds 0-2 and
module state, forked from a server that never ran a command — and dies by a real
SIGKILL. It also runs as `python tests/support/faulty_cloudrig.py ARGS…` (ARGS as for
`cloudrig`, the fault in the environment variable CLOUDRIG_TEST_FAULT). A fault is a
JSON object:

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
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# What `cloudrig apply carbonio` imports, imported once by the fork server (installed
# modules only: the server does not see the tests' sys.path until a child starts).
PRELOAD = ["tui.cli", "tui.cli_commands", "tui.engine", "tui.procedures.carbonio",
           "tui.clients.consul", "tui.clients.postgres", "tui.files", "tui.journal",
           "tui.secrets", "tui.runlock", "tui.signals", "tui.state", "httpx", "pydantic",
           "jinja2", "yaml"]


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


def _inject(fault: dict[str, Any]) -> None:
    if "kill" in fault:
        _kill_at(fault["kill"], int(fault["at"]))
    elif "errno" in fault:
        _fail_under(fault["errno"], fault["under"])


def _child(args: list[str], env: dict[str, str], cwd: str, fault: dict[str, Any],
           out: str, err: str) -> None:
    """In the forked process: what a fresh `cloudrig ARGS` process would have."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, out, os.O_WRONLY | os.O_TRUNC),
                            (2, err, os.O_WRONLY | os.O_TRUNC)):
        opened = os.open(path, flags)
        os.dup2(opened, fd)
        os.close(opened)
    _inject(fault)
    from tui.cli import main as cloudrig

    sys.exit(cloudrig(args))


_context: Any = None


def _forkserver() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


class Run:
    """A `cloudrig` process started by `start`: its PID, and `wait` for its end."""

    def __init__(self, args: Sequence[str | Path], env: dict[str, str],
                 fault: dict[str, Any] | None, cwd: Path | None) -> None:
        self.args = [str(a) for a in args]
        self._out = tempfile.NamedTemporaryFile(prefix="cloudrig-out-")  # noqa: SIM115
        self._err = tempfile.NamedTemporaryFile(prefix="cloudrig-err-")  # noqa: SIM115
        self._process = _forkserver().Process(
            target=_child, args=(self.args, env, str(cwd or Path.cwd()), fault or {},
                                 self._out.name, self._err.name))
        self._process.start()
        self.pid: int = self._process.pid

    def wait(self, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Its exit status (-N when signal N ended it, as `subprocess` says), stdout
        and stderr."""
        self._process.join(timeout)
        if self._process.exitcode is None:
            self._process.kill()
            self._process.join()
            raise subprocess.TimeoutExpired(self.args, timeout)
        code = self._process.exitcode
        self._process.close()
        with self._out, self._err:
            out, err = (f.read().decode("utf-8", errors="replace")
                        for f in (self._out, self._err))
        return subprocess.CompletedProcess(["cloudrig", *self.args], code, out, err)


def start(env: dict[str, str], args: Sequence[str | Path],
          fault: dict[str, Any] | None = None, *, cwd: Path | None = None) -> Run:
    """`cloudrig ARGS` as a real process with ENV as its whole environment, FAULT
    injected, stdin from /dev/null."""
    return Run(args, env, fault, cwd)


def run(env: dict[str, str], args: Sequence[str | Path],
        fault: dict[str, Any] | None = None, *, cwd: Path | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`start`, then `wait` for it."""
    return start(env, args, fault, cwd=cwd).wait(timeout)


def main() -> int:
    _inject(json.loads(os.environ.get("CLOUDRIG_TEST_FAULT") or "{}"))
    from tui.cli import main as cloudrig

    return cloudrig(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
