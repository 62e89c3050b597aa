"""atmosphere host roles: on `osa-deploy` the Atmosphere-server steps are exported as
files + commands and shown as "to run on atmosphere"; on `atmosphere` they run,
against stand-in add_new_provider.py / add_new_accounts.py / manage.py that prompt
and answer like the originals (runbook transcript)."""

from __future__ import annotations

import json
import shlex
import stat
import subprocess
import sys

import pytest
from atmosphere_rig import ATMO_PASSWORD, PROVIDER_SECRET, Cli, base_answers, make_atmosphere


@pytest.fixture
def rig(tmp_path):
    atmo = tmp_path / "atmosphere"
    make_atmosphere(atmo)
    cli = Cli(tmp_path, secrets={"atmo_admin_password": ATMO_PASSWORD,
                                 "provider_secret": PROVIDER_SECRET})
    # admin_url and user_role answered: the provider JSON needs no Keystone here.
    answers = base_answers(tmp_path, atmosphere_dir=str(atmo), atmosphere_python=sys.executable,
                           admin_url="https://cloud.example.org:5000", user_role="member")
    return cli, answers, tmp_path, atmo


ATMO_STEPS = ("provider-json", "provider", "atmosphere-ansible")
STEP_ARGS = [arg for step in ATMO_STEPS for arg in ("--step", step)]


