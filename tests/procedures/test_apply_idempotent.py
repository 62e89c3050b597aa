"""`apply` is idempotent, detects drift, backs up before rewriting, and asks first."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_rig import CARBONIO_FILES, CARBONIO_SECRET_FILES, files_under, settled

BACKUP = re.compile(r"^(?P<name>.+)\.cloudrig-(?P<stamp>\d{8}T\d{6})(-\d+)?\.bak$")


def snapshot(root: Path) -> dict[Path, tuple[int, int, bytes]]:
    """Every file under root with its inode, mtime and content."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in files_under(root)}


def on_disk(root: Path, final: str) -> Path:
    return root / final.lstrip("/")


def apply(cli, answers: Path, root: Path, *extra: str):
    return cli("apply", "carbonio", "--answers", answers, "--root", root, *extra)


def test_second_apply_reports_unchanged_and_writes_nothing(cli, answers_file: Path,
                                                           tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = apply(cli, answers_file, root, "--yes")
    assert first.returncode == 0, first.stderr
    for path in CARBONIO_FILES + CARBONIO_SECRET_FILES:
        assert f"{path}: created" in first.stderr
    before = snapshot(root)
    assert sorted(before) == sorted(on_disk(root, p)
                                    for p in CARBONIO_FILES + CARBONIO_SECRET_FILES)

    second = apply(cli, answers_file, root, "--yes")
    assert second.returncode == 0, second.stderr
    for path in CARBONIO_FILES:
        assert f"{path}: unchanged" in second.stderr
    assert "created" not in second.stderr and "updated" not in second.stderr
    assert snapshot(root) == before  # same inodes, mtimes and bytes; no backups


def test_hand_edit_is_drift_then_backed_up_and_rewritten(cli, answers_file: Path,
                                                         tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert apply(cli, answers_file, root, "--yes").returncode == 0
    status = cli("status", "carbonio", "--json")
    assert status.returncode == 1  # manual steps remain (see CARBONIO_MANUAL)
    assert settled(status.stdout), status.stdout

    final = "/etc/carbonio/gateway/service-discover/gateway-config.hcl"
    target = on_disk(root, final)
    planned = target.read_bytes()
    edited = planned + b"# hand edit\n"
    target.write_bytes(edited)

    status = cli("status", "carbonio", "--json")
    assert status.returncode != 0
    steps = {s["step"]: s for s in json.loads(status.stdout)["steps"]}
    assert steps["gateway-config"]["status"] == "drifted"
    assert final in steps["gateway-config"]["detail"]
    assert settled(status.stdout.replace('"drifted"', '"done"'))

    result = apply(cli, answers_file, root, "--yes")
    assert result.returncode == 0, result.stderr
    backups = [p for p in target.parent.iterdir() if BACKUP.match(p.name)]
    assert len(backups) == 1
    assert BACKUP.match(backups[0].name)["name"] == "gateway-config.hcl"
    assert backups[0].read_bytes() == edited
    assert target.read_bytes() == planned
    shown = f"/{backups[0].relative_to(root)}"
    assert f"{final}: updated (previous version saved as {shown})" in result.stderr

    assert settled(cli("status", "carbonio", "--json").stdout)


def test_mode_change_is_drift_and_repaired_without_a_backup(cli, answers_file: Path,
                                                            tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert apply(cli, answers_file, root, "--yes").returncode == 0
    target = on_disk(root, CARBONIO_FILES[0])
    target.chmod(0o600)
    status = json.loads(cli("status", "carbonio", "--json").stdout)
    policy = next(s for s in status["steps"] if s["step"] == "policy")
    assert policy["status"] == "drifted" and "mode 0600" in policy["detail"]
    assert apply(cli, answers_file, root, "--yes").returncode == 0
    assert target.stat().st_mode & 0o777 == 0o644
    assert not [p for p in target.parent.iterdir() if BACKUP.match(p.name)]


def test_apply_without_yes_and_no_tty_refuses(cli, answers_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = apply(cli, answers_file, root)
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert not root.exists()
    assert files_under(cli.state) == []


def test_dry_run_writes_nothing(cli, answers_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = apply(cli, answers_file, root, "--dry-run")
    assert result.returncode == 0, result.stderr
    for path in CARBONIO_FILES:  # the token comes from Consul: not created in a dry run
        assert f"{path}: would create" in result.stderr
    assert not root.exists()
    assert not (cli.state / "carbonio.json").exists()  # no state recorded for a dry run

    assert apply(cli, answers_file, root, "--yes").returncode == 0
    on_disk(root, CARBONIO_FILES[1]).write_text("{}\n")
    before = snapshot(root)
    result = apply(cli, answers_file, root, "--dry-run")
    assert f"{CARBONIO_FILES[1]}: would update" in result.stderr
    assert snapshot(root) == before


def test_render_writes_the_four_files(cli, answers_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("render", "carbonio", "--answers", answers_file, "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(files_under(out)) == sorted(on_disk(out, p) for p in CARBONIO_FILES)
    plan = json.loads(cli("plan", "carbonio", "--answers", answers_file, "--root", out,
                          "--json").stdout)
    files = [item for step in plan["steps"] for item in step["items"] if item["kind"] == "file"]
    rendered = [f for f in files if f["path"] in CARBONIO_FILES]
    assert sorted(f["path"] for f in rendered) == sorted(CARBONIO_FILES)
    assert {f["action"] for f in rendered} == {"unchanged"}
    # What render leaves out holds a secret, and apply would create it.
    assert {(f["path"], f["action"], f["secret"]) for f in files if f not in rendered} == {
        (CARBONIO_SECRET_FILES[1], "create", True)}


def test_apply_single_step(cli, answers_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = apply(cli, answers_file, root, "--yes", "--step", "unit")
    assert result.returncode == 0, result.stderr
    assert files_under(root) == [on_disk(root, CARBONIO_FILES[3])]
