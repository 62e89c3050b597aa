"""Every directory CloudRig creates gets its mode explicitly, whatever the umask.

Under umask 000 the directories on the way to the gateway token must not be
world-writable; under 077 the service user must still be able to reach its config.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_rig import CARBONIO_FILES, CARBONIO_SECRET_FILES

from tui.atomic import make_dirs
from tui.files import apply_file
from tui.model import FileWrite


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def run_with_umask(umask: int, argv: list[str], env: dict[str, str]
                   ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=180,
                          preexec_fn=lambda: os.umask(umask))


@pytest.mark.parametrize("umask", [0o000, 0o077], ids=["umask000", "umask077"])
def test_apply_sets_every_created_directory_mode_whatever_the_umask(cli, answers_file, tmp_path,
                                                                    umask):
    root = tmp_path / "root"
    state = tmp_path / "deep" / "state"  # its parents are created too
    env = {**cli.env, "CLOUDRIG_STATE_DIR": str(state)}
    result = run_with_umask(umask, [sys.executable, "-m", "tui", "apply", "carbonio",
                                    "--answers", str(answers_file), "--root", str(root),
                                    "--yes"], env)
    assert result.returncode == 0, result.stderr
    directories = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert len(directories) >= 8  # etc, carbonio, gateway, service-discover, lib, systemd…
    wrong = {str(d.relative_to(root)): oct(mode(d)) for d in directories if mode(d) != 0o755}
    assert wrong == {}, wrong
    files = {f: mode(root / f.lstrip("/")) for f in (*CARBONIO_FILES, *CARBONIO_SECRET_FILES)}
    assert files[CARBONIO_SECRET_FILES[0]] == 0o600  # the token
    assert files[CARBONIO_SECRET_FILES[1]] == 0o600
    assert all(m == 0o644 for f, m in files.items() if f in CARBONIO_FILES), files
    assert mode(state) == 0o700 and mode(state.parent) == 0o755
    assert all(mode(p) == 0o600 for p in state.iterdir() if p.is_file())


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_a_directory_made_for_a_file_gets_the_planned_mode(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        apply_file(FileWrite(path="/srv/app/conf.d/token", content="t\n", mode=0o600,
                             dir_mode=0o750), tmp_path / "root")
        make_dirs(tmp_path / "state" / "a" / "b", 0o700)
    finally:
        os.umask(old)
    root = tmp_path / "root"
    assert [mode(root), mode(root / "srv"), mode(root / "srv/app")] == [0o755] * 3
    assert mode(root / "srv/app/conf.d") == 0o750
    assert mode(root / "srv/app/conf.d/token") == 0o600
    assert [mode(tmp_path / "state"), mode(tmp_path / "state/a")] == [0o755, 0o755]
    assert mode(tmp_path / "state/a/b") == 0o700


def test_existing_directories_keep_their_mode(tmp_path: Path) -> None:
    """Only what CloudRig creates gets a mode: the operator's directories keep theirs."""
    existing = tmp_path / "root" / "etc"
    existing.mkdir(parents=True)
    existing.chmod(0o711)
    apply_file(FileWrite(path="/etc/app/x.conf", content="x\n"), tmp_path / "root")
    assert mode(existing) == 0o711
    assert mode(existing / "app") == 0o755
