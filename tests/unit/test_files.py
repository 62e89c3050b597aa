"""The file plan: atomic writes, modes, backups, diffs named by the final path."""

from __future__ import annotations

import os
import re
import stat
from datetime import datetime
from pathlib import Path

import pytest

from tui import atomic
from tui.atomic import atomic_write
from tui.files import (
    apply_file,
    backup_name,
    backups_of,
    check_file,
    host_path,
    remove_file,
    restore_file,
    restore_view,
    view,
)
from tui.model import FileWrite, Status

FINAL = "/etc/carbonio/gateway/service-discover/policies.json"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_creates_with_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        target = tmp_path / "token"
        atomic_write(target, b"abc", 0o600)
        assert target.read_bytes() == b"abc"
        assert mode_of(target) == 0o600
        atomic_write(target, b"def", 0o640)
        assert (target.read_bytes(), mode_of(target)) == (b"def", 0o640)
    finally:
        os.umask(old_umask)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           failing: str) -> None:
    target = tmp_path / "gateway-config.hcl"
    target.write_bytes(b"old content\n")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, failing, boom)
    with pytest.raises(OSError):
        atomic_write(target, b"new content\n", 0o644)
    monkeypatch.undo()
    assert target.read_bytes() == b"old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway-config.hcl"]


def test_backup_name_format_and_collisions(tmp_path: Path) -> None:
    target = tmp_path / "carbonio-gateway.service"
    when = datetime(2024, 1, 2, 3, 4, 5)
    first = backup_name(target, when)
    assert first.name == "carbonio-gateway.service.cloudrig-20240102T030405.bak"
    first.write_text("x")
    assert backup_name(target, when).name == (
        "carbonio-gateway.service.cloudrig-20240102T030405-1.bak")
    assert re.fullmatch(r"carbonio-gateway\.service\.cloudrig-\d{8}T\d{6}\.bak",
                        backup_name(target).name)


def test_apply_file_backs_up_a_different_file_under_root(tmp_path: Path) -> None:
    item = FileWrite(path=FINAL, content='{"new": true}\n', mode=0o600)
    target = host_path(FINAL, tmp_path)
    assert target == tmp_path / FINAL.lstrip("/")

    created = apply_file(item, tmp_path)
    assert (created.action, created.backup) == ("created", None)
    assert mode_of(target) == 0o600
    assert apply_file(item, tmp_path).action == "unchanged"

    target.write_text("hand edited\n")
    updated = apply_file(item, tmp_path)
    assert updated.action == "updated"
    assert updated.backup is not None and updated.backup.startswith(FINAL + ".cloudrig-")
    assert str(tmp_path) not in updated.sentence()
    backup = host_path(updated.backup, tmp_path)
    assert backup.read_text() == "hand edited\n"
    assert target.read_text() == '{"new": true}\n'
    assert leftovers(target.parent) == []


def test_mode_only_change_is_fixed_without_backup(tmp_path: Path) -> None:
    item = FileWrite(path=FINAL, content="x\n", mode=0o600)
    apply_file(item, tmp_path)
    target = host_path(FINAL, tmp_path)
    target.chmod(0o644)
    assert check_file(item, tmp_path).status is Status.DRIFTED
    assert view(item, tmp_path).mode_drift == "mode 0644 on disk, 0600 planned"
    outcome = apply_file(item, tmp_path)
    assert (outcome.action, outcome.backup, mode_of(target)) == ("updated", None, 0o600)
    assert len(list(target.parent.iterdir())) == 1


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    item = FileWrite(path=FINAL, content="x\n")
    assert apply_file(item, tmp_path, dry_run=True).action == "would create"
    assert list(tmp_path.iterdir()) == []


