"""`cloudrig export ansible`: the exported playbook run by the real ansible-playbook.

Two inventory hosts on this machine (`ansible_connection: local`), each with its own
answers in host_vars, its own `--root`, state dir and answers dir, apply carbonio
against one fake Consul; the secrets come from an Ansible Vault file. The second run
must report `changed=0` for both, and no secret may reach the exported directory,
the report or anything ansible printed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import CARBONIO_FILES, DB_PASSWORD, closed_port, files_under, write_answers
from fakes.consul import FakeConsul
from private_cli import private_env, run_cloudrig

try:
    from ansible.parsing.yaml.loader import AnsibleLoader
except ImportError:  # pragma: no cover - ansible-core is in the test extra
    AnsibleLoader = None

from tui import __version__

HOSTS = {"hostA": {"gateway_name": "gw-alpha", "external_address": "10.0.0.11"},
         "hostB": {"gateway_name": "gw-bravo", "external_address": "10.0.0.12"}}


LITERAL_DB_NAME = "files {{ inventory_hostname }}"


def _tool(name: str) -> str:
    """An ansible command next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (ansible-core is in the test extra)")
    return found


def _ansible_env(tmp: Path) -> dict[str, str]:
    env = private_env(tmp / "controller")
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    env.update(LC_ALL="C.UTF-8", ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
               ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_STDOUT_CALLBACK="default")
    env.pop("NO_COLOR", None)
    return env


def _recap(output: str) -> dict[str, dict[str, int]]:
    """host → counters from the PLAY RECAP lines."""
    recap = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return recap


def _encrypt(path: Path, values: dict[str, str], password: Path, tmp: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values))
    subprocess.run([_tool("ansible-vault"), "encrypt", "--vault-password-file", str(password),
                    str(path)], env=_ansible_env(tmp), check=True, capture_output=True,
                   text=True)
    assert path.read_text().startswith("$ANSIBLE_VAULT;")


