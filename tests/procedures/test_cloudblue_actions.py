"""cloudblue beyond apply: the generic operator actions (`cloudrig action`), here the
runbook's "rotate the Application Management token", and `teardown --restore`, which
puts the operator's config files back as they were before CloudRig's first write.
The CLI runs as a subprocess against the fake Connect API and the stand-in
password manager (cloudblue_rig.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cloudblue_rig import CLOUDBLUE_TOKEN, VAP_TOKEN, Rig, scan, started_rig, stored_tokens

ROTATE = "rotate-vap-token"
NEW_VAP_TOKEN = "vap-admin-rotated-5e4d3c2b1a09"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def rig(tmp_path):
    with started_rig(tmp_path) as rig:
        yield rig


def action(rig: Rig, *extra: str) -> object:
    return rig.cli("action", "cloudblue", ROTATE, "--answers", str(rig.write_answers()), *extra)


def on_host(rig: Rig) -> Path:
    """Point the answers at the host connector directory (no --root: commands run)."""
    rig.answers["config_dir"] = str(rig.host_dir)
    return rig.host_dir


def teardown(rig: Rig, *extra: str) -> object:
    return rig.cli("teardown", "cloudblue", "--answers", str(rig.write_answers()),
                   "--root", str(rig.root), *extra)


def changing_calls(rig: Rig) -> list[str]:
    return [c for c in rig.calls() if not c.startswith("systemctl is-")]


# ---------------------------------------------------------------- actions


def test_actions_are_listed_with_when_they_last_ran(rig):
    listed = rig.cli("action", "cloudblue")
    assert listed.returncode == 0, listed.stderr
    assert ROTATE in listed.stdout
    assert "Rotate the Application Management token (never run)" in listed.stdout
    assert "delete connector.pem" in listed.stdout
    data = json.loads(rig.cli("action", "cloudblue", "--json").stdout)
    assert [(a["action"], a["last_run"]) for a in data] == [(ROTATE, None)]
    unknown = rig.cli("action", "cloudblue", "rotate-everything", "--answers",
                      str(rig.write_answers()))
    assert unknown.returncode == 2
    assert "cloudblue has no action 'rotate-everything'; its actions are: rotate-vap-token" \
        in unknown.stderr
    no_answers = rig.cli("action", "cloudblue", ROTATE, "--yes")
    assert no_answers.returncode == 2 and "needs --answers FILE" in no_answers.stderr
    assert "Traceback" not in unknown.stderr + no_answers.stderr


def test_rotate_deletes_the_key_and_types_the_new_token_at_the_prompt_only(rig):
    host = on_host(rig)
    assert rig.apply(root=False).returncode == 0
    (host / "connector.pem").write_bytes(KEY)  # what the connector generated
    (rig.tmp / "calls.log").write_text("")
    rig.secrets["vap_token"] = NEW_VAP_TOKEN

    result = action(rig, "--yes")
    assert result.returncode == 0, result.stderr
    # What it will do is shown before it runs ...
    assert f"remove {host}/connector.pem" in result.stdout
    assert "run  cloudblue-password-manager --set-vap-token" in result.stdout
    # ... the key is gone, and only the admin token was set again, at the prompt.
    assert not (host / "connector.pem").exists()
    assert changing_calls(rig) == ["cloudblue-password-manager --set-vap-token"]
    assert stored_tokens(host) == {"cloudblue": CLOUDBLUE_TOKEN, "vap": NEW_VAP_TOKEN}
    for line in (rig.tmp / "pm-seen.jsonl").read_text().splitlines():
        seen = json.dumps(json.loads(line))
        assert NEW_VAP_TOKEN not in seen and VAP_TOKEN not in seen
        assert "CLOUDRIG_SECRET" not in seen
    # The state records it, and status says when it last ran.
    assert rig.state_json()["actions"][ROTATE]["outcome"] == "done"
    status = rig.cli("status", "cloudblue")
    assert "action   Rotate the Application Management token: last ran 20" in status.stdout
    assert "UTC (done)" in status.stdout
    report = json.loads(rig.cli("status", "cloudblue", "--json").stdout)
    assert report["actions"][0]["last_run"]["outcome"] == "done"
    listed = rig.cli("action", "cloudblue")
    assert "(last ran 20" in listed.stdout
    assert f"[{ROTATE}] Rotate the Application Management token" in (
        rig.state / "cloudrig.log").read_text()
    scan(rig, [CLOUDBLUE_TOKEN, VAP_TOKEN, NEW_VAP_TOKEN])


def test_rotate_without_yes_and_no_terminal_refuses_and_changes_nothing(rig):
    host = on_host(rig)
    (host / "connector.pem").write_bytes(KEY)
    result = action(rig)
    assert result.returncode == 2
    assert ("action rotate-vap-token changes this host; rerun with --yes to confirm (no "
            "terminal to ask on), or --dry-run to see what it would do") in result.stderr
    assert "Traceback" not in result.stderr
    assert (host / "connector.pem").read_bytes() == KEY
    assert rig.calls() == []
    assert not (host / "passwords_db.sqlite3").exists()
    assert not (rig.state / "cloudblue.json").exists()


@pytest.mark.parametrize("answer, removed", [("y", True), ("n", False)])
def test_on_a_terminal_the_action_asks_first(rig, answer, removed):
    host = on_host(rig)
    (host / "connector.pem").write_bytes(KEY)
    rig.secrets["vap_token"] = NEW_VAP_TOKEN
    controller, terminal = os.openpty()
    try:
        os.write(controller, f"{answer}\n".encode())  # typed ahead, read by the prompt
        # A process through the real entry point: the test is about a terminal on
        # stdin (isatty of the process's fd 0), which the in-process runner replaces.
        proc = subprocess.run(
            [sys.executable, "-m", "tui", "action", "cloudblue", ROTATE, "--answers",
             str(rig.write_answers())], env=rig.env(), stdin=terminal, capture_output=True,
            text=True, timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)
    assert f"Delete {host}/connector.pem (the connector generates a new key and token) and " \
        "set the Application Management token again? [y/N]" in proc.stdout
    assert (host / "connector.pem").exists() is not removed
    if removed:
        assert proc.returncode == 0, proc.stderr
        assert stored_tokens(host) == {"vap": NEW_VAP_TOKEN}
    else:
        assert proc.returncode == 1 and "rotate-vap-token not run" in proc.stderr
        assert rig.calls() == []


def test_rotate_dry_run_shows_what_it_would_do_and_changes_nothing(rig):
    host = on_host(rig)
    (host / "connector.pem").write_bytes(KEY)
    result = action(rig, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"remove {host}/connector.pem" in result.stdout
    assert "cloudblue-password-manager --set-vap-token" in result.stdout
    assert "dry run: rotate-vap-token not run, nothing changed" in result.stderr
    assert (host / "connector.pem").read_bytes() == KEY
    assert rig.calls() == []
    assert not (host / "passwords_db.sqlite3").exists()
    report = json.loads(rig.cli("status", "cloudblue", "--json").stdout)
    assert report["actions"][0]["last_run"] is None


def test_rotate_under_root_deletes_the_staged_key_and_skips_the_password_manager(rig):
    staged = rig.root / "etc" / "cloudblue-connector" / "connector.pem"
    staged.write_bytes(KEY)
    result = action(rig, "--root", str(rig.root), "--yes")
    assert result.returncode == 0, result.stderr
    assert not staged.exists()
    assert "/etc/cloudblue-connector/connector.pem: removed" in result.stderr
    assert ("skipped (--root: this command would change this machine): "
            "cloudblue-password-manager --set-vap-token") in result.stderr
    assert rig.calls() == []  # the host's real store is not touched under --root
    again = action(rig, "--root", str(rig.root), "--yes")  # the key is already gone
    assert again.returncode == 0, again.stderr
    assert "(absent)" in again.stdout


def test_rotate_without_the_token_exits_2_naming_the_variable(rig):
    host = on_host(rig)
    (host / "connector.pem").write_bytes(KEY)
    del rig.secrets["vap_token"]
    result = action(rig, "--yes")
    assert result.returncode == 2
    assert "CLOUDRIG_SECRET_VAP_TOKEN" in result.stderr and "Traceback" not in result.stderr
    assert (host / "connector.pem").read_bytes() == KEY
    assert rig.calls() == []


def test_a_failing_password_manager_is_one_sentence_recorded_as_failed(rig):
    host = on_host(rig)
    (host / "connector.pem").write_bytes(KEY)
    manager = rig.tmp / "bin" / "cloudblue-password-manager"
    manager.write_text("#!/bin/sh\necho 'cannot reach Application Management'\nexit 1\n")
    result = action(rig, "--yes")
    assert result.returncode == 1
    assert "rotate-vap-token: `cloudblue-password-manager --set-vap-token` exited with " \
        "status 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert rig.state_json()["actions"][ROTATE]["outcome"] == "failed"
    assert "UTC (failed)" in rig.cli("action", "cloudblue").stdout


# ---------------------------------------------------------------- teardown --restore


ORIGINAL = b'{\n  "vap_infra_domain": "old.example.com",\n  "log_level": "debug"\n}\n'


def test_teardown_restore_puts_back_the_first_backup_byte_for_byte_once(rig):
    cfg_dir = rig.root / "etc" / "cloudblue-connector"
    config = cfg_dir / "config.json"
    config.write_bytes(ORIGINAL)
    config.chmod(0o640)
    assert rig.apply().returncode == 0
    rig.answers["vap_user_group"] = "other group"  # a second write: a second backup
    assert rig.apply().returncode == 0
    backups = sorted(p.name for p in cfg_dir.glob("config.json.cloudrig-*.bak"))
    assert len(backups) == 2
    assert config.read_bytes() != ORIGINAL

    preview = teardown(rig, "--restore", "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "restore /etc/cloudblue-connector/config.json: put back from " \
        "/etc/cloudblue-connector/config.json.cloudrig-" in preview.stdout
    assert "config-logging.json: no backup from before CloudRig's first write" \
        in preview.stdout
    assert config.read_bytes() != ORIGINAL

    done = teardown(rig, "--restore", "--yes")
    assert done.returncode == 0, done.stderr
    assert config.read_bytes() == ORIGINAL
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert "/etc/cloudblue-connector/config.json: restored" in done.stderr
    # CloudRig created config-logging.json from the example: it stays, and says so.
    assert (cfg_dir / "config-logging.json").exists()
    assert ("/etc/cloudblue-connector/config-logging.json: kept; no backup from before "
            "CloudRig's first write (CloudRig created it, or never changed it): left as it "
            "is") in done.stderr
    files = {p.name: p.read_bytes() for p in cfg_dir.iterdir()}

    again = teardown(rig, "--restore", "--yes")
    assert again.returncode == 0, again.stderr
    assert ("/etc/cloudblue-connector/config.json: unchanged; already the version from "
            "before CloudRig's first write") in again.stderr
    assert {p.name: p.read_bytes() for p in cfg_dir.iterdir()} == files
    assert "Traceback" not in done.stderr + again.stderr


def test_teardown_restore_without_yes_and_no_terminal_changes_nothing(rig):
    cfg_dir = rig.root / "etc" / "cloudblue-connector"
    (cfg_dir / "config.json").write_bytes(ORIGINAL)
    assert rig.apply().returncode == 0
    applied = (cfg_dir / "config.json").read_bytes()
    refused = teardown(rig, "--restore")
    assert refused.returncode == 2
    assert "teardown changes this host; rerun with --yes" in refused.stderr
    assert (cfg_dir / "config.json").read_bytes() == applied
