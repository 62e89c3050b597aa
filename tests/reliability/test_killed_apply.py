"""`cloudrig apply` killed (SIGKILL) at deterministic points, then resumed.

Two kinds of kill point, each taken in turn until a run finishes before reaching it:
- the n-th atomic rename of the process (every file, backup, state and ownership
  write ends in one), just before or just after it (tests/support/faulty_cloudrig.py);
- the k-th change the fake Consul makes, once it is made and before the client hears
  of it (`FakeService.after_handle`): the policy or token exists, CloudRig never
  learnt its id.

After every kill: each target file is absent or one whole version (A, B, or the
operator's unit that was there before CloudRig), each backup — the names files.py
gives, `NAME.cloudrig-<stamp>[-n].bak` — is a whole earlier version, the state and
the ownership record parse, and every file CloudRig changed is in that record (it is
written before the file changes). Then an apply finishes: nothing is created twice,
no temp file is left; and `teardown --purge` removes what CloudRig created, only
that, and puts the operator's unit back. No assertion depends on timing: the kill
points are counted, not slept to.

Every killed apply is a real process and dies by a real SIGKILL; the processes are
forked from faulty_cloudrig's fork server, which imported CloudRig once, so a round
does not pay an interpreter start. The renders, the final apply and the teardown run
in the test's process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import faulty_cloudrig as faulty
from cli_rig import CARBONIO_FILES, CARBONIO_SECRET_FILES, DB_PASSWORD, closed_port
from fakes.consul import FakeConsul
from fakes.server import Request
from private_cli import ProcedureRig, assert_no_secret

from tui.model import Ownership
from tui.state import ProcedureState

UNIT = CARBONIO_FILES[3]
TOKEN, SQL = CARBONIO_SECRET_FILES
OPERATORS_UNIT = b"[Unit]\nDescription=the operator's own gateway, there before CloudRig\n"
BACKUP = re.compile(r"\.cloudrig-\d{8}T\d{6}(?:-\d+)?\.bak")
KILLED = -signal.SIGKILL
MUTATING = ("PUT", "POST", "PATCH", "DELETE")


def _answers(consul: FakeConsul, address: str, port: int) -> dict[str, object]:
    return {"consul_url": consul.url, "external_address": address, "external_port": port,
            "db_name": "carbonio-files-adm", "db_username": "carbonio-files-adm"}


def _versions(consul: FakeConsul, port: int) -> dict[str, dict[str, object]]:
    # B differs in the external service's file and the gateway entry's (its SNI).
    return {"A": _answers(consul, "db-a.example.com", port),
            "B": _answers(consul, "db-b.example.com", port) | {"sni": "db-b.example.com"}}


def _rig(tmp: Path, consul: FakeConsul) -> ProcedureRig:
    rig = ProcedureRig(tmp=tmp, secrets={"consul_token": consul.management_token,
                                         "db_password": DB_PASSWORD})
    unit = rig.root / UNIT.lstrip("/")
    unit.parent.mkdir(parents=True)
    unit.write_bytes(OPERATORS_UNIT)
    unit.chmod(0o640)
    return rig


def _render(rig: ProcedureRig, answers: dict[str, object], name: str) -> dict[str, bytes]:
    rig.answers = dict(answers)
    out = rig.tmp / f"rendered-{name}"
    result = rig.cli("render", "carbonio", "--answers", str(rig.write_answers()),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    return {final: (out / final.lstrip("/")).read_bytes() for final in CARBONIO_FILES}


def _apply_argv(rig: ProcedureRig) -> list[str]:
    return ["apply", "carbonio", "--answers", str(rig.write_answers()), "--root",
            str(rig.root), "--yes"]


def _faulty(rig: ProcedureRig, fault: dict[str, object]) -> subprocess.CompletedProcess[str]:
    result = faulty.run(rig.env(), _apply_argv(rig), fault, cwd=rig.tmp)
    rig.outputs.append(result.stdout + result.stderr)
    return result


class Wholeness:
    """The invariants that must hold whenever a run has just been killed."""

    def __init__(self, whole: dict[str, set[bytes]]) -> None:
        self.whole = whole
        self.backups_seen = 0

    def check(self, rig: ProcedureRig, consul: FakeConsul, where: str) -> None:
        record = self._record(rig, where)
        secrets = {t["SecretID"].encode() + b"\n" for t in consul.tokens.values()}
        for final in (*CARBONIO_FILES, TOKEN, SQL):
            path = rig.root / final.lstrip("/")
            versions = self.whole.get(final, set())
            if final == TOKEN:
                versions = secrets
            if path.exists():
                data = path.read_bytes()
                if final == SQL:
                    assert data.startswith(b"-- Written by CloudRig") and \
                        data.endswith(b"\\gexec\n"), f"{where}: {final} is partial"
                else:
                    assert data in versions, f"{where}: {final} is partial or mixed"
                if data != OPERATORS_UNIT:
                    assert final in record.files, f"{where}: {final} changed, not recorded"
            for backup in self._backups(path):
                self.backups_seen += 1
                assert backup.read_bytes() in versions, \
                    f"{where}: backup {backup.name} is not a whole version"

    @staticmethod
    def _backups(path: Path) -> list[Path]:
        if not path.parent.is_dir():
            return []
        return [p for p in path.parent.iterdir() if p.name.startswith(path.name)
                and BACKUP.fullmatch(p.name[len(path.name):])]

    @staticmethod
    def _record(rig: ProcedureRig, where: str) -> Ownership:
        state = rig.state / "carbonio.json"
        if state.exists():
            ProcedureState.model_validate_json(state.read_text())
        owned = rig.state / "carbonio.owned.json"
        if not owned.exists():  # killed before the first record: nothing may have changed
            return Ownership()
        return Ownership.model_validate_json(owned.read_text())


def _settled(rig: ProcedureRig, consul: FakeConsul, rendered: dict[str, bytes]) -> None:
    """An apply run to the end after the kills: one of everything, files as planned."""
    rig.answers = dict(rig.answers)
    final = rig.cli("apply", "carbonio", "--answers", str(rig.write_answers()),
                    "--root", str(rig.root), "--yes")
    assert final.returncode == 0, final.stderr
    for path in CARBONIO_FILES:
        assert (rig.root / path.lstrip("/")).read_bytes() == rendered[path]
    assert not list(rig.root.rglob("*.tmp")), "a killed write's temp file was left"
    assert not list(rig.state.rglob("*.tmp"))
    state = json.loads((rig.state / "carbonio.json").read_text())
    assert state["last_run"]["outcome"] == "done"
    assert len(consul.kv) == 3
    policies = [p for p in consul.policies.values() if p["Name"] == "carbonio-gateway-policy"]
    assert len(policies) == 1
    linked = [t for t in consul.tokens.values()
              if any(link.get("ID") == policies[0]["ID"] for link in t.get("Policies") or [])]
    assert len(linked) == 1, "a killed run left a second gateway token in Consul"
    record = Ownership.model_validate_json((rig.state / "carbonio.owned.json").read_text())
    # What a killed run created before learning its id is CloudRig's all the same.
    assert record.ids("consul-policy") == [policies[0]["ID"]]
    assert record.ids("consul-token") == [linked[0]["AccessorID"]]


def _purged(rig: ProcedureRig, consul: FakeConsul) -> None:
    """teardown --purge: what CloudRig made is gone, the operator's unit is back."""
    down = rig.cli("teardown", "carbonio", "--answers", str(rig.write_answers()),
                   "--root", str(rig.root), "--yes", "--purge")
    assert down.returncode == 0, down.stderr
    assert [p["Name"] for p in consul.policies.values()] == ["global-management"]
    assert [t["SecretID"] for t in consul.tokens.values()] == [consul.management_token]
    assert consul.kv == {} and consul.config == {} and consul.nodes == {}
    unit = rig.root / UNIT.lstrip("/")
    assert unit.read_bytes() == OPERATORS_UNIT and (unit.stat().st_mode & 0o777) == 0o640
    assert not (rig.root / TOKEN.lstrip("/")).exists()


