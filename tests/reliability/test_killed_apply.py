"""`cloudrig apply` killed with SIGKILL at random moments, many times.

Two answers files (A and B) render different files. Runs alternate between them and
each is killed after a random delay; after every kill each target file is absent,
A's version or B's version — never partial, never a mix — and each backup is a whole
earlier version. Then one apply runs to the end: it finishes, and no temp file of a
killed write is left anywhere. The delays come from a seeded generator (printed on
failure) so a failing sequence can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import CARBONIO_FILES, DB_PASSWORD, closed_port
from fakes.consul import FakeConsul
from private_cli import ProcedureRig, assert_no_secret

ROUNDS = int(os.environ.get("CLOUDRIG_KILL_ROUNDS", "24"))


def _answers(consul: FakeConsul, address: str, port: int) -> dict[str, object]:
    return {"consul_url": consul.url, "external_address": address, "external_port": port,
            "db_name": "carbonio-files-adm", "db_username": "carbonio-files-adm"}


def _render(rig: ProcedureRig, answers: dict[str, object], name: str) -> dict[str, bytes]:
    rig.answers = dict(answers)
    out = rig.tmp / f"rendered-{name}"
    result = rig.cli("render", "carbonio", "--answers", str(rig.write_answers()),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    return {final: (out / final.lstrip("/")).read_bytes() for final in CARBONIO_FILES}


def test_killed_applies_leave_each_file_old_or_new(tmp_path: Path) -> None:
    consul = FakeConsul().start()
    try:
        _run(tmp_path, consul)
    finally:
        consul.stop()


def _run(tmp_path: Path, consul: FakeConsul) -> None:
    rig = ProcedureRig(tmp=tmp_path,
                       secrets={"consul_token": consul.management_token,
                                "db_password": DB_PASSWORD})
    versions = {"A": _answers(consul, "db-a.example.com", closed_port()),
                "B": _answers(consul, "db-b.example.com", closed_port())}
    rendered = {name: _render(rig, answers, name) for name, answers in versions.items()}
    assert any(rendered["A"][f] != rendered["B"][f] for f in CARBONIO_FILES)
    whole = {f: {rendered["A"][f], rendered["B"][f]} for f in CARBONIO_FILES}
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    killed = 0
    for round_ in range(ROUNDS):
        name = "AB"[round_ % 2]
        rig.answers = dict(versions[name])
        answers = rig.write_answers()
        process = subprocess.Popen(
            [sys.executable, "-m", "tui", "apply", "carbonio", "--answers", str(answers),
             "--root", str(rig.root), "--yes"],
            env=rig.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=60)
        for final in CARBONIO_FILES:
            path = rig.root / final.lstrip("/")
            if path.exists():
                assert path.read_bytes() in whole[final], \
                    f"seed {seed}, round {round_}: {final} is partial or mixed"
            for backup in path.parent.glob(f"{path.name}.bak.*") if path.parent.exists() else []:
                assert backup.read_bytes() in whole[final], \
                    f"seed {seed}, round {round_}: backup {backup.name} is partial"
    assert killed >= ROUNDS // 3, f"only {killed} of {ROUNDS} runs were killed mid-way"

    rig.answers = dict(versions["A"])
    final_run = rig.cli("apply", "carbonio", "--answers", str(rig.write_answers()),
                        "--root", str(rig.root), "--yes")
    assert final_run.returncode == 0, final_run.stderr
    for final in CARBONIO_FILES:
        assert (rig.root / final.lstrip("/")).read_bytes() == rendered["A"][final]
    assert not list(rig.root.rglob("*.tmp")), "a killed write's temp file was left"
    assert not list(rig.state.rglob("*.tmp"))
    state = json.loads((rig.state / "carbonio.json").read_text())
    assert state["last_run"]["outcome"] == "done"
    assert len(consul.kv) == 3
    policy = [p for p in consul.policies.values() if p["Name"] == "carbonio-gateway-policy"]
    assert len(policy) == 1
    linked = [t for t in consul.tokens.values()
              if any(link.get("ID") == policy[0]["ID"] for link in t.get("Policies") or [])]
    assert len(linked) == 1, "a killed run left a second gateway token in Consul"
    assert_no_secret([consul.management_token, DB_PASSWORD], rig.outputs, rig.state,
                     rig.root, holders=("token",))
