"""Teardown removes only what CloudRig created (its ownership record), carbonio against
the fake Consul: another team's policy of the same name, a KV key that was there
first and a unit file that existed before CloudRig all survive; `--purge` with no
record refuses; a file CloudRig replaced is put back from its first backup.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cli_rig import CARBONIO_FILES

UNIT = CARBONIO_FILES[3]
OPERATORS_UNIT = b"[Unit]\nDescription=the operator's own gateway\n"


def mutations(consul, since: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in consul.log[since:] if r.method in ("PUT", "DELETE")]


def other_team(consul) -> dict[str, object]:
    """Objects of the same names made by someone else, before CloudRig ever ran."""
    policy = consul._policy_record("99999999-0000-0000-0000-000000000001",
                                   "carbonio-gateway-policy", "another team's", "{}")
    consul.policies[policy["ID"]] = policy
    consul.kv["carbonio-files/db-name"] = b"their-db"
    consul.kv["carbonio-files/db-password"] = b"their password"
    return policy


def owned(cli) -> dict:
    return json.loads((cli.state / "carbonio.owned.json").read_text())


def test_purge_without_a_record_refuses_and_deletes_nothing(cli, consul, answers_file, tmp_path):
    other_team(consul)
    root = tmp_path / "root"
    result = cli("teardown", "carbonio", "--answers", answers_file, "--root", root, "--yes",
                 "--purge")
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output
    assert "refusing teardown --purge: there is no record of what CloudRig created for " \
           "carbonio here" in result.stderr
    assert mutations(consul) == []
    assert consul.kv["carbonio-files/db-password"] == b"their password"
    dry = cli("teardown", "carbonio", "--answers", answers_file, "--root", root, "--purge",
              "--dry-run")
    assert dry.returncode == 1 and "refusing teardown --purge" in dry.stderr


def test_purge_removes_only_what_cloudrig_created(cli, consul, answers_file, tmp_path):
    policy = other_team(consul)
    root = tmp_path / "root"
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", root,
               "--yes").returncode == 0
    record = owned(cli)
    kinds = {(o["kind"], o["id"]) for o in record["objects"]}
    token = next(t for t in consul.tokens.values() if t["Description"] ==
                 "Token for carbonio-gateway")
    assert ("consul-token", token["AccessorID"]) in kinds
    assert ("consul-kv", "carbonio-files/db-username") in kinds
    assert ("consul-kv", "carbonio-files/db-name") not in kinds  # it was there first
    assert ("consul-policy", policy["ID"]) not in kinds  # updated, not created
    assert record["files"][UNIT]["created"] is True

    before = len(consul.log)
    result = cli("teardown", "carbonio", "--answers", answers_file, "--root", root, "--yes",
                 "--purge")
    assert result.returncode == 0, result.stderr
    assert sorted(mutations(consul, before)) == sorted([
        "DELETE /v1/acl/token/" + token["AccessorID"],
        "DELETE /v1/kv/carbonio-files/db-username",
        "DELETE /v1/config/terminating-gateway/carbonio-gateway",
        "PUT /v1/catalog/deregister", "PUT /v1/catalog/deregister"])  # service, then node
    assert consul.policy_named("carbonio-gateway-policy")["ID"] == policy["ID"]
    assert consul.kv == {"carbonio-files/db-name": b"carbonio-files-adm",
                         "carbonio-files/db-password": b"db pa'ss \"w0rd\""}
    assert ("ACL policy carbonio-gateway-policy (99999999-0000-0000-0000-000000000001) was "
            "not created by CloudRig") in result.stderr
    assert "KV carbonio-files/db-name, carbonio-files/db-password was not created by " \
           "CloudRig" in result.stderr
    assert not (root / UNIT.lstrip("/")).exists()  # CloudRig created it
    assert not (root / "etc/carbonio/gateway/service-discover/token").exists()
    # What was removed is forgotten: a second teardown changes nothing.
    assert [o["kind"] for o in owned(cli)["objects"]] == []
    before = len(consul.log)
    again = cli("teardown", "carbonio", "--answers", answers_file, "--root", root, "--yes",
                "--purge")
    assert again.returncode == 0 and mutations(consul, before) == []


def test_a_unit_that_was_there_first_is_put_back(cli, consul, answers_file, tmp_path):
    root = tmp_path / "root"
    unit = root / UNIT.lstrip("/")
    unit.parent.mkdir(parents=True)
    unit.write_bytes(OPERATORS_UNIT)
    unit.chmod(0o640)
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", root,
               "--yes").returncode == 0
    assert unit.read_bytes() != OPERATORS_UNIT
    record = owned(cli)["files"][UNIT]
    assert record["created"] is False and record["backup"].startswith(UNIT + ".cloudrig-")

    preview = cli("teardown", "carbonio", "--answers", answers_file, "--root", root,
                  "--dry-run")
    assert f"restore {UNIT}: put back from {record['backup']}" in preview.stdout
    result = cli("teardown", "carbonio", "--answers", answers_file, "--root", root, "--yes")
    assert result.returncode == 0, result.stderr
    assert unit.read_bytes() == OPERATORS_UNIT
    assert stat.S_IMODE(unit.stat().st_mode) == 0o640
    assert f"{UNIT}: restored" in result.stderr
    assert "systemctl stop" not in result.stderr  # the operator's unit is not stopped
    assert "systemctl try-restart carbonio-gateway.service" in result.stderr


def test_files_without_a_record_stay_with_a_reason(cli, consul, answers_file, tmp_path):
    root = tmp_path / "root"
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", root,
               "--yes").returncode == 0
    (cli.state / "carbonio.owned.json").unlink()  # e.g. applied by an older CloudRig
    unit = root / UNIT.lstrip("/")
    content = unit.read_bytes()
    before = len(consul.log)
    result = cli("teardown", "carbonio", "--answers", answers_file, "--root", root, "--yes")
    assert result.returncode == 0, result.stderr
    assert unit.read_bytes() == content
    assert f"{UNIT}: kept; left as it is: CloudRig has no record of creating it" in result.stderr
    assert mutations(consul, before) == []  # the catalog and config entry: not its record
    assert "the terminating-gateway config entry carbonio-gateway was not created by " \
           "CloudRig" in result.stderr


def test_the_record_is_written_before_the_file_changes(tmp_path: Path) -> None:
    """Context records a file before writing it: created, or replaced with the backup
    of the operator's version, which a later write does not displace."""
    from tui.context import Context
    from tui.model import FileWrite

    saved: list[int] = []
    ctx = Context(procedure=None, answers=None, secrets=None, runner=None,  # type: ignore[arg-type]
                  root=tmp_path, step_id="unit")
    ctx.on_owned = lambda: saved.append(len(ctx.ownership.files))  # type: ignore[union-attr]
    target = tmp_path / "etc/app.conf"
    target.parent.mkdir()
    target.write_text("operator's\n")
    ctx.write_file(FileWrite(path="/etc/app.conf", content="one\n"))
    ctx.write_file(FileWrite(path="/etc/app.conf", content="two\n"))
    ctx.write_file(FileWrite(path="/etc/new.conf", content="new\n"))
    record = ctx.ownership.files  # type: ignore[union-attr]
    assert record["/etc/app.conf"].created is False
    first = record["/etc/app.conf"].backup
    assert (tmp_path / first.lstrip("/")).read_text() == "operator's\n"
    assert record["/etc/new.conf"].created is True and record["/etc/new.conf"].step == "unit"
    assert saved == [1, 2]  # saved once per new record, never for the second write


