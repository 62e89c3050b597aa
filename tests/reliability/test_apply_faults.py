"""`cloudrig apply` when the remote API fails mid-run: one sentence, a consistent state,
and a rerun that resumes.

carbonio against the fake Consul, with the fault on the KV step (after files were
written and the policy and token made) or, for TLS, on the whole service. After each
fault: exit 1, the last line of stderr names the step and the cause, no traceback,
no secret anywhere; the state says which step failed; every file on disk is complete
(byte for byte what `render` makes); once the fault clears, the next apply finishes
and nothing was created twice.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cli_rig import CARBONIO_FILES, DB_PASSWORD, closed_port
from fakes.consul import FakeConsul
from private_cli import ProcedureRig, assert_no_secret

FAULTS = {
    "5xx": ("503", lambda f: f.fail(503, "No cluster leader", times=50, path_prefix="/v1/kv/")),
    "429": ("429", lambda f: f.fail(429, "rate limit", headers={"Retry-After": "0"}, times=50,
                                    path_prefix="/v1/kv/")),
    "timeout": ("timed out", lambda f: f.slow(30, times=50, path_prefix="/v1/kv/")),
    "reset": ("connection broke", lambda f: f.reset(times=50, path_prefix="/v1/kv/")),
    "garbled": ("not JSON", lambda f: f.garble(times=50, path_prefix="/v1/kv/")),
}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[ProcedureRig]:
    yield from _rig(tmp_path, None)


def _rig(tmp_path: Path, tls: ssl.SSLContext | None) -> Iterator[ProcedureRig]:
    fake = FakeConsul().start(tls=tls)
    rig = ProcedureRig(tmp=tmp_path, extra_env={"CLOUDRIG_HTTP_TIMEOUT": "60"})
    rig.answers = {"consul_url": fake.url, "external_address": "db.example.com",
                   "external_port": closed_port(), "db_name": "carbonio-files-adm",
                   "db_username": "carbonio-files-adm"}
    rig.secrets = {"consul_token": fake.management_token, "db_password": DB_PASSWORD}
    rig.fake = fake  # type: ignore[attr-defined]
    yield rig
    fake.stop()


def _apply(rig: ProcedureRig):
    return rig.cli("apply", "carbonio", "--answers", str(rig.write_answers()),
                   "--root", str(rig.root), "--yes")


def _rendered(rig: ProcedureRig) -> dict[str, bytes]:
    out = rig.tmp / "rendered"
    result = rig.cli("render", "carbonio", "--answers", str(rig.write_answers()),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    return {final: (out / final.lstrip("/")).read_bytes() for final in CARBONIO_FILES}


def _files_whole(rig: ProcedureRig, expected: dict[str, bytes]) -> list[str]:
    """The files on disk; each, when present, is exactly the rendered file."""
    present = []
    for final, data in expected.items():
        path = rig.root / final.lstrip("/")
        if path.exists():
            assert path.read_bytes() == data, f"{final} is not the rendered file"
            present.append(final)
    leftovers = [p for p in rig.root.rglob("*.tmp")] if rig.root.exists() else []
    assert not leftovers, leftovers
    return present


def _last_run(rig: ProcedureRig) -> dict:
    return json.loads((rig.state / "carbonio.json").read_text())["last_run"]


def _secrets(rig: ProcedureRig) -> list[str]:
    return [rig.fake.management_token, DB_PASSWORD]  # type: ignore[attr-defined]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_in_the_kv_step_then_the_rerun_resumes(rig: ProcedureRig, fault: str) -> None:
    words, inject = FAULTS[fault]
    fake = rig.fake  # type: ignore[attr-defined]
    expected = _rendered(rig)
    inject(fake)
    if fault == "timeout":  # a deadline far below the fault's 30 s, far above any answer
        rig.extra_env["CLOUDRIG_HTTP_TIMEOUT"] = "3"
    failed = _apply(rig)
    rig.extra_env["CLOUDRIG_HTTP_TIMEOUT"] = "60"
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    last_line = failed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("kv: ") and words in last_line, last_line
    run = _last_run(rig)
    assert run["outcome"] == "failed" and run["failed_step"] == "kv"
    assert "kv" not in run["completed"] and "policy" in run["completed"]
    assert sorted(_files_whole(rig, expected)) == sorted(expected)  # written before kv
    assert fake.kv == {} or fault in ("timeout",)  # a timed-out PUT may have landed
    policies = len(fake.policies)

    fake.faults.clear()
    again = _apply(rig)
    assert again.returncode == 0, again.stderr
    assert _last_run(rig)["outcome"] == "done"
    assert len(fake.kv) == 3 and len(fake.policies) == policies  # nothing made twice
    assert len([t for t in fake.tokens.values()
                if t.get("Description", "").startswith("carbonio")]) <= 1
    _files_whole(rig, expected)
    assert assert_no_secret(_secrets(rig), rig.outputs, rig.state, rig.root,
                            holders=("token",)) > 0


def test_an_untrusted_certificate_stops_before_any_change(tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    for rig in _rig(tmp_path, context):
        fake = rig.fake  # type: ignore[attr-defined]
        failed = _apply(rig)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        last_line = failed.stderr.strip().splitlines()[-1]
        assert "not trusted" in last_line and "CA bundle" in last_line, last_line
        assert [r for r in fake.log if r.method != "GET"] == []
        assert _files_whole(rig, {}) == [] and not (rig.root / "etc").exists()
        bundle = tmp_path / "consul-ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        rig.answers["consul_ca_file"] = str(bundle)
        again = _apply(rig)
        assert again.returncode == 0, again.stderr
        assert len(fake.kv) == 3
        assert_no_secret(_secrets(rig), rig.outputs, rig.state, rig.root, holders=("token",))
