"""Host errors are one sentence naming the path, never a traceback; state stays whole.

A full disk (the target's or the state's), a read-only target, a name over 255
bytes, a directory where a file belongs. The disks are real file systems where the
test may mount one (a 1 MiB tmpfs, filled; a tmpfs remounted read-only); where it
may not (a container without CAP_SYS_ADMIN), tests/support/faulty_cloudrig.py makes
every write under that directory fail the same way, so the assertions are the same.
Each command runs as a process of its own: the stand-in fault patches that process's
`os` from outside, as a full disk reaches it from outside, and dies with it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import faulty_cloudrig as faulty
import pytest
from cli_rig import CARBONIO_FILES, write_answers

from tui.files import FileError, apply_file
from tui.model import FileWrite

POLICIES = CARBONIO_FILES[0]


@dataclass
class Disk:
    """A directory on a small file system of its own (or a stand-in for one)."""

    path: Path
    mounted: bool
    fault: dict[str, str] = field(default_factory=dict)

    def fill(self) -> None:
        """Use up every block (a mounted tmpfs), or have writes there fail ENOSPC."""
        if not self.mounted:
            self.fault = {"errno": "ENOSPC", "under": str(self.path)}
            return
        with open(self.path / "filler", "wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        with contextlib.suppress(OSError), open(self.path / "filler-tail", "wb") as tail:
            while True:  # the last partial block
                tail.write(b"\0")
                tail.flush()

    def free(self) -> None:
        self.fault = {}
        for name in ("filler", "filler-tail"):
            (self.path / name).unlink(missing_ok=True)

    def read_only(self) -> None:
        if not self.mounted:
            self.fault = {"errno": "EROFS", "under": str(self.path)}
            return
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)


@contextlib.contextmanager
def small_disk(path: Path) -> Iterator[Disk]:
    path.mkdir(parents=True)
    mounted = False
    if not os.environ.get("CLOUDRIG_TEST_NO_MOUNT"):  # set it to try the stand-in here
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs",
                                  str(path)], capture_output=True).returncode == 0
    disk = Disk(path, mounted=mounted)
    try:
        yield disk
    finally:
        if disk.mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    with small_disk(tmp_path / "disk") as made:
        yield made


def run(cli, disk: Disk | None, *args: object) -> subprocess.CompletedProcess[str]:
    """`cloudrig ARGS` as a process of its own (forked from faulty_cloudrig's fork
    server), with DISK's stand-in fault patched into it when there is no real small
    or read-only file system."""
    return faulty.run(cli.env, [str(a) for a in args], disk.fault if disk else None,
                      cwd=cli.cwd)


def one_sentence(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    return result.stderr


def state_of(cli) -> dict:
    return json.loads((cli.state / "carbonio.json").read_text())


def test_full_target_disk(cli, answers_file, disk):
    root = disk.path / "root"
    disk.fill()
    failed = run(cli, disk, "apply", "carbonio", "--answers", answers_file, "--root", root,
                 "--yes")
    stderr = one_sentence(failed)
    assert "no space left on device; free space on its file system and rerun" in stderr
    assert state_of(cli)["last_run"]["outcome"] == "failed"
    disk.free()
    resumed = run(cli, disk, "apply", "carbonio", "--answers", answers_file, "--root", root,
                  "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert (root / POLICIES.lstrip("/")).exists()
    assert not list(root.rglob("*.tmp"))


def test_full_state_disk_keeps_the_state_whole(cli, answers_file, tmp_path):
    with small_disk(tmp_path / "statedisk") as disk:
        cli.env["CLOUDRIG_STATE_DIR"] = str(disk.path / "state")
        cli.state = disk.path / "state"
        root = tmp_path / "root"
        assert run(cli, disk, "apply", "carbonio", "--answers", answers_file, "--root", root,
                   "--yes").returncode == 0
        before = (cli.state / "carbonio.json").read_bytes()
        disk.fill()
        changed = write_answers(tmp_path / "b.yaml", consul_url=json.loads(before)["answers"][
            "consul_url"], external_address="db-b.example.com",
            external_port=json.loads(before)["answers"]["external_port"])
        failed = run(cli, disk, "apply", "carbonio", "--answers", changed, "--root", root,
                     "--yes")
        stderr = one_sentence(failed)
        assert f"cannot save CloudRig's state to {cli.state}/" in stderr
        assert "no space left on device" in stderr and "CLOUDRIG_STATE_DIR" in stderr
        assert (cli.state / "carbonio.json").read_bytes() == before  # whole, as it was
        json.loads((cli.state / "carbonio.owned.json").read_text())
        disk.free()


def test_read_only_target(cli, answers_file, disk):
    root = disk.path / "root"
    assert run(cli, disk, "apply", "carbonio", "--answers", answers_file, "--root", root,
               "--yes").returncode == 0
    policies = root / POLICIES.lstrip("/")
    policies.write_text("{}\n")  # drift, so the next apply must write
    disk.read_only()
    failed = run(cli, disk, "apply", "carbonio", "--answers", answers_file, "--root", root,
                 "--yes")
    stderr = one_sentence(failed)
    assert "its file system is read-only; remount it read-write" in stderr
    assert "/etc/carbonio/gateway/service-discover/" in stderr
    assert policies.read_text() == "{}\n"
    assert state_of(cli)["last_run"]["outcome"] == "failed"


def test_a_name_over_255_bytes_in_the_answers_is_refused_before_anything(cli, consul, tmp_path):
    long_name = "d" * 256
    answers = write_answers(tmp_path / "long.yaml", consul_url=consul.url,
                            config_dir=f"/etc/{long_name}")
    root = tmp_path / "root"
    result = run(cli, None, "apply", "carbonio", "--answers", answers, "--root", root, "--yes")
    stderr = one_sentence(result, code=2)
    assert "config_dir" in stderr and "256 bytes" in stderr and "at most 255" in stderr
    assert not root.exists()
    assert not (cli.state / "carbonio.json").exists()


def test_a_file_name_over_255_bytes_is_one_sentence(tmp_path: Path) -> None:
    long = "/etc/app/" + "n" * 300 + ".conf"
    with pytest.raises(FileError, match=r"cannot use /etc/app/n+\.conf: its name n+… is 305 "
                                        r"bytes, more than the 255"):
        apply_file(FileWrite(path=long, content="x"), tmp_path)
    assert not (tmp_path / "etc").exists()


def test_a_directory_where_the_file_belongs(cli, answers_file, tmp_path):
    root = tmp_path / "root"
    (root / POLICIES.lstrip("/")).mkdir(parents=True)
    plan = run(cli, None, "plan", "carbonio", "--answers", answers_file, "--root", root)
    assert f"cannot write {POLICIES}: it is a directory" in one_sentence(plan)
    apply = run(cli, None, "apply", "carbonio", "--answers", answers_file, "--root", root,
                "--yes")
    assert f"cannot write {POLICIES}: it is a directory; move the directory away" in \
        one_sentence(apply)
    state = state_of(cli)
    assert state["last_run"]["outcome"] == "failed"
    assert state["last_run"]["message"].startswith(f"cannot write {POLICIES}")
    assert (root / POLICIES.lstrip("/")).is_dir()
