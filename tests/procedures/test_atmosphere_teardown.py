"""atmosphere teardown against the fake Keystone: the files CloudRig wrote go (the
operator's inventory entries stay), the Keystone account goes only with --purge and
only what CloudRig created, a second teardown changes nothing, no --yes without a
terminal changes nothing, and no secret shows anywhere. Also: the manual
allocation-strategy step is DONE once the operator confirms it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from atmosphere_rig import ADMIN_PASSWORD, ATMO_PASSWORD, PROVIDER_SECRET, Cli, base_answers
from fakes.keystone import FakeKeystone

from tui.procedures.atmosphere.steps import BEGIN, merge_block, remove_block

OPERATOR_HOSTS = "[atmosphere-old]\nvm9.old.example.org ansible_host=198.51.100.9\n"


@pytest.fixture
def rig(tmp_path):
    fake = FakeKeystone(admin_password=ADMIN_PASSWORD).start()
    fake.add_endpoint("keystone", "identity", "public", f"{fake.url}/v3")
    cli = Cli(tmp_path, secrets={"os_admin_password": ADMIN_PASSWORD,
                                 "atmo_admin_password": ATMO_PASSWORD,
                                 "provider_secret": PROVIDER_SECRET})
    answers = base_answers(tmp_path, host_role="atmosphere", auth_url=f"{fake.url}/v3",
                           atmosphere_url="https://atmo.example.org")
    yield fake, cli, answers, tmp_path
    fake.stop()


def staged(root: Path, path: str | Path) -> Path:
    return root / str(path).lstrip("/")


def deletes(fake: FakeKeystone, since: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.log[since:] if r.method == "DELETE"]


def apply_all(cli: Cli, answers: dict, root: Path) -> str:
    """A full apply on the Atmosphere server, staged under `root`, with an inventory
    that already has the operator's own entries."""
    hosts = staged(root, f"{answers['atmosphere_ansible_dir']}/ansible/hosts")
    hosts.parent.mkdir(parents=True, exist_ok=True)
    hosts.write_text(OPERATOR_HOSTS)
    path = str(cli.write(answers))
    result = cli("apply", "atmosphere", "--answers", path, "--root", str(root), "--yes")
    assert result.returncode == 0, result.stderr
    return path


def written(tmp: Path, root: Path) -> dict[str, Path]:
    return {"provider-json": staged(root, tmp / "provider/my-awesome-cloud.json"),
            "dns": staged(root, tmp / "export/dns/cloud.example.org.zone-fragment"),
            "hosts": staged(root, tmp / "atmosphere-ansible/ansible/hosts"),
            "group_vars": staged(root, tmp / "atmosphere-ansible/ansible/group_vars/"
                                             "atmosphere-my-awesome-cloud")}


def test_teardown_removes_cloudrigs_files_and_keeps_the_operators(rig):
    fake, cli, answers, tmp = rig
    root = tmp / "root"
    path = apply_all(cli, answers, root)
    files = written(tmp, root)
    assert all(p.exists() for p in files.values())
    assert BEGIN.format(name="my-awesome-cloud") in files["hosts"].read_text()

    result = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes")
    assert result.returncode == 0, result.stderr
    assert not files["provider-json"].exists()
    assert not files["dns"].exists()
    assert not files["group_vars"].exists()
    assert files["hosts"].read_text() == OPERATOR_HOSTS  # byte for byte
    # What cannot be undone here is said, with what to run.
    assert "remove the records you added" in result.stderr
    assert "Atmosphere has no command to remove provider my-awesome-cloud" in result.stderr
    assert "update(active=False, end_date=timezone.now())" in result.stderr
    # Without --purge the Keystone account stays.
    assert fake.user_named("atmoadmin") and fake.project_named("atmoadmin")
    assert deletes(fake) == []
    assert "Traceback" not in result.stderr