def test_killed_at_every_rename_leaves_each_file_and_backup_whole(tmp_path: Path) -> None:
    consul = FakeConsul().start()
    try:
        rig = _rig(tmp_path, consul)
        versions = _versions(consul, closed_port())
        rendered = {name: _render(rig, answers, name) for name, answers in versions.items()}
        assert all(rendered["A"][f] != rendered["B"][f] for f in CARBONIO_FILES[1:3])
        whole = {f: {rendered["A"][f], rendered["B"][f]} for f in CARBONIO_FILES}
        whole[UNIT].add(OPERATORS_UNIT)
        checks = Wholeness(whole)
        killed = 0
        for n in range(1, 200):
            rig.answers = dict(versions["AB"[n % 2]])  # each run changes files: backups
            when = ("before-replace", "after-replace")[(n // 2) % 2]
            result = _faulty(rig, {"kill": when, "at": n})
            if result.returncode == 0:
                break  # this run made fewer than n renames: every point was taken
            assert result.returncode == KILLED, result.stderr
            killed += 1
            checks.check(rig, consul, f"killed {when} rename {n}")
        else:
            raise AssertionError("the runs never got past their kill points")
        assert killed >= 12, f"only {killed} kill points"
        assert checks.backups_seen >= killed, "the backups were not checked"
        rig.answers = dict(versions["A"])
        _settled(rig, consul, rendered["A"])
        _purged(rig, consul)
        assert_no_secret([consul.management_token, DB_PASSWORD], rig.outputs, rig.state,
                         rig.root, holders=("token", "create-database.sql"))
    finally:
        consul.stop()


def _kill_client_at(consul: FakeConsul, k: int) -> tuple[list[int], threading.Event]:
    """Have CONSUL kill the client (pid put in the list, then the event set) right after
    it made its K-th change, before the reply."""
    pid: list[int] = []
    known = threading.Event()
    count = 0

    def hook(request: Request) -> bool:
        nonlocal count
        if request.method not in MUTATING:
            return False
        count += 1
        if count != k:
            return False
        known.wait(60)
        os.kill(pid[0], signal.SIGKILL)
        return True

    consul.after_handle = hook
    return pid, known


def test_killed_after_each_remote_change_resumes_and_tears_down_exactly(tmp_path: Path) -> None:
    # Each round starts from nothing: a new Consul (same port and management token, so
    # the files rendered once hold for every round), a new root and state.
    port, management, db_port = closed_port(), str(uuid.uuid4()), closed_port()
    rendered: dict[str, bytes] = {}
    killed = 0
    for k in range(1, 50):
        consul = FakeConsul(management_token=management).start(port=port)
        try:
            rig = _rig(tmp_path / f"change-{k}", consul)
            rig.answers = _versions(consul, db_port)["A"]
            rendered = rendered or _render(rig, rig.answers, "A")
            pid, known = _kill_client_at(consul, k)
            process = faulty.start(rig.env(), _apply_argv(rig), cwd=rig.tmp)
            pid.append(process.pid)
            known.set()
            code = process.wait(timeout=180).returncode
            consul.after_handle = None
            if code == 0:
                break  # fewer than k changes in a whole apply: every one was taken
            assert code == KILLED
            killed += 1
            mutation = [f"{r.method} {r.path}" for r in consul.log
                        if r.method in MUTATING][k - 1]
            whole = {f: {rendered[f]} for f in CARBONIO_FILES}
            whole[UNIT].add(OPERATORS_UNIT)
            Wholeness(whole).check(rig, consul, f"killed after {mutation}")
            _settled(rig, consul, rendered)
            _purged(rig, consul)
        finally:
            consul.stop()
    else:
        raise AssertionError("the applies never got past their kill points")
    assert killed >= 6, f"only {killed} remote kill points"  # policy, token, catalog, …
