"""carbonio's host side without --root: systemctl/journalctl and service-discover,
as stand-in executables on PATH that record their argv (the real ones would change
this machine)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.consul import FakeConsul

SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$LOG"
case "$1" in
  is-enabled) cat "$STATE_DIR/enabled" 2>/dev/null || echo disabled ;;
  is-active) cat "$STATE_DIR/active" 2>/dev/null || echo inactive ;;
  enable) echo enabled > "$STATE_DIR/enabled"; echo active > "$STATE_DIR/active" ;;
esac
exit 0
"""
JOURNALCTL = """#!/bin/sh
echo "envoy: upstream connect error"
echo "carbonio-gateway.service: Main process exited, code=exited, status=1/FAILURE"
"""
SERVICE_DISCOVER = """#!/usr/bin/env python3
import sys
password = sys.stdin.readline().rstrip("\\n")
if sys.argv[1:] != ["bootstrap-token", "--setup"] or password != "cluster s3cret":
    print("wrong password", file=sys.stderr)
    sys.exit(1)
print("@TOKEN@")
"""


def _script(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def host(tmp_path):
    fake = FakeConsul().start()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "systemd").mkdir()
    _script(bin_dir, "systemctl", SYSTEMCTL)
    _script(bin_dir, "journalctl", JOURNALCTL)
    _script(bin_dir, "service-discover",
            SERVICE_DISCOVER.replace("@TOKEN@", fake.management_token))
    answers = tmp_path / "answers.yaml"
    answers.write_text(json.dumps({
        "consul_url": fake.url, "external_address": "127.0.0.1", "external_port": 1,
        "db_name": "files", "db_username": "files", "gateway_name": "root",
        "config_dir": str(tmp_path / "cfg"), "unit_dir": str(tmp_path / "units")}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDRIG_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", LOG=str(tmp_path / "argv.log"),
               STATE_DIR=str(tmp_path / "systemd"), CLOUDRIG_STATE_DIR=str(tmp_path / "state"),
               CLOUDRIG_SECRETS_BACKEND="file", CLOUDRIG_SECRETS_PASSPHRASE="test pass",
               CLOUDRIG_SECRET_DB_PASSWORD="db pw 1", HOME=str(tmp_path), NO_COLOR="1")
    yield tmp_path, fake, answers, env
    fake.stop()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_unit_commands_and_failed_service_journal(host):
    tmp, fake, answers, env = host
    env["CLOUDRIG_SECRET_CONSUL_TOKEN"] = fake.management_token
    result = _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes",
                  "--step", "unit")
    assert result.returncode == 0, result.stderr
    calls = (tmp / "argv.log").read_text().splitlines()
    assert "daemon-reload" in calls
    assert "enable --now root.service" in calls
    assert (tmp / "units" / "root.service").exists()
    # Second apply: enabled and active, unit unchanged → no changing systemctl call.
    (tmp / "argv.log").write_text("")
    assert _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes",
                "--step", "unit").returncode == 0
    calls = (tmp / "argv.log").read_text().splitlines()
    assert [c for c in calls if not c.startswith("is-")] == []
    (tmp / "systemd" / "active").write_text("failed\n")
    status = json.loads(_cli(env, "status", "carbonio", "--json").stdout)
    unit = next(s for s in status["steps"] if s["step"] == "unit")
    assert unit["status"] == "failed"
    assert "Main process exited" in unit["detail"]


def test_bootstrap_token_from_service_discover_goes_to_the_secret_store(host):
    tmp, fake, answers, env = host
    env["CLOUDRIG_SECRET_CLUSTER_PASSWORD"] = "cluster s3cret"
    result = _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes",
                  "--step", "management-token", "--step", "policy")
    assert result.returncode == 0, result.stderr
    assert fake.policy_named("root-policy") is not None
    assert fake.management_token not in result.stdout + result.stderr
    listed = _cli(env, "secrets", "list")
    assert "carbonio.consul_token" in listed.stdout
    store = (tmp / "state" / "secrets.cfg").read_text()
    assert fake.management_token not in store
    for path in (tmp / "state").rglob("*"):
        assert fake.management_token not in path.read_text(errors="replace")
    # The next run finds the token in the store: no cluster password needed.
    del env["CLOUDRIG_SECRET_CLUSTER_PASSWORD"]
    again = _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes",
                 "--step", "policy")
    assert again.returncode == 0, again.stderr