def test_create_records_before_the_call_and_takes_back_a_refusal(tmp_path: Path) -> None:
    """`Context.create`: what the server names is recorded as being created before the
    call (so a run killed before the answer is adopted next time, by its label); a
    4xx refusal (nothing made) takes the record back; any other failure keeps it."""
    import pytest

    from tui.context import Context
    from tui.errors import OperatorError

    class Refused(OperatorError):
        status = 409

    ctx = Context(procedure=None, answers=None, secrets=None, runner=None,  # type: ignore[arg-type]
                  step_id="policy")
    seen: list[list[tuple[str, str | None]]] = []

    def snapshot() -> list[tuple[str, str | None]]:
        return [(o.label, o.id) for o in ctx.ownership.objects]  # type: ignore[union-attr]

    def make() -> dict[str, str]:
        seen.append(snapshot())
        return {"ID": "p-1"}

    assert ctx.create("policy", "gw-policy", make, id_of=lambda made: made["ID"]) == {"ID": "p-1"}
    assert seen == [[("gw-policy", None)]]  # before the call: being created
    assert snapshot() == [("gw-policy", "p-1")] and ctx.owns("policy", "p-1")

    def refused() -> None:
        raise Refused("409 conflict")

    with pytest.raises(Refused):
        ctx.create("kv", "a/b", refused, id="a/b")
    assert not ctx.owns("kv", "a/b")

    def dropped() -> None:
        raise OperatorError("connection reset")  # it may have been made: kept

    with pytest.raises(OperatorError):
        ctx.create("token", "Token for gw", dropped, id_of=lambda made: made)
    assert ("Token for gw", None) in snapshot()
    assert ctx.adopt("token", "Token for gw", "acc-9") and ctx.owns("token", "acc-9")
    assert not ctx.adopt("token", "Token for gw", "acc-10")  # only the one being created
    ctx.forget("token", "acc-9")
    assert not ctx.owns("token", "acc-9")


def test_a_damaged_record_is_never_overwritten(cli, consul, answers_file, tmp_path):
    root = tmp_path / "root"
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", root,
               "--yes").returncode == 0
    record = cli.state / "carbonio.owned.json"
    record.write_text('{"files": {"/etc/x": ')  # cut short by a hand or a bad disk
    again = cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"{record} (CloudRig's record of what it created) cannot be read" in again.stderr
    assert record.read_text() == '{"files": {"/etc/x": '
    purge = cli("teardown", "carbonio", "--answers", answers_file, "--root", root, "--yes",
                "--purge")
    assert purge.returncode == 1 and "refusing teardown --purge" in purge.stderr