def test_view_diff_is_labelled_with_the_final_path(tmp_path: Path) -> None:
    item = FileWrite(path=FINAL, content="line one\nline two\n")
    new = view(item, tmp_path)
    assert new.action == "create"
    assert new.diff.startswith(f"--- /dev/null\n+++ {FINAL}\n")

    target = host_path(FINAL, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_text("line one\nold two\n")
    changed = view(item, tmp_path)
    assert changed.action == "update"
    assert changed.diff.startswith(f"--- {FINAL}\n+++ {FINAL}\n")
    assert "-old two\n" in changed.diff and "+line two\n" in changed.diff
    assert str(tmp_path) not in changed.model_dump_json()

    target.write_text(item.content)
    assert (view(item, tmp_path).action, view(item, tmp_path).diff) == ("unchanged", "")


def test_view_never_shows_secret_content(tmp_path: Path) -> None:
    item = FileWrite(path="/etc/carbonio/gateway/token", content="tok-123-secret", mode=0o600,
                     secret=True)
    shown = view(item, tmp_path)
    assert "tok-123-secret" not in shown.model_dump_json()
    assert shown.diff == "(secret content, 14 bytes: not shown)"


def test_owner_is_planned_but_not_set_under_root(tmp_path: Path) -> None:
    item = FileWrite(path=FINAL, content="x\n", owner="carbonio-gateway")
    outcome = apply_file(item, tmp_path)
    assert outcome.note == "owner carbonio-gateway:carbonio-gateway not set under --root"
    assert view(item, tmp_path).owner == "carbonio-gateway:carbonio-gateway"


def test_check_file_states(tmp_path: Path) -> None:
    item = FileWrite(path=FINAL, content="x\n")
    assert check_file(item, tmp_path).status is Status.PENDING
    apply_file(item, tmp_path)
    assert check_file(item, tmp_path).status is Status.DONE
    host_path(FINAL, tmp_path).write_text("y\n")
    result = check_file(item, tmp_path)
    assert (result.status, result.detail) == (Status.DRIFTED, f"{FINAL} differs from the plan")


def test_remove_file_is_idempotent(tmp_path: Path) -> None:
    apply_file(FileWrite(path=FINAL, content="x\n"), tmp_path)
    assert remove_file(FINAL, tmp_path, dry_run=True).action == "would remove"
    assert host_path(FINAL, tmp_path).exists()
    assert remove_file(FINAL, tmp_path).action == "removed"
    assert remove_file(FINAL, tmp_path) is None


def test_targets_must_be_absolute(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        host_path("etc/relative", tmp_path)
    assert host_path("/etc/x", None) == Path("/etc/x")


def test_backups_are_ordered_by_time_then_counter(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    for name in ("config.json.cloudrig-20260102T000000.bak",
                 "config.json.cloudrig-20260101T000000-1.bak",
                 "config.json.cloudrig-20260101T000000.bak",
                 "config.json.cloudrig-20260101T000000-10.bak",
                 "config.json.cloudrig-20260101T000000-2.bak",
                 "config.json.other.bak", "xconfig.json.cloudrig-20250101T000000.bak"):
        (tmp_path / name).write_text(name)
    assert [p.name for p in backups_of(target)] == [
        "config.json.cloudrig-20260101T000000.bak",
        "config.json.cloudrig-20260101T000000-1.bak",
        "config.json.cloudrig-20260101T000000-2.bak",
        "config.json.cloudrig-20260101T000000-10.bak",
        "config.json.cloudrig-20260102T000000.bak"]


def test_restore_puts_back_the_first_backup_with_mode_and_owner_once(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file another owner needs root")
    target = host_path(FINAL, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"operator's own\n")
    target.chmod(0o640)
    os.chown(target, 1, 1)
    apply_file(FileWrite(path=FINAL, content="first\n", mode=0o644), tmp_path)
    apply_file(FileWrite(path=FINAL, content="second\n", mode=0o644), tmp_path)
    assert restore_view(FINAL, tmp_path).action == "restore"
    assert restore_file(FINAL, tmp_path, dry_run=True).action == "would restore"
    assert target.read_bytes() == b"second\n"

    outcome = restore_file(FINAL, tmp_path)
    assert outcome.action == "restored" and outcome.backup  # CloudRig's version kept too
    assert target.read_bytes() == b"operator's own\n"
    assert (mode_of(target), target.stat().st_uid, target.stat().st_gid) == (0o640, 1, 1)
    assert leftovers(target.parent) == []
    again = restore_file(FINAL, tmp_path)
    assert again.action == "unchanged" and "nothing to restore" in again.sentence()


def test_restore_leaves_a_file_cloudrig_created(tmp_path: Path) -> None:
    apply_file(FileWrite(path=FINAL, content="x\n"), tmp_path)
    outcome = restore_file(FINAL, tmp_path)
    assert outcome.action == "kept"
    assert "no backup from before CloudRig's first write" in outcome.sentence()
    assert host_path(FINAL, tmp_path).read_text() == "x\n"