def test_on_osa_deploy_atmosphere_steps_are_exported_and_shown_to_run_there(rig):
    cli, answers, tmp, atmo = rig
    answers["host_role"] = "osa-deploy"
    path = str(cli.write(answers))
    plan = cli("plan", "atmosphere", "--answers", path, *STEP_ARGS)
    assert plan.returncode == 0, plan.stderr
    for step in ATMO_STEPS:
        assert f"[{step}]  (to run on atmosphere: sh {tmp}/export/atmosphere/{step}.sh)" \
            in plan.stdout
    assert "run  " not in plan.stdout  # nothing runs on this host
    root = tmp / "root"
    result = cli("apply", "atmosphere", "--answers", path, "--root", str(root), "--yes",
                 *STEP_ARGS)
    assert result.returncode == 0, result.stderr
    assert not (atmo / "calls.log").exists()
    export = root / str(tmp / "export/atmosphere").lstrip("/")
    script = (export / "provider.sh").read_text()
    assert f"{sys.executable} {atmo}/scripts/add_new_provider.py --from-json " \
           f"{tmp}/provider/my-awesome-cloud.json" in script
    assert any(line.startswith("#   at the prompt /(?:Name\\s+of\\s+new\\s+provider:)|")
               and line.endswith("/ type: my-awesome-cloud") for line in script.splitlines())
    assert "type the secret provider_secret" in script
    assert "PROVIDER_ID=\"$(env DJANGO_SETTINGS_MODULE=atmosphere.settings" in script
    assert '--provider "${PROVIDER_ID}" --users cmart,sgregory' in script
    assert PROVIDER_SECRET not in script and ATMO_PASSWORD not in script
    provider_json = export / "files" / str(tmp / "provider/my-awesome-cloud.json").lstrip("/")
    assert stat.S_IMODE(provider_json.stat().st_mode) == 0o600
    assert json.loads(provider_json.read_text())["cloud_config"]["user"]["secret"] == \
        PROVIDER_SECRET
    # The exported scripts are the steps: run on "the Atmosphere server" (the operator
    # types the prompts' answers), they add the provider and use the id it got.
    assert subprocess.run(["sh", str(export / "provider-json.sh")], timeout=60).returncode == 0
    typed = "\nYes\n"  # v37-5 asks only for the security rules and the review
    run = subprocess.run(["sh", str(export / "provider.sh")], input=typed, text=True,
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (atmo / "calls.log").read_text().splitlines() == [
        f"add_new_provider --from-json {tmp}/provider/my-awesome-cloud.json",
        "add_new_accounts --provider 4 --users cmart,sgregory",
        "monitor_sizes_for 4", "monitor_machines_for 4", "monitor_instances_for 4"]
    # The inventory on the Atmosphere server is merged there, keeping its other entries:
    # run the exported script as the operator would on that host.
    hosts = tmp / "atmosphere-ansible/ansible/hosts"
    hosts.parent.mkdir(parents=True)
    hosts.write_text("[atmosphere-old]\nvm9.old.example.org ansible_host=198.51.100.9\n")
    for _ in range(2):
        run = subprocess.run(["sh", str(export / "atmosphere-ansible.sh")], timeout=60,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    merged = hosts.read_text()
    assert merged.startswith("[atmosphere-old]\nvm9.old.example.org")
    assert merged.count("# BEGIN CloudRig atmosphere my-awesome-cloud") == 1
    assert "vm62.cloud.example.org ansible_host=192.0.2.62" in merged
    assert (hosts.parent / "group_vars/atmosphere-my-awesome-cloud").exists()
    status = json.loads(cli("status", "atmosphere", "--json").stdout)
    steps = {s["step"]: s for s in status["steps"]}
    for step in ATMO_STEPS:
        assert steps[step]["status"] == "manual"
        assert steps[step]["detail"].startswith("to run on atmosphere: sh ")
        assert steps[step]["host"] == "atmosphere"
    text = cli("status", "atmosphere").stdout
    assert "to run on atmosphere" in text


def test_on_atmosphere_the_steps_run_and_the_provider_id_is_parsed(rig):
    cli, answers, tmp, atmo = rig
    answers["host_role"] = "atmosphere"
    path = str(cli.write(answers))
    result = cli("apply", "atmosphere", "--answers", path, "--yes",
                 "--step", "provider-json", "--step", "provider")
    assert result.returncode == 0, result.stderr
    assert "provider my-awesome-cloud has id 4" in result.stderr
    calls = (atmo / "calls.log").read_text().splitlines()
    assert calls == [f"add_new_provider --from-json {tmp}/provider/my-awesome-cloud.json",
                     "add_new_accounts --provider 4 --users cmart,sgregory",
                     "monitor_sizes_for 4", "monitor_machines_for 4", "monitor_instances_for 4"]
    db = json.loads((atmo / "db.json").read_text())
    assert db["providers"]["my-awesome-cloud"]["secret"] == PROVIDER_SECRET
    assert db["providers"]["my-awesome-cloud"]["platform"] == "KVM"
    assert not (tmp / "export").exists()
    # The transcript echoes the secret and the admin password: masked in every output.
    for output in cli.outputs:
        assert PROVIDER_SECRET not in output and ATMO_PASSWORD not in output
    for log in (tmp / "state").rglob("*.log"):
        assert PROVIDER_SECRET not in log.read_text()
    # Rerun: the provider exists, so add_new_provider.py is not run again.
    (atmo / "calls.log").write_text("")
    again = cli("apply", "atmosphere", "--answers", path, "--yes", "--step", "provider")
    assert again.returncode == 0, again.stderr
    assert not any(c.startswith("add_new_provider") for c in
                   (atmo / "calls.log").read_text().splitlines())
    status = json.loads(cli("status", "atmosphere", "--json").stdout)
    provider = next(s for s in status["steps"] if s["step"] == "provider")
    assert provider.pop("checked_at")  # when the check ran (the dashboard shows it)
    assert provider == {"step": "provider", "title": provider["title"], "status": "done",
                        "detail": "provider my-awesome-cloud is id 4", "host": None}


def test_generated_provider_secret_goes_to_the_store(rig):
    cli, answers, tmp, atmo = rig
    del cli.secrets["provider_secret"]
    answers["host_role"] = "atmosphere"
    path = str(cli.write(answers))
    result = cli("apply", "atmosphere", "--answers", path, "--yes",
                 "--step", "provider-json", "--step", "provider")
    assert result.returncode == 0, result.stderr
    assert "generated provider_secret (48 characters)" in result.stderr
    secret = json.loads((tmp / "provider/my-awesome-cloud.json").read_text())[
        "cloud_config"]["user"]["secret"]
    assert len(secret) == 48
    db = json.loads((atmo / "db.json").read_text())
    assert db["providers"]["my-awesome-cloud"]["secret"] == secret
    assert "atmosphere.provider_secret" in cli("secrets", "list").stdout
    for output in cli.outputs:
        assert secret not in output


def test_teardown_on_atmosphere_says_how_to_end_date_the_provider_and_it_works(rig):
    cli, answers, tmp, atmo = rig
    answers["host_role"] = "atmosphere"
    path = str(cli.write(answers))
    assert cli("apply", "atmosphere", "--answers", path, "--yes", "--step", "provider-json",
               "--step", "provider").returncode == 0
    result = cli("teardown", "atmosphere", "--answers", path, "--yes")
    assert result.returncode == 0, result.stderr
    assert not (tmp / "provider/my-awesome-cloud.json").exists()
    line = next(x for x in result.stderr.splitlines() if "no command to remove provider" in x)
    command = line.split("its history stays): ", 1)[1]
    # The exact command shown works against (a stand-in of) Atmosphere's Django.
    run = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "deactivated 1" in run.stdout
    provider = json.loads((atmo / "db.json").read_text())["providers"]["my-awesome-cloud"]
    assert provider["active"] is False and provider["end_date"]
