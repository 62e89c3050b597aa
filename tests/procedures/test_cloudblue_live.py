"""cloudblue end to end: the CLI against the fake Connect API, with stand-in
executables on PATH for cloudblue-password-manager (a getpass prompt that needs a
terminal, writing a SQLite store), the three connector programs, systemctl and
journalctl (the real ones would change this machine): see cloudblue_rig.py."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from cloudblue_rig import (
    CLOUDBLUE_TOKEN,
    PROGRAMS,
    REVOKE,
    VAP_TOKEN,
    scan,
    started_rig,
    stored_tokens,
)
from fakes.connect import FakeConnect


@pytest.fixture
def rig(tmp_path):
    with started_rig(tmp_path) as rig:
        yield rig


def _config(base: Path) -> dict:
    return json.loads((base / "config.json").read_text())


def _gets_only(fake: FakeConnect) -> bool:
    return all(r.method == "GET" for r in fake.log)


def _skipped_commands(stderr: str) -> list[str]:
    return [line.split("): ", 1)[1] for line in stderr.splitlines() if "skipped (--root" in line]


def test_root_apply_end_to_end_in_runbook_order_and_twice_changes_nothing(rig):
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    cfg_dir = rig.root / "etc" / "cloudblue-connector"
    config = _config(cfg_dir)
    assert config["vap_infra_domain"] == "paas.example.com"
    assert config["misc"] == {"hidePasswordsInLog": True, "testMarketplaceId": "MP-43209",
                              "testMode": True, "billingStatDelayInHours": 2}
    assert config["apiEndpoint"] == rig.connect.endpoint
    assert config["products"] == ["PRD-576-330-536", "PRD-276-377-545"]
    assert config["report_usage"] == ["PRD-276-377-545"]
    assert config["templates"]["PRD-276-377-545"] == {"grant": "TL-551-876-782",
                                                      "revoke": "TL-551-876-782"}
    assert (cfg_dir / "config-logging.json").read_bytes() == (
        cfg_dir / "config-logging.json.example").read_bytes()
    # Host commands are listed, in the runbook's order, and skipped under --root.
    assert _skipped_commands(result.stderr) == [
        "cloudblue-password-manager --set-cloudblue-token",
        "cloudblue-password-manager --set-vap-token",
        *PROGRAMS,
        *[f"systemctl enable --now {p}.service" for p in PROGRAMS]]
    assert rig.calls() == []  # nothing ran on this machine
    assert _gets_only(rig.connect)
    assert "[quotas] manual: In the Application Management admin panel" in result.stderr

    files = {p: p.read_bytes() for p in cfg_dir.iterdir()}
    again = rig.apply()
    assert again.returncode == 0, again.stderr
    assert {p: p.read_bytes() for p in cfg_dir.iterdir()} == files  # no backup, no change
    assert "created" not in again.stderr and "updated" not in again.stderr
    assert _gets_only(rig.connect)


@pytest.mark.parametrize("change, named", [
    ({"products": ["PRD-576-330-536", "PRD-000-000-000"], "report_usage": [],
      "templates": {"PRD-576-330-536": {"grant": "TL-757-345-804", "revoke": REVOKE},
                    "PRD-000-000-000": {"grant": "TL-757-345-804", "revoke": REVOKE}}},
     "product PRD-000-000-000"),
    ({"templates": {"PRD-576-330-536": {"grant": "TL-999-999-999", "revoke": REVOKE},
                    "PRD-276-377-545": {"grant": "TL-551-876-782", "revoke": REVOKE}}},
     "template TL-999-999-999 (grant for PRD-576-330-536)"),
    ({"templates": {"PRD-576-330-536": {"grant": "TL-757-345-804", "revoke": REVOKE},
                    "PRD-276-377-545": {"grant": "TL-551-876-782",
                                        "revoke": "TL-757-345-804"}}},
     "template TL-757-345-804 (revoke for PRD-276-377-545)"),
    ({"test_marketplace_id": "MP-99999"}, "marketplace MP-99999"),
    ({"templates": {"PRD-576-330-536": {"grant": "TL-559-508-354", "revoke": REVOKE},
                    "PRD-276-377-545": {"grant": "TL-551-876-782", "revoke": REVOKE}}},
     "template TL-559-508-354 (grant for PRD-576-330-536): is a tier1-scope template, "
     "not an asset-scope fulfillment template"),
    ({"templates": {"PRD-576-330-536": {"grant": "TL-757-345-804",
                                        "revoke": "TL-222-333-444"},
                    "PRD-276-377-545": {"grant": "TL-551-876-782", "revoke": REVOKE}}},
     "template TL-222-333-444 (revoke for PRD-576-330-536): is an asset pending template"),
    ({"templates": {"PRD-576-330-536": {"grant": "TL-139-014-284", "revoke": REVOKE},
                    "PRD-276-377-545": {"grant": "TL-551-876-782", "revoke": REVOKE}}},
     "template TL-139-014-284 (grant for PRD-576-330-536): is an asset inquire template"),
    ({"report_usage": ["PRD-576-330-536"]},
     "product PRD-576-330-536 (in report_usage): pay-as-you-go is not enabled"),
])
def test_unknown_ids_exit_1_naming_the_id_and_nothing_is_written(rig, change, named):
    rig.answers.update(change)
    result = rig.apply()
    assert result.returncode == 1
    assert named in result.stderr and "Traceback" not in result.stderr
    cfg_dir = rig.root / "etc" / "cloudblue-connector"
    assert sorted(p.name for p in cfg_dir.iterdir()) == [
        "config-logging.json.example", "config.json.example"]
    assert rig.state_json()["last_run"]["failed_step"] == "validate"
    # The same reads happen in plan and --dry-run, which say the same.
    plan = rig.cli("plan", "cloudblue", "--answers", str(rig.tmp / "answers.yaml"),
                   "--root", str(rig.root))
    assert named in plan.stdout
    dry = rig.apply("--dry-run")
    assert dry.returncode == 1 and named in dry.stderr
    assert _gets_only(rig.connect)


def test_dry_run_reads_connect_and_changes_nothing(rig):
    result = rig.apply("--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would create" in result.stderr
    assert not (rig.root / "etc/cloudblue-connector/config.json").exists()
    assert any(r.path.endswith("/templates") for r in rig.connect.log)
    assert rig.calls() == []


def test_existing_config_keeps_unmanaged_keys_and_is_backed_up(rig):
    cfg_dir = rig.root / "etc" / "cloudblue-connector"
    old = {"vap_infra_domain": "old.example.com", "log_level": "debug",
           "misc": {"testMarketplaceId": "MP-00001", "retries": 5, "testMode": False},
           "proxy": {"url": "http://proxy:3128"}, "products": ["PRD-111-111-111"]}
    (cfg_dir / "config.json").write_text(json.dumps(old))
    (cfg_dir / "config.json").chmod(0o600)
    rig.answers.update(test_mode=False, test_marketplace_id=None)
    plan = rig.cli("plan", "cloudblue", "--answers", str(rig.write_answers()),
                   "--root", str(rig.root))
    assert '-  "vap_infra_domain": "old.example.com"' not in plan.stdout  # one-line JSON
    assert "+    \"vap_infra_domain\": \"paas.example.com\"" in plan.stdout
    result = rig.apply()
    assert result.returncode == 0, result.stderr
    config = _config(cfg_dir)
    assert config["log_level"] == "debug"
    assert config["proxy"] == {"url": "http://proxy:3128"}
    assert config["misc"] == {"retries": 5, "testMode": False, "hidePasswordsInLog": True,
                              "billingStatDelayInHours": 2}  # testMarketplaceId not answered
    assert config["vap_infra_domain"] == "paas.example.com"
    assert list(config)[:2] == ["vap_infra_domain", "log_level"]  # the file's order stays
    assert stat.S_IMODE((cfg_dir / "config.json").stat().st_mode) == 0o600
    backups = list(cfg_dir.glob("config.json.cloudrig-*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == old
    assert "previous version saved as /etc/cloudblue-connector/config.json.cloudrig-" \
        in result.stderr
    # Teardown keeps the file and names the backup, and how to restore it.
    down = rig.cli("teardown", "cloudblue", "--answers", str(rig.tmp / "answers.yaml"),
                   "--root", str(rig.root), "--yes")
    assert down.returncode == 0, down.stderr
    assert f"is /etc/cloudblue-connector/{backups[0].name}; to restore it: rerun teardown " \
        "with --restore" in down.stderr
    assert (cfg_dir / "config.json").exists()


def test_existing_config_logging_is_left_alone_and_reported(rig):
    cfg_dir = rig.root / "etc" / "cloudblue-connector"
    (cfg_dir / "config-logging.json").write_text('{"mine": true}\n')
    result = rig.apply("--step", "config-logging")
    assert result.returncode == 0, result.stderr
    assert "differs from the example: left alone" in result.stderr
    assert (cfg_dir / "config-logging.json").read_text() == '{"mine": true}\n'



def test_host_apply_types_tokens_at_the_prompt_and_nowhere_else(rig):
    rig.answers["config_dir"] = str(rig.host_dir)
    result = rig.apply(root=False)
    assert result.returncode == 0, result.stderr
    calls = rig.calls()
    assert [c for c in calls if not c.startswith("systemctl is-")] == [
        "cloudblue-password-manager --set-cloudblue-token",
        "cloudblue-password-manager --set-vap-token",
        *PROGRAMS,
        *[f"systemctl enable --now {p}.service" for p in PROGRAMS]]
    # The tokens arrived through the prompt (the fake refuses without a terminal) ...
    db = sqlite3.connect(rig.host_dir / "passwords_db.sqlite3")
    stored = dict(db.execute("SELECT name, value FROM passwords"))
    db.close()
    assert stored == {"cloudblue": CLOUDBLUE_TOKEN[::-1], "vap": VAP_TOKEN[::-1]}
    # ... and nowhere else: not in the program's argv or environment ...
    for line in (rig.tmp / "pm-seen.jsonl").read_text().splitlines():
        seen = json.loads(line)
        dump = json.dumps(seen)
        assert CLOUDBLUE_TOKEN not in dump and VAP_TOKEN not in dump
        assert not any(k.startswith("CLOUDRIG_SECRET") for k in seen["env"])
    # ... the smoke runs' output is in the progress log ...
    assert "cloudblue-usage: line two of the output" in result.stderr
    status = rig.cli("status", "cloudblue", "--json")
    steps = {s["step"]: s for s in json.loads(status.stdout)["steps"]}
    assert steps["tokens"]["status"] == "done"
    assert steps["services"]["status"] == "done"
    # ... nor in outputs, state, the log, or any file written.
    scan(rig, [CLOUDBLUE_TOKEN, VAP_TOKEN])
    assert (rig.state / "cloudrig.log").exists()

    # Second apply: tokens kept, services already run the programs, nothing changes.
    (rig.tmp / "calls.log").write_text("")
    again = rig.apply(root=False)
    assert again.returncode == 0, again.stderr
    assert [c for c in rig.calls() if not c.startswith("systemctl is-")] == []
    assert "tokens kept" in again.stderr
    # Named explicitly, the tokens step sets them again.
    rig.secrets["vap_token"] = VAP_TOKEN + "-rotated"
    rotated = rig.apply("--step", "tokens", root=False)
    assert rotated.returncode == 0, rotated.stderr
    db = sqlite3.connect(rig.host_dir / "passwords_db.sqlite3")
    assert dict(db.execute("SELECT name, value FROM passwords"))["vap"] == (
        VAP_TOKEN + "-rotated")[::-1]
    db.close()
    scan(rig, [CLOUDBLUE_TOKEN, VAP_TOKEN])


def test_smoke_failure_stops_with_the_tail_of_its_output(rig):
    rig.answers["config_dir"] = str(rig.host_dir)
    rig.extra_env["SMOKE_EXIT"] = "1"
    result = rig.apply(root=False)
    assert result.returncode == 1
    assert "`cloudblue-fulfillments` exited with status 1" in result.stderr
    assert "cloudblue-fulfillments: line two of the output" in result.stderr
    assert rig.state_json()["last_run"]["failed_step"] == "smoke"
    assert not any(c.startswith("systemctl enable") for c in rig.calls())


def test_failed_service_shows_its_journal_and_teardown_stops_the_three(rig):
    rig.answers["config_dir"] = str(rig.host_dir)
    assert rig.apply(root=False).returncode == 0
    (rig.tmp / "units" / "cloudblue-usage.service.active").write_text("failed\n")
    status = rig.cli("status", "cloudblue", "--json")
    assert status.returncode == 1
    steps = {s["step"]: s for s in json.loads(status.stdout)["steps"]}
    assert steps["services"]["status"] == "failed"
    assert "Main process exited" in steps["services"]["detail"]
    (rig.tmp / "calls.log").write_text("")
    down = rig.cli("teardown", "cloudblue", "--answers", str(rig.tmp / "answers.yaml"), "--yes")
    assert down.returncode == 0, down.stderr
    changing = [c for c in rig.calls() if not c.startswith("systemctl is-")]
    assert changing == [f"systemctl {verb} {p}.service" for p in PROGRAMS
                        for verb in ("stop", "disable")]
    assert (rig.host_dir / "config.json").exists()
    (rig.tmp / "calls.log").write_text("")
    again = rig.cli("teardown", "cloudblue", "--answers", str(rig.tmp / "answers.yaml"), "--yes")
    assert again.returncode == 0, again.stderr
    assert [c for c in rig.calls() if not c.startswith("systemctl is-")] == []


def test_status_shows_all_eight_steps_and_the_manual_confirmation(rig):
    before = json.loads(rig.cli("status", "cloudblue", "--json").stdout)
    order = ["preflight", "validate", "config-logging", "config", "tokens", "smoke",
             "services", "quotas"]
    assert [s["step"] for s in before["steps"]] == order
    assert rig.apply().returncode == 0
    report = json.loads(rig.cli("status", "cloudblue", "--json").stdout)
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == order
    assert steps["quotas"]["status"] == "manual"
    assert "account.minbalance = -9999" in steps["quotas"]["detail"]
    assert "sleep.stop.after.hours = -1" in steps["quotas"]["detail"]
    assert steps["config"]["status"] == steps["validate"]["status"] == "done"
    assert steps["smoke"]["detail"] == "not run (staged under --root)"
    assert steps["tokens"]["status"] == "pending"  # the password manager was skipped
    confirmed = rig.cli("confirm", "cloudblue", "quotas")
    assert confirmed.returncode == 0, confirmed.stderr
    text = rig.cli("status", "cloudblue")
    assert "Admin-panel group quotas: manual — confirmed 20" in text.stdout
    report = json.loads(rig.cli("status", "cloudblue", "--json").stdout)
    quotas = next(s for s in report["steps"] if s["step"] == "quotas")
    assert quotas["status"] == "done" and quotas["detail"].startswith("manual — confirmed ")
    # Once confirmed, apply no longer asks for it.
    again = rig.apply()
    assert again.returncode == 0 and "[quotas] manual:" not in again.stderr


@pytest.mark.parametrize("fault, words", [
    ({"status": 503, "body": '{"error_code": "SYS-000", "errors": ["unavailable"]}',
      "times": 20}, "answered 503"),
    ({"status": 200, "body": "<html>maintenance</html>", "times": 20}, "not JSON"),
    ({"status": 429, "body": '{"error_code": "RATE", "errors": ["slow down"]}',
      "times": 20, "headers": {"Retry-After": "0"}}, "rate limiting"),
])
def test_remote_failures_are_one_sentence(rig, fault, words):
    rig.connect.fail(path_prefix="/public/v1/products/", **fault)
    result = rig.apply()
    assert result.returncode == 1
    assert words in result.stderr and "Traceback" not in result.stderr
    assert not (rig.root / "etc/cloudblue-connector/config.json").exists()


def test_wrong_key_is_one_sentence_and_missing_secret_exits_2(rig):
    rig.secrets["cloudblue_token"] = "ApiKey SU-000-000-000:wrongwrongwrong"
    result = rig.apply()
    assert result.returncode == 1
    assert "refused the API key" in result.stderr and "AUTH_001" in result.stderr
    assert "wrongwrongwrong" not in result.stderr and "Traceback" not in result.stderr
    del rig.secrets["vap_token"]
    rig.secrets["cloudblue_token"] = CLOUDBLUE_TOKEN
    missing = rig.apply()
    assert missing.returncode == 2
    assert "CLOUDRIG_SECRET_VAP_TOKEN" in missing.stderr
    assert not (rig.root / "etc/cloudblue-connector/config.json").exists()


def test_preflight_refuses_a_host_without_the_connector(rig):
    cfg_dir = rig.root / "etc" / "cloudblue-connector"
    (cfg_dir / "config.json.example").unlink()
    (rig.tmp / "bin" / "cloudblue-password-manager").unlink()
    result = rig.apply()
    assert result.returncode == 1
    assert "/etc/cloudblue-connector/config.json.example is missing" in result.stderr
    assert "cloudblue-password-manager is not on PATH" in result.stderr
    assert rig.state_json()["last_run"]["failed_step"] == "preflight"
    assert sorted(p.name for p in cfg_dir.iterdir()) == ["config-logging.json.example"]


def test_other_os_release_is_a_warning_not_a_failure(rig):
    (rig.root / "etc" / "os-release").write_text(
        'ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04 LTS"\n')
    result = rig.apply("--step", "preflight")
    assert result.returncode == 0, result.stderr
    assert "this is Ubuntu 24.04 LTS, not AlmaLinux 9" in result.stderr
    (rig.root / "etc" / "os-release").write_text('ID="almalinux"\nVERSION_ID="9.4"\n')
    result = rig.apply("--step", "preflight")
    assert "AlmaLinux 9" not in result.stderr and "OS release unknown" not in result.stderr


def test_unreadable_existing_config_is_refused_untouched(rig):
    cfg_dir = rig.root / "etc" / "cloudblue-connector"
    (cfg_dir / "config.json").write_text('{"products": [PRD-1,]}')
    result = rig.apply()
    assert result.returncode == 1
    assert "/etc/cloudblue-connector/config.json is not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert (cfg_dir / "config.json").read_text() == '{"products": [PRD-1,]}'
    assert not list(cfg_dir.glob("*.bak"))


def test_reentering_unchanged_tokens_is_not_a_failure_and_says_so(rig):
    """The password manager need not rewrite its store for a value it already holds:
    `--step tokens` with the same tokens succeeds and says what happened."""
    rig.answers["config_dir"] = str(rig.host_dir)
    assert rig.apply(root=False).returncode == 0
    store = (rig.host_dir / "passwords_db.sqlite3").read_bytes()
    again = rig.apply("--step", "tokens", root=False)
    assert again.returncode == 0, again.stderr
    assert (rig.host_dir / "passwords_db.sqlite3").read_bytes() == store
    assert again.stderr.count("unchanged (it already held this value)") == 2
    assert "the Connect API key: typed in;" in again.stderr
    rig.secrets["vap_token"] = VAP_TOKEN + "-new"
    changed = rig.apply("--step", "tokens", root=False)
    assert changed.returncode == 0, changed.stderr
    assert "the Application Management admin token: typed in and stored in" in changed.stderr
    assert "the Connect API key: typed in; " in changed.stderr


def test_key_without_its_prefix_reaches_connect_and_the_store_in_one_form(rig):
    """The key is accepted with or without `ApiKey `; CloudRig's own Connect calls and
    the connector's password store get the same canonical value."""
    rig.answers["config_dir"] = str(rig.host_dir)
    rig.secrets["cloudblue_token"] = CLOUDBLUE_TOKEN.removeprefix("ApiKey ")
    result = rig.apply(root=False)
    assert result.returncode == 0, result.stderr
    sent = {r.headers["authorization"] for r in rig.connect.log}
    assert sent == {CLOUDBLUE_TOKEN}
    assert stored_tokens(rig.host_dir)["cloudblue"] == CLOUDBLUE_TOKEN
    scan(rig, [CLOUDBLUE_TOKEN, VAP_TOKEN])


def test_the_password_manager_stand_in_needs_a_controlling_terminal(rig):
    """The stand-in refuses what a /dev/tty reader refuses: a pty given only as stdin
    (no controlling terminal, as a runner that does not make it one leaves it)."""
    import os
    import pty
    import subprocess

    master, slave = pty.openpty()
    try:
        proc = subprocess.run([str(rig.tmp / "bin" / "cloudblue-password-manager"),
                               "--set-vap-token"], stdin=slave, capture_output=True,
                              text=True, start_new_session=True, timeout=60,
                              env=rig.env())
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 3
    assert "a terminal is required to enter tokens" in proc.stderr