def test_purge_deletes_the_keystone_objects_and_a_second_teardown_does_nothing(rig):
    fake, cli, answers, tmp = rig
    other = fake.add_user("someone-else", "pw")
    path = str(cli.write(answers))
    root = tmp / "root"
    applied = cli("apply", "atmosphere", "--answers", path, "--root", str(root), "--yes",
                  "--step", "keystone")
    assert applied.returncode == 0, applied.stderr
    project, user = fake.project_named("atmoadmin"), fake.user_named("atmoadmin")
    admin = fake.role_named("admin")["id"]
    assert project and user and (project["id"], user["id"], admin) in fake.grants

    result = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes",
                 "--purge")
    assert result.returncode == 0, result.stderr
    assert deletes(fake) == [
        f"DELETE /v3/projects/{project['id']}/users/{user['id']}/roles/{admin}",
        f"DELETE /v3/users/{user['id']}", f"DELETE /v3/projects/{project['id']}"]
    assert fake.user_named("atmoadmin") is None and fake.project_named("atmoadmin") is None
    assert not any(g[1] == user["id"] for g in fake.grants)
    assert other["id"] in fake.users and fake.user_named("admin")  # nothing else touched

    before = len(fake.log)
    again = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes",
                "--purge")
    assert again.returncode == 0, again.stderr
    assert deletes(fake, before) == []
    assert [r.method for r in fake.log[before:]
            if r.method not in ("GET", "HEAD") and r.path != "/v3/auth/tokens"] == []
    status = json.loads(cli("status", "atmosphere", "--json").stdout)
    keystone = next(s for s in status["steps"] if s["step"] == "keystone")
    assert keystone["status"] == "pending"


def test_purge_keeps_a_keystone_account_the_operator_made(rig):
    fake, cli, answers, tmp = rig
    project = fake.add_project("atmoadmin")
    user = fake.add_user("atmoadmin", ATMO_PASSWORD)
    path = str(cli.write(answers))
    root = tmp / "root"
    assert cli("apply", "atmosphere", "--answers", path, "--root", str(root), "--yes",
               "--step", "keystone").returncode == 0
    result = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes",
                 "--purge")
    assert result.returncode == 0, result.stderr
    assert deletes(fake) == []
    assert project["id"] in fake.projects and user["id"] in fake.users
    assert "Keystone user atmoadmin was not created by CloudRig" in result.stderr
    assert "openstack user delete --domain default atmoadmin" in result.stderr
    assert "openstack project delete --domain default atmoadmin" in result.stderr


def test_teardown_without_yes_and_without_a_terminal_changes_nothing(rig):
    fake, cli, answers, tmp = rig
    root = tmp / "root"
    path = apply_all(cli, answers, root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    state = (tmp / "state" / "atmosphere.json").read_bytes()
    users, log = dict(fake.users), len(fake.log)
    result = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--purge")
    assert result.returncode == 2
    assert "rerun with --yes" in result.stderr and "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert (tmp / "state" / "atmosphere.json").read_bytes() == state
    assert fake.users == users and len(fake.log) == log  # Keystone not even asked


def test_teardown_needs_no_password_unless_purging(rig):
    fake, cli, answers, tmp = rig
    root = tmp / "root"
    path = apply_all(cli, answers, root)
    cli.secrets.clear()
    result = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes")
    assert result.returncode == 0, result.stderr
    assert not written(tmp, root)["provider-json"].exists()
    purge = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes",
                "--purge")
    assert purge.returncode == 2
    assert "CLOUDRIG_SECRET_OS_ADMIN_PASSWORD" in purge.stderr
    assert deletes(fake) == []


def test_no_secret_in_any_output_state_or_log(rig):
    _fake, cli, answers, tmp = rig
    root = tmp / "root"
    path = apply_all(cli, answers, root)
    cli("status", "atmosphere", "--json")
    cli("confirm", "atmosphere", "allocation-strategy")
    assert cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes",
               "--purge").returncode == 0
    cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes", "--purge")
    cli("status", "atmosphere")
    forms = [f for s in (ADMIN_PASSWORD, ATMO_PASSWORD, PROVIDER_SECRET)
             for f in (s, base64.b64encode(s.encode()).decode(), json.dumps(s)[1:-1])]
    scanned = [p for p in tmp.rglob("*") if p.is_file() and p.name != "secrets.cfg"]
    assert any(p.name == "cloudrig.log" for p in scanned)
    for p in scanned:
        text = p.read_bytes().decode(errors="replace")
        for form in forms:
            assert form not in text, f"secret in {p}"
    assert len(cli.outputs) == 6
    for output in cli.outputs:
        for form in forms:
            assert form not in output


