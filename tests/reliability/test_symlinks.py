"""A hostile host: links planted where CloudRig reads, backs up and writes.

A service user who owns a directory CloudRig writes in can plant
`policies.json -> /etc/shadow`; under --root, `ROOT/etc -> /x` would send every
file outside the root. CloudRig refuses both (exit 1, one sentence naming the path),
never reads the link's target for a diff, never copies it into a backup, and
follows a parent link only when it stays in the expected tree.
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest
from cli_rig import CARBONIO_FILES

from tui.files import FileError, apply_file, check_file, current, host_path, view
from tui.model import FileWrite

POLICIES = CARBONIO_FILES[0]
SHADOW = "root:$6$SECRET-HASH-FROM-SHADOW:19000:0:99999:7:::\n"


def outside_file(tmp_path: Path) -> Path:
    """A file outside every tree CloudRig writes, standing for /etc/shadow."""
    shadow = tmp_path / "outside" / "shadow"
    shadow.parent.mkdir()
    shadow.write_text(SHADOW)
    shadow.chmod(0o600)
    return shadow


def everything_under(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.rglob("*")
                   if p.is_file() and not p.is_symlink())


def test_a_planted_link_is_never_read_backed_up_or_written_through(cli, answers_file, tmp_path):
    root = tmp_path / "root"
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", root,
               "--yes").returncode == 0
    shadow = outside_file(tmp_path)
    target = host_path(POLICIES, root)
    target.unlink()
    target.symlink_to(shadow)

    plan = cli("plan", "carbonio", "--answers", answers_file, "--root", root)
    apply = cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes")
    for result in (plan, apply):
        assert result.returncode == 1, result.output
        assert "SECRET-HASH" not in result.output
        assert "Traceback" not in result.output
        assert f"refusing {POLICIES}: it is a symbolic link" in result.stderr
    assert shadow.read_text() == SHADOW and (shadow.stat().st_mode & 0o777) == 0o600
    assert target.is_symlink()
    assert "SECRET-HASH" not in everything_under(root)  # no backup copied it
    assert "SECRET-HASH" not in everything_under(cli.state)
    state = json.loads((cli.state / "carbonio.json").read_text())
    assert state["last_run"]["outcome"] == "failed"
    assert state["last_run"]["message"].startswith(f"refusing {POLICIES}")


@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_a_symlinked_parent_under_root_cannot_send_files_outside(cli, answers_file, tmp_path,
                                                                 link):
    root = tmp_path / "root"
    elsewhere = tmp_path / "x"
    elsewhere.mkdir()
    root.mkdir()
    (root / "etc").symlink_to(elsewhere if link == "absolute" else Path("..") / "x")
    result = cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes")
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output
    assert "every file must stay under the root" in result.stderr
    assert "/etc" in result.stderr
    assert list(elsewhere.iterdir()) == []  # not one file, the token least of all
    assert not (root / "lib").exists() or not any((root / "lib").rglob("*.service"))


def test_a_link_that_stays_inside_root_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real-etc").mkdir(parents=True)
    (root / "etc").symlink_to("real-etc")
    (root / "lib").symlink_to(root / "real-etc")  # absolute, but inside the root
    for path in ("/etc/carbonio/a.json", "/lib/systemd/b.service"):
        assert apply_file(FileWrite(path=path, content="x\n"), root).action == "created"
    assert (root / "real-etc/carbonio/a.json").read_text() == "x\n"
    assert (root / "real-etc/systemd/b.service").read_text() == "x\n"


def test_a_target_link_is_refused_even_inside_the_tree(tmp_path: Path) -> None:
    """Reading, backing up and replacing all refuse a link at the target itself."""
    root = tmp_path / "root"
    item = FileWrite(path="/etc/app/config.json", content="{}\n")
    apply_file(item, root)
    target = host_path(item.path, root)
    real = target.with_name("real.json")
    real.write_text("operator's\n")
    target.unlink()
    target.symlink_to("real.json")
    for attempt in (lambda: view(item, root), lambda: apply_file(item, root),
                    lambda: check_file(item, root), lambda: current(item.path, root)):
        with pytest.raises(FileError, match=r"refusing /etc/app/config\.json: it is a "
                                            r"symbolic link \(to real\.json\)"):
            attempt()
    assert real.read_text() == "operator's\n" and target.is_symlink()
    assert sorted(p.name for p in target.parent.iterdir()) == ["config.json", "real.json"]


def _nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's link needs root")
def test_on_the_host_a_parent_link_made_by_another_user_is_refused(tmp_path: Path) -> None:
    """Without --root the tree is the host: a link is followed only if root (or the
    user running CloudRig) made it; one the service user planted is refused."""
    base = tmp_path / "etc-carbonio"
    base.mkdir()
    elsewhere = tmp_path / "shadow-dir"
    elsewhere.mkdir()
    planted = base / "gateway"
    planted.symlink_to(elsewhere)
    os.lchown(planted, _nobody().pw_uid, _nobody().pw_gid)
    item = FileWrite(path=f"{planted}/token", content="t0ken\n", mode=0o600)
    with pytest.raises(FileError, match=rf"refusing {planted}: it is a symbolic link .* made "
                                        r"by nobody, not by root"):
        apply_file(item, None)
    assert list(elsewhere.iterdir()) == []

    os.lchown(planted, 0, 0)  # the same link, made by root: the operator's layout
    assert apply_file(item, None).action == "created"
    assert (elsewhere / "token").read_text() == "t0ken\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="setting another owner needs root")
def test_owner_is_set_on_exactly_the_file_written(tmp_path: Path) -> None:
    """The planned owner goes on the file as it is written (before the rename): the
    directory and the files beside it keep theirs — nothing is chowned recursively."""
    nobody = _nobody()
    directory = tmp_path / "service-discover"
    neighbour = directory / "policies.json"
    item = FileWrite(path=str(directory / "token"), content="t\n", mode=0o600,
                     owner="nobody", group=_group_of(nobody), dir_mode=0o750)
    outcome = apply_file(item, None)
    assert outcome.note is None
    token = directory / "token"
    assert (token.stat().st_uid, token.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert (token.stat().st_mode & 0o777) == 0o600
    neighbour.write_text("{}")
    assert directory.stat().st_uid == 0 and neighbour.stat().st_uid == 0
    assert check_file(item, None).status.value == "done"
    os.chown(token, 0, 0)  # someone changed it: drift, repaired by the next write
    assert check_file(item, None).status.value == "drifted"
    assert apply_file(item, None).action == "updated"
    assert token.stat().st_uid == nobody.pw_uid


def _group_of(user: pwd.struct_passwd) -> str:
    import grp

    return grp.getgrgid(user.pw_gid).gr_name


def test_carbonio_plans_no_recursive_chown(cli, answers_file, tmp_path):
    plan = cli("plan", "carbonio", "--answers", answers_file, "--root", tmp_path / "root",
               "--json")
    assert plan.returncode == 0, plan.stderr
    commands = [item["command"] for step in json.loads(plan.stdout)["steps"]
                for item in step["items"] if item["kind"] == "command"]
    assert not [c for c in commands if c.startswith("chown")], commands


def test_cloudblue_never_merges_a_planted_config_json(tmp_path: Path) -> None:
    """cloudblue reads config.json to keep the keys it does not manage: that read, too,
    refuses a link (the merged file would otherwise carry the link target's bytes)."""
    from cloudblue_rig import started_rig

    with started_rig(tmp_path) as rig:
        shadow = outside_file(tmp_path)
        config = rig.root / "etc/cloudblue-connector/config.json"
        config.symlink_to(shadow)
        plan = rig.cli("plan", "cloudblue", "--answers", str(rig.write_answers()), "--root",
                       str(rig.root))
        assert "refusing /etc/cloudblue-connector/config.json: it is a symbolic link" in \
            plan.stdout + plan.stderr
        assert "SECRET-HASH" not in plan.stdout + plan.stderr
        applied = rig.apply()
        assert applied.returncode == 1 and "Traceback" not in applied.stderr
        assert "refusing /etc/cloudblue-connector/config.json" in applied.stderr
        assert config.is_symlink() and shadow.read_text() == SHADOW
        assert "SECRET-HASH" not in everything_under(rig.root)
