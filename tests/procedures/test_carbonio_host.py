"""carbonio's host side without --root: systemctl/journalctl and service-discover,
as stand-in executables on PATH that record their argv (the real ones would change
this machine)."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import host_stubs
import pytest
from fakes.consul import FakeConsul
from in_process import run_in_process

SYSTEMCTL = """#!@PYTHON@
# systemctl as far as the carbonio steps use it; `enable --now` and `try-restart`
# run the unit's ExecStart (with /usr/bin/consul as the `consul connect envoy`
# stand-in) and the unit is "active" when it got as far as starting Envoy, "failed"
# when it exited non-zero, as a real Restart=on-failure unit ends up.
import os, shlex, subprocess, sys
from pathlib import Path
state = Path(os.environ["STATE_DIR"])
with open(os.environ["LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")

def read(name, default):
    path = state / name
    return path.read_text().strip() if path.exists() else default

def start(unit):
    text = (Path(os.environ["UNIT_DIR"]) / unit).read_text().replace("\\\\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart=").replace("$$", "$").replace("%%", "%"))
    if argv[0] == "/usr/bin/consul":
        argv[0] = os.environ["CONSUL_STANDIN"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    with open(state / "journal", "a") as journal:
        journal.write(run.stdout + run.stderr)
    (state / "enabled").write_text("enabled\\n")
    (state / "active").write_text("active\\n" if run.returncode == 0 else "failed\\n")

verb = sys.argv[1]
if verb == "is-enabled":
    print(read("enabled", "disabled"))
elif verb == "is-active":
    print(read("active", "inactive"))
elif verb == "enable" and "--now" in sys.argv:
    start(sys.argv[-1])
elif verb in ("try-restart", "restart"):
    start(sys.argv[-1])
"""
JOURNALCTL = """#!/bin/sh
tail -n 5 "$STATE_DIR/journal" 2>/dev/null
"""
CONSUL_STANDIN = """#!@PYTHON@
import sys
sys.path.insert(0, @TESTS@)
from fakes.consul_envoy import main
sys.exit(main(sys.argv[1:]))
"""
TESTS = Path(__file__).resolve().parents[1] / "support"
# The account that runs the gateway: this test's own user, so chown needs no root.
ME = pwd.getpwuid(os.getuid()).pw_name


def _script(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text.replace("@PYTHON@", sys.executable)
                    .replace("@TESTS@", repr(str(TESTS))))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def host(tmp_path):
    fake = FakeConsul().start()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "systemd").mkdir()
    _script(bin_dir, "systemctl", SYSTEMCTL)
    _script(bin_dir, "journalctl", JOURNALCTL)
    _script(bin_dir, "consul-standin", CONSUL_STANDIN)
    _script(bin_dir, "service-discover",
            host_stubs.service_discover("cluster s3cret", fake.management_token))
    answers = tmp_path / "answers.yaml"
    answers.write_text(json.dumps({
        "consul_url": fake.url, "external_address": "127.0.0.1", "external_port": 1,
        "db_name": "files", "db_username": "files", "gateway_name": ME,
        "config_dir": str(tmp_path / "cfg"), "unit_dir": str(tmp_path / "units")}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDRIG_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", LOG=str(tmp_path / "argv.log"),
               STATE_DIR=str(tmp_path / "systemd"), UNIT_DIR=str(tmp_path / "units"),
               CONSUL_STANDIN=str(bin_dir / "consul-standin"),
               CLOUDRIG_STATE_DIR=str(tmp_path / "state"),
               CLOUDRIG_SECRETS_BACKEND="file", CLOUDRIG_SECRETS_PASSPHRASE="test pass",
               CLOUDRIG_SECRET_DB_PASSWORD="db pw 1", HOME=str(tmp_path), NO_COLOR="1")
    yield tmp_path, fake, answers, env
    fake.stop()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In this process with ENV as its whole environment (PATH with the stand-ins first):
    # the host commands it starts are its children, as under the real entry point.
    return run_in_process(env, args)


GATEWAY_STEPS = ("management-token", "policy", "gateway-token", "external-service",
                 "gateway-config", "unit")


def _apply_gateway(env: dict[str, str], answers: Path) -> subprocess.CompletedProcess[str]:
    steps = [arg for step in GATEWAY_STEPS for arg in ("--step", step)]
    return _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes", *steps)


def test_gateway_starts_registers_and_routes_and_the_unit_step_waits_for_it(host):
    """The unit's own ExecStart, run as `consul connect envoy` does it, against the
    fake Consul with its ACLs: the gateway token's policy must let Envoy start (agent
    read), -http-addr must point at the agent CloudRig configured, and the step is
    done only when Consul shows the gateway registered, passing and routing."""
    tmp, fake, answers, env = host
    env["CLOUDRIG_SECRET_CONSUL_TOKEN"] = fake.management_token
    fake.pass_on_register = True  # Envoy listens as soon as it starts
    result = _apply_gateway(env, answers)
    assert result.returncode == 0, result.stderr
    calls = (tmp / "argv.log").read_text().splitlines()
    assert "daemon-reload" in calls
    assert f"enable --now {ME}.service" in calls
    assert (tmp / "units" / f"{ME}.service").exists()
    assert "Registered service: " + ME in (tmp / "systemd" / "journal").read_text()
    assert f"{ME} registered and passing, routes carbonio-files-db" in result.stderr
    status = json.loads(_cli(env, "status", "carbonio", "--json").stdout)
    unit = next(s for s in status["steps"] if s["step"] == "unit")
    assert unit["status"] == "done", unit
    assert f"{ME} registered and passing, routes carbonio-files-db" in unit["detail"]
    # Second apply: enabled and active, unit unchanged → no changing systemctl call.
    (tmp / "argv.log").write_text("")
    assert _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes",
                "--step", "unit").returncode == 0
    calls = (tmp / "argv.log").read_text().splitlines()
    assert [c for c in calls if not c.startswith("is-")] == []
    # The entry routes the service with another SNI: the gateway step says so.
    link = fake.config[("terminating-gateway", ME)]["Services"][0]
    link["SNI"] = "other.example.com"
    unit = next(s for s in json.loads(_cli(env, "status", "carbonio", "--json").stdout)
                ["steps"] if s["step"] == "unit")
    assert unit["status"] == "drifted"
    assert "routes carbonio-files-db with CAFile/SNI -/other.example.com" in unit["detail"]
    del link["SNI"]
    # The agent's probe fails: the dashboard says the gateway is not passing.
    for check in fake.agent_checks.values():
        check.update(Status="critical", Output="dial tcp 127.0.0.1:8443: connection refused")
    unit = next(s for s in json.loads(_cli(env, "status", "carbonio", "--json").stdout)
                ["steps"] if s["step"] == "unit")
    assert unit["status"] == "pending"
    assert "check 'terminating-gateway listening' is critical" in unit["detail"]
    (tmp / "systemd" / "active").write_text("failed\n")
    status = json.loads(_cli(env, "status", "carbonio", "--json").stdout)
    unit = next(s for s in status["steps"] if s["step"] == "unit")
    assert unit["status"] == "failed"
    assert "envoy: started" in unit["detail"]


def test_runbook_policy_leaves_envoy_failing_and_apply_says_why(host):
    """With the runbook's policy (no agent read) `consul connect envoy` stops at
    /v1/agent/self: the unit fails, and apply ends on it with the journal."""
    _tmp, fake, answers, env = host
    env["CLOUDRIG_SECRET_CONSUL_TOKEN"] = fake.management_token
    assert _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes", "--step",
                "management-token", "--step", "policy").returncode == 0
    policy = fake.policy_named(f"{ME}-policy")
    rules = json.loads(policy["Rules"])
    rules.pop("agent_prefix", None)
    policy["Rules"] = json.dumps(rules)
    steps = [arg for step in GATEWAY_STEPS[2:] for arg in ("--step", step)]
    result = _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes", *steps)
    assert result.returncode == 1
    assert f"{ME}.service failed" in result.stderr
    assert "lacks permission 'agent:read'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bootstrap_token_from_service_discover_goes_to_the_secret_store(host):
    """service-discover reads the cluster password from a terminal only and prints no
    prompt (the stub refuses a pipe, as the real tool does): CloudRig types it on a
    pty, keeps the token it prints in the secret store, and shows neither."""
    tmp, fake, answers, env = host
    env["CLOUDRIG_SECRET_CLUSTER_PASSWORD"] = "cluster s3cret"
    piped = subprocess.run([str(tmp / "bin" / "service-discover"), "bootstrap-token",
                            "--setup"], input="cluster s3cret\n", capture_output=True,
                           text=True, timeout=60)
    assert piped.returncode == 1 and "is not a terminal" in piped.stderr
    result = _cli(env, "apply", "carbonio", "--answers", str(answers), "--yes",
                  "--step", "management-token", "--step", "policy")
    assert result.returncode == 0, result.stderr
    assert "management token kept in the encrypted file" in result.stderr
    assert fake.policy_named(f"{ME}-policy") is not None
    assert fake.management_token not in result.stdout + result.stderr
    assert "cluster s3cret" not in result.stdout + result.stderr
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