@pytest.fixture
def fleet(tmp_path: Path, consul: FakeConsul) -> Iterator[dict[str, object]]:
    """The exported playbook and two local hosts, each a gateway of its own Carbonio
    cluster (its own fake Consul, management token in its host_vars vault); the
    database password is shared (group_vars vault)."""
    # A Jinja expression in an answer is text: Ansible must copy it, never evaluate it.
    base = write_answers(tmp_path / "answers.yaml", consul_url=consul.url,
                         external_port=closed_port(), db_name=LITERAL_DB_NAME)
    out = tmp_path / "fleet"
    result = run_cloudrig(private_env(tmp_path / "exporter"),
                          ["export", "ansible", "carbonio", "--answers", str(base),
                           "-o", str(out)])
    assert result.returncode == 0, result.stderr
    password = tmp_path / "vault-password"
    password.write_text("vault pass for the test\n")
    consuls = {name: FakeConsul().start() for name in HOSTS}
    inventory = {}
    for name, answers in HOSTS.items():
        home = tmp_path / name
        inventory[name] = {"ansible_connection": "local",
                           "ansible_python_interpreter": sys.executable}
        settings = {
            "cloudrig_python": sys.executable,  # CloudRig is installed here already
            "cloudrig_root": str(home / "root"),
            "cloudrig_answers_dir": str(home / "etc"),
            "cloudrig_environment": {k: v for k, v in private_env(home).items()
                                     if k.startswith(("CLOUDRIG_", "XDG_", "HOME"))},
            "cloudrig_answers": {**answers, "consul_url": consuls[name].url},
        }
        (out / "host_vars" / name).mkdir(parents=True)
        (out / "host_vars" / name / "cloudrig.yml").write_text(yaml.safe_dump(settings))
        _encrypt(out / "host_vars" / name / "vault.yml",
                 {"vault_cloudrig_consul_token": consuls[name].management_token},
                 password, tmp_path)
    (out / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": inventory}}))
    _encrypt(out / "group_vars" / "all" / "vault.yml",
             {"vault_cloudrig_db_password": DB_PASSWORD}, password, tmp_path)
    yield {"dir": out, "password": password, "tmp": tmp_path, "consuls": consuls,
           "secrets": [c.management_token for c in consuls.values()] + [DB_PASSWORD]}
    for fake in consuls.values():
        fake.stop()


def _play(fleet: dict[str, object]) -> subprocess.CompletedProcess[str]:
    out = fleet["dir"]
    assert isinstance(out, Path)
    return subprocess.run(
        [_tool("ansible-playbook"), "-i", str(out / "inventory.yml"), str(out / "site.yml"),
         "--vault-password-file", str(fleet["password"])],
        cwd=out, env=_ansible_env(fleet["tmp"]), capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=600)


def test_two_hosts_apply_with_their_own_answers_then_a_second_run_changes_nothing(fleet):
    out, tmp = fleet["dir"], fleet["tmp"]
    assert isinstance(out, Path) and isinstance(tmp, Path)
    first = _play(fleet)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    recap = _recap(first.stdout)
    assert set(recap) == {"hostA", "hostB"}
    assert all(r["changed"] >= 1 and r["failed"] == 0 for r in recap.values()), recap

    for name, answers in HOSTS.items():
        root = tmp / name / "root"
        unit = f"/lib/systemd/system/{answers['gateway_name']}.service"
        for final in (*CARBONIO_FILES[:3], unit):
            assert (root / final.lstrip("/")).is_file(), f"{name}: {final} missing"
        hcl = (root / CARBONIO_FILES[2].lstrip("/")).read_text()
        assert answers["gateway_name"] in hcl
        other = next(a for n, a in HOSTS.items() if n != name)
        assert other["gateway_name"] not in hcl
        merged = yaml.safe_load((tmp / name / "etc" / "carbonio.yaml").read_text())
        assert merged["gateway_name"] == answers["gateway_name"]
        assert merged["db_name"] == LITERAL_DB_NAME  # from the base answers, not templated

    report = json.loads((out / "cloudrig-report.json").read_text())
    assert set(report) == {"hostA", "hostB"}
    for name in HOSTS:
        steps = {s["step"]: s["status"] for s in report[name]["steps"]}
        assert steps["gateway-config"] == "done" and steps["gateway-token"] == "done", steps
        policies = {p["Name"] for p in fleet["consuls"][name].policies.values()}
        assert f"{HOSTS[name]['gateway_name']}-policy" in policies  # each in its own cluster

    second = _play(fleet)
    assert second.returncode == 0, second.stdout[-3000:]
    recap = _recap(second.stdout)
    assert recap["hostA"]["changed"] == 0 and recap["hostB"]["changed"] == 0, second.stdout

    printed = first.stdout + first.stderr + second.stdout + second.stderr
    for secret in fleet["secrets"]:
        assert secret not in printed
        for path in files_under(out):
            assert secret.encode() not in path.read_bytes(), path
        for name in HOSTS:
            for path in files_under(tmp / name / "etc") + files_under(tmp / name / "state"):
                assert secret.encode() not in path.read_bytes(), path


def test_export_names_the_secrets_and_writes_no_value(tmp_path, consul):
    base = write_answers(tmp_path / "answers.yaml", consul_url=consul.url)
    out = tmp_path / "fleet"
    env = private_env(tmp_path, {"consul_token": consul.management_token,
                                 "db_password": DB_PASSWORD})
    result = run_cloudrig(env, ["export", "ansible", "carbonio", "--answers", str(base),
                                "-o", str(out)])
    assert result.returncode == 0, result.stderr
    defaults = yaml.safe_load((out / "roles/cloudrig/defaults/main.yml").read_text())
    assert defaults["cloudrig_version"] == __version__
    assert "consul_token" in defaults["cloudrig_secret_fields"]
    assert "db_password" in defaults["cloudrig_secret_fields"]
    readme = (out / "README.md").read_text()
    assert "ansible-vault encrypt_string" in readme and "vault_cloudrig_consul_token" in readme
    for path in files_under(out):
        text = path.read_text()
        assert consul.management_token not in text and DB_PASSWORD not in text
        if path.suffix == ".yml":
            yaml.load(text, Loader=AnsibleLoader)
    group = yaml.load((out / "group_vars/all/cloudrig.yml").read_text(), Loader=AnsibleLoader)
    base_answers = group["cloudrig_base_answers"]
    assert base_answers["consul_url"] == consul.url


def test_export_refuses_bad_input_and_writes_nothing(tmp_path, consul):
    env = private_env(tmp_path)
    out = tmp_path / "fleet"
    bad = write_answers(tmp_path / "bad.yaml", consul_url=consul.url, external_port=70000)
    result = run_cloudrig(env, ["export", "ansible", "carbonio", "--answers", str(bad),
                                "-o", str(out)])
    assert result.returncode == 2 and "external_port" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cloudrig(env, ["export", "ansible", "nosuch", "--answers", str(bad),
                                "-o", str(out)])
    assert result.returncode == 2 and "nosuch" in result.stderr
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    good = write_answers(tmp_path / "good.yaml", consul_url=consul.url)
    result = run_cloudrig(env, ["export", "ansible", "carbonio", "--answers", str(good),
                                "-o", str(a_file)])
    assert result.returncode == 2 and "-o" in result.stderr
    assert not out.exists() and a_file.read_text() == "x"


def test_version_is_the_packages(cli):
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"cloudrig {__version__}"


def test_apply_json_says_whether_anything_changed(cli, answers_file, tmp_path):
    root = tmp_path / "root"
    first = cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes", "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["changed"] is True and summary["outcome"] == "done"
    moved = {s["step"] for s in summary["steps"] if s["before"] != s["after"]}
    assert {"gateway-config", "unit", "policy"} <= moved
    second = cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes",
                 "--json")
    again = json.loads(second.stdout)
    assert again["changed"] is False and all(s["before"] == s["after"] for s in again["steps"])
    dry = cli("apply", "carbonio", "--answers", answers_file, "--root", tmp_path / "other",
              "--dry-run", "--json")
    assert json.loads(dry.stdout)["changed"] is False
