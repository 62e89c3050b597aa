"""`cloudrig export ansible` run by the real ansible-playbook on two local "hosts".

Each host is `ansible_connection: local` with this interpreter (so the role finds
CloudRig installed at the exporting version and installs nothing), its own `--root`,
state directory, answers (host_vars) and fake Consul; secrets come from files
encrypted with the real `ansible-vault`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cli_rig import (
    DB_PASSWORD,
    after_root_apply,
    base_env,
    closed_port,
    files_under,
    statuses,
    write_answers,
)
from fakes.consul import FakeConsul

from tui import __version__

CONFIG = "etc/carbonio/gateway/service-discover"
HOSTS = ("hostA", "hostB")
VAULT_PASSWORD = "vault-pass-for-tests"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    """ansible-playbook / ansible-vault of this interpreter's environment, else PATH's."""
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (ansible-core)")
    return str(path)


@dataclass
class Fleet:
    tmp: Path
    out: Path
    env: dict[str, str]
    consuls: dict[str, FakeConsul]
    ports: dict[str, int]

    def root(self, host: str) -> Path:
        return self.tmp / host / "root"

    def playbook(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_tool("ansible-playbook"), "-i", "inventory.yml", "site.yml",
             "--vault-password-file", str(self.tmp / "vault-pass")],
            cwd=self.out, env=self.env, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=600)

    @property
    def secrets(self) -> list[str]:
        return [DB_PASSWORD, *(c.management_token for c in self.consuls.values())]


def _recap(output: str) -> dict[str, dict[str, int]]:
    """host → counters of the PLAY RECAP."""
    recap = output.split("PLAY RECAP", 1)[1]
    return {m[1]: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[2])}
            for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", recap, re.M)}


def _vault(fleet_tmp: Path, env: dict[str, str], files: dict[Path, dict[str, str]]) -> None:
    """Write each file's data as a vars file encrypted by the real ansible-vault (one
    `ansible-vault encrypt` for them all: it takes several files)."""
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
    done = subprocess.run([_tool("ansible-vault"), "encrypt", *map(str, files),
                           "--vault-password-file", str(fleet_tmp / "vault-pass")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for path in files:
        assert path.read_text().startswith("$ANSIBLE_VAULT"), path


@pytest.fixture
def fleet(tmp_path: Path, cli) -> Iterator[Fleet]:
    consuls = {h: FakeConsul().start() for h in HOSTS}
    ports = {"hostA": closed_port(), "hostB": closed_port()}
    answers = write_answers(tmp_path / "answers.yaml", consul_url=consuls["hostA"].url,
                            external_port=ports["hostA"])
    out = tmp_path / "export"
    done = cli("export", "ansible", "carbonio", "--answers", answers, "-o", out)
    assert done.returncode == 0, done.stderr
    env = base_env(tmp_path / "home", tmp_path / "unused-state")
    env.update(ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_STDOUT_CALLBACK="default",
               # Each module through the interpreter's stdin, not a temp file that a
               # `mkdir`, a copy and an `rm` per task put there and take away (the
               # local connection supports it; the role runs without become here).
               ANSIBLE_PIPELINING="1")
    # PYTHONPATH passes through (base_env): the hosts run the CloudRig this test imports.
    (tmp_path / "vault-pass").write_text(VAULT_PASSWORD + "\n")
    (tmp_path / "vault-pass").chmod(0o600)
    inventory = {"all": {"hosts": {h: {"ansible_connection": "local",
                                       "ansible_python_interpreter": sys.executable}
                                   for h in HOSTS},
                         "vars": {"cloudrig_become": False}}}  # the test is its own user
    (out / "inventory.yml").write_text(yaml.safe_dump(inventory))
    vaults: dict[Path, dict[str, str]] = {}
    for host in HOSTS:
        base = tmp_path / host
        host_vars = {
            "cloudrig_python": sys.executable,
            "cloudrig_root": str(base / "root"),
            "cloudrig_answers_dir": str(base / "answers"),
            "cloudrig_environment": {"CLOUDRIG_STATE_DIR": str(base / "state"),
                                     "CLOUDRIG_SECRETS_BACKEND": "file", "NO_COLOR": "1"},
            "cloudrig_answers": {"consul_url": consuls[host].url,
                                 "gateway_name": f"gw-{host.lower()}",
                                 "external_port": ports[host]},
        }
        (out / "host_vars" / host).mkdir(parents=True)
        (out / "host_vars" / host / "main.yml").write_text(yaml.safe_dump(host_vars))
        vaults[out / "host_vars" / host / "vault.yml"] = {
            "vault_cloudrig_consul_token": consuls[host].management_token}
    vaults[out / "group_vars" / "all" / "vault.yml"] = {
        "vault_cloudrig_db_password": DB_PASSWORD}
    _vault(tmp_path, env, vaults)
    yield Fleet(tmp_path, out, env, consuls, ports)
    for fake in consuls.values():
        fake.stop()


def test_export_writes_the_playbook_role_readme_and_no_secret(cli, answers_file, tmp_path):
    out = tmp_path / "export"
    done = cli("export", "ansible", "carbonio", "--answers", answers_file, "-o", out)
    assert done.returncode == 0, done.stderr
    names = {p.relative_to(out).as_posix() for p in files_under(out)}
    assert names == {"site.yml", "inventory.example.yml", "README.md",
                     "group_vars/all/cloudrig.yml", "roles/cloudrig/defaults/main.yml",
                     "roles/cloudrig/tasks/main.yml"}
    for name in names - {"README.md", "group_vars/all/cloudrig.yml"}:  # that one: !unsafe
        assert yaml.safe_load((out / name).read_text()), name
    readme = (out / "README.md").read_text()
    assert "ansible-vault encrypt_string --stdin-name vault_cloudrig_consul_token" in readme
    assert "CLOUDRIG_SECRET_DB_PASSWORD" in readme
    # Needed = asked by these answers' steps on a host with no secret, whatever the
    # exporting user has in its environment (the cli fixture sets both of these).
    encrypt = {line.split()[3] for line in readme.splitlines()
               if line.startswith("ansible-vault encrypt_string")}
    assert encrypt == {"vault_cloudrig_consul_token", "vault_cloudrig_db_password"}
    defaults = yaml.safe_load((out / "roles/cloudrig/defaults/main.yml").read_text())
    assert defaults["cloudrig_version"] == __version__
    assert {"consul_token", "db_password"} <= set(defaults["cloudrig_secret_fields"])
    for path in files_under(out):
        text = path.read_text()
        assert DB_PASSWORD not in text and "db pa'ss" not in text


@pytest.mark.parametrize(("argv", "words"), [
    (["export", "ansible", "nosuchproc", "--answers", "{answers}", "-o", "{out}"],
     "nosuchproc"),
    (["export", "ansible", "carbonio", "--answers", "{bad}", "-o", "{out}"], "external_port"),
    (["export", "ansible", "carbonio", "--answers", "{secret}", "-o", "{out}"], "consul_token"),
], ids=["unknown procedure", "bad answers", "secret in answers"])
def test_export_refuses_with_one_sentence_and_writes_nothing(cli, answers_file, tmp_path,
                                                             argv, words):
    bad = write_answers(tmp_path / "bad.yaml", external_port="eighty")
    secret = write_answers(tmp_path / "secret.yaml", consul_token="s3cret-in-answers")
    out = tmp_path / "export"
    argv = [a.format(answers=answers_file, bad=bad, secret=secret, out=out) for a in argv]
    done = cli(*argv)
    assert "s3cret-in-answers" not in done.output
    assert done.returncode == 2, done.output
    assert words in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("cloudrig: ")  # the CLI's usual sentence (per field)
    assert not out.exists()


def test_export_to_a_file_is_refused(cli, answers_file, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep\n")
    done = cli("export", "ansible", "carbonio", "--answers", answers_file, "-o", target)
    assert done.returncode == 2, done.output
    assert "-o" in done.stderr and "directory" in done.stderr
    assert target.read_text() == "keep\n"


@pytest.mark.slow
def test_playbook_applies_carbonio_to_two_hosts_then_changes_nothing(fleet: Fleet) -> None:
    first = fleet.playbook()
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    recap = _recap(first.stdout)
    # CloudRig answers --version at the exporting version: nothing is pip-installed.
    install = first.stdout.split("TASK [cloudrig : Install CloudRig", 1)[1].split("TASK [", 1)[0]
    assert all(f"skipping: [{h}]" in install for h in HOSTS), install
    for host in HOSTS:
        assert recap[host]["failed"] == 0 and recap[host]["changed"] >= 1, recap
        config = fleet.root(host) / CONFIG
        service = (fleet.root(host) / "lib/systemd/system" / f"gw-{host.lower()}.service")
        assert service.is_file(), files_under(fleet.root(host))
        assert f"gw-{host.lower()}" in (config / "gateway-config.hcl").read_text()
        external = json.loads((config / "carbonio-files-db-external.json").read_text())
        assert str(fleet.ports[host]) in json.dumps(external)
        other = HOSTS[1 - HOSTS.index(host)]
        assert str(fleet.ports[other]) not in json.dumps(external)
        assert "carbonio-files/db-password" in {k for k in fleet.consuls[host].kv}
        merged = yaml.safe_load((fleet.tmp / host / "answers" / "carbonio.yaml").read_text())
        assert merged["gateway_name"] == f"gw-{host.lower()}"  # host_vars override
        assert merged["external_address"] == "db.example.com"  # exported base answer
        assert "consul_token" not in merged and "db_password" not in merged

    report = json.loads((fleet.out / "cloudrig-report.json").read_text())
    assert set(report) == set(HOSTS)
    for host in HOSTS:
        assert report[host]["procedure"] == "carbonio"
        steps = statuses(json.dumps(report[host]))
        assert all(v == after_root_apply(k) for k, v in steps.items()), steps

    second = fleet.playbook()
    assert second.returncode == 0, second.stdout + second.stderr
    again = _recap(second.stdout)
    for host in HOSTS:
        assert again[host]["changed"] == 0 and again[host]["failed"] == 0, second.stdout

    outputs = [first.stdout, first.stderr, second.stdout, second.stderr]
    for secret in fleet.secrets:
        for text in outputs:
            assert secret not in text
        for path in files_under(fleet.out):
            assert secret not in path.read_text(errors="replace"), path


@pytest.mark.slow
def test_a_failing_host_stops_with_cloudrigs_sentence_and_no_secret(fleet: Fleet) -> None:
    fleet.consuls["hostB"].fail(503, "No cluster leader", times=1000,
                                path_prefix="/v1/catalog/register")
    run = fleet.playbook()
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    recap = _recap(run.stdout)
    assert recap["hostA"]["failed"] == 0 and recap["hostB"]["failed"] == 1, recap
    assert "No cluster leader" in output and "Traceback" not in output
    report = json.loads((fleet.out / "cloudrig-report.json").read_text())
    assert set(report) == {"hostA"}  # a failed host has no status to report
    for secret in fleet.secrets:
        assert secret not in output


def test_exported_answers_stay_literal_in_ansible(tmp_path: Path) -> None:
    """ansible_yaml tags strings !unsafe: the real Ansible never templates an answer."""
    from tui.export_ansible import ansible_yaml

    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("x:\n" + "\n".join(
        "  " + line for line in ansible_yaml({"text": "{{ 7 * 6 }}", "port": 5432,
                                             "nested": {"list": ["{% if 1 %}y{% endif %}"]}}
                                            ).splitlines()) + "\n")
    env = base_env(tmp_path / "home", tmp_path / "state")
    env.update(ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run(
        [_tool("ansible"), "localhost", "-c", "local", "-e",
         f"ansible_python_interpreter={sys.executable}", "-e", f"@{vars_file}",
         "-m", "ansible.builtin.copy", "-a",
         f"content={{{{ x | to_nice_json }}}} dest={tmp_path / 'out.json'}"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((tmp_path / "out.json").read_text()) == {
        "text": "{{ 7 * 6 }}", "port": 5432, "nested": {"list": ["{% if 1 %}y{% endif %}"]}}