def test_allocation_strategy_is_done_once_confirmed_and_undo_reverts(rig):
    _fake, cli, answers, _tmp = rig
    path = str(cli.write(answers))

    def allocation() -> dict:
        status = cli("status", "atmosphere", "--json", "--answers", path)
        return next(s for s in json.loads(status.stdout)["steps"]
                    if s["step"] == "allocation-strategy")

    before = allocation()
    assert before["status"] == "manual"
    assert before["detail"].startswith("manual — not confirmed yet: Open "
                                       "https://atmo.example.org/admin/core/allocationstrategy")
    assert "`cloudrig confirm atmosphere allocation-strategy`" in before["detail"]

    confirmed = cli("confirm", "atmosphere", "allocation-strategy")
    assert confirmed.returncode == 0, confirmed.stderr
    after = allocation()
    assert after["status"] == "done"
    assert after["detail"].startswith("manual — confirmed 20") and after["detail"].endswith("UTC")
    text = cli("status", "atmosphere", "--answers", path).stdout
    assert "Allocation strategy: manual — confirmed 20" in text
    plan = json.loads(cli("plan", "atmosphere", "--answers", path, "--json",
                          "--step", "allocation-strategy").stdout)
    assert plan["steps"][0]["items"] == []  # nothing left to do by hand

    assert cli("confirm", "atmosphere", "allocation-strategy", "--undo").returncode == 0
    assert allocation()["status"] == "manual"


def test_teardown_names_the_confirmed_strategy_to_delete_and_withdraws_it(rig):
    _fake, cli, answers, tmp = rig
    path = str(cli.write(answers))
    root = tmp / "root"
    assert cli("confirm", "atmosphere", "allocation-strategy").returncode == 0
    result = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes")
    assert result.returncode == 0, result.stderr
    assert ("In https://atmo.example.org/admin/core/allocationstrategy/ open the strategy "
            "whose Provider is my-awesome-cloud, press Delete") in result.stderr
    state = json.loads((tmp / "state" / "atmosphere.json").read_text())
    assert state["confirmations"] == {}
    again = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes")
    assert again.returncode == 0 and "allocationstrategy" not in again.stderr


@pytest.mark.parametrize("operator", ["", OPERATOR_HOSTS, OPERATOR_HOSTS.rstrip("\n"),
                                      "# top\n\n[a]\nx\n\n\n"])
def test_remove_block_undoes_merge_block(operator):
    block = (f"{BEGIN.format(name='p')}\n[p]\nvm1 ansible_host=1.2.3.4\n"
             "# END CloudRig atmosphere p\n")
    merged = merge_block(operator, block, "p")
    kept = remove_block(merged, "p")
    assert kept == (operator if operator.endswith("\n") or not operator else operator + "\n")
    assert remove_block(kept, "p") == kept
    other = merge_block(merged, block.replace(" p\n", " q\n").replace("[p]", "[q]"), "q")
    assert remove_block(other, "p").count("CloudRig atmosphere q") == 2


def test_on_osa_deploy_teardown_removes_user_variables_and_the_exported_copies(rig):
    fake, cli, answers, tmp = rig
    answers["host_role"] = "osa-deploy"
    root = tmp / "root"
    path = apply_all(cli, answers, root)
    user_variables = staged(root, tmp / "openstack_deploy/user_variables_atmosphere.yml")
    export = staged(root, tmp / "export/atmosphere")
    secret_copy = export / "files" / str(tmp / "provider/my-awesome-cloud.json").lstrip("/")
    assert user_variables.exists() and secret_copy.exists()
    assert (export / "provider-json.sh").exists()
    # The operator's own user_variables.yml is never CloudRig's to remove.
    own = staged(root, tmp / "openstack_deploy/user_variables.yml")
    own.write_text("glance_default_store: file\n")

    result = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes")
    assert result.returncode == 0, result.stderr
    assert not user_variables.exists() and own.exists()
    assert "rerun `openstack-ansible setup-infrastructure.yml`" in result.stderr
    assert not secret_copy.exists()
    assert not [p for p in export.rglob("*") if p.is_file()]
    assert ("on atmosphere, undo step provider-json with `cloudrig teardown atmosphere` "
            "there") in result.stderr
    assert deletes(fake) == []

    again = cli("teardown", "atmosphere", "--answers", path, "--root", str(root), "--yes")
    assert again.returncode == 0, again.stderr
    assert "undo step" not in again.stderr and "openstack-ansible" not in again.stderr
    assert own.read_text() == "glance_default_store: file\n"
