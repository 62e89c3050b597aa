"""atmosphere: answers validation (wizard and load), openrc import, and every rendered
file read back by its real parser (PyYAML, json, ansible-inventory, dnspython)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import typing
from pathlib import Path

import dns.zone
import pytest
import yaml
from atmosphere_rig import (
    ATMO_PASSWORD,
    PROVIDER_SECRET,
    RUNBOOK_OPENRC,
    Cli,
    base_answers,
)

from tui.answers import AnswersError, field_problems, validate
from tui.engine import Session
from tui.procedures.atmosphere import AtmosphereAnswers
from tui.procedures.atmosphere.answers import PUBLIC_SERVICES, ServiceName
from tui.procedures.atmosphere.openrc import parse_openrc
from tui.procedures.atmosphere.steps import merge_block
from tui.registry import get_procedure
from tui.secrets import SecretSource
from tui.state import StateStore

PROC = get_procedure("atmosphere")


def session(tmp: Path, answers: dict, root: Path | None = None) -> Session:
    secrets = SecretSource("atmosphere", ["atmo_admin_password", "provider_secret",
                                          "os_admin_password"],
                           overrides={"atmo_admin_password": ATMO_PASSWORD,
                                      "provider_secret": PROVIDER_SECRET}, interactive=False)
    return Session(procedure=PROC, answers=validate(AtmosphereAnswers, answers),
                   secrets=secrets, store=StateStore(tmp / "state"), root=root)


def files_of(s: Session, step_id: str) -> dict[str, str]:
    return {f.path: f.content for f in PROC.step(step_id).files(s.ctx)}


# ---------------------------------------------------------------- answers (acceptance 4)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"hostname_format": "vm_%(four)s.cloud.example.org"}, "not a valid host name"),
    ({"hostname_format": "vm%(four)s.elsewhere.org"}, "not a valid host name in "
                                                      "cloud.example.org"),
    ({"hostname_format": "vm%(fourth)s.cloud.example.org"}, "cannot be rendered"),
])
def test_bad_hostname_format_is_refused_in_the_wizard_and_on_load(tmp_path, changes, needle):
    data = base_answers(tmp_path, **changes)
    # The wizard: the field's problems as it is typed.
    problems = field_problems(AtmosphereAnswers, data, "hostname_format")
    assert problems and needle in problems[0]
    # On load: exit 2, the field, the problem and a good example; nothing written.
    cli = Cli(tmp_path)
    root = tmp_path / "root"
    result = cli("apply", "atmosphere", "--answers", str(cli.write(data)), "--root", str(root),
                 "--yes")
    assert result.returncode == 2
    assert "hostname_format:" in result.stderr and needle in result.stderr
    assert "for example: hostname_format: vm%(four)s.cloud.example.org" in result.stderr
    assert "Traceback" not in result.stderr
    assert not root.exists() and not (tmp_path / "export").exists()


def test_short_provider_secret_is_refused_in_the_wizard_and_on_load(tmp_path):
    data = base_answers(tmp_path)
    problems = field_problems(AtmosphereAnswers, {**data, "provider_secret": "changeme"},
                              "provider_secret")
    assert problems == ["must be at least 32 characters (it has 8); leave it unset to have "
                        "CloudRig generate a strong one"]
    cli = Cli(tmp_path, secrets={"provider_secret": "changeme", "atmo_admin_password": "x" * 12,
                                 "os_admin_password": "pw"})
    root = tmp_path / "root"
    result = cli("apply", "atmosphere", "--answers", str(cli.write(data)), "--root", str(root),
                 "--yes")
    assert result.returncode == 2, result.stderr
    assert "provider_secret: must be at least 32 characters" in result.stderr
    assert "for example: provider_secret: a-random-string-of-at-least-32-characters" \
        in result.stderr
    assert "changeme" not in result.stderr
    assert not root.exists() and not (tmp_path / "export").exists()


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("cloud_fqdn", "10.1.2.3", "is an IP address"),
    ("atmosphere_networks", ["10.0.0.1/8"], "has host bits set"),
    ("floating_ip_range", "192.0.2.62-2", "ends"),
    ("auth_url", "cloud.example.org:5000", "not an http(s) URL"),
])
def test_other_answers_name_the_field_and_an_example(tmp_path, field, value, needle):
    with pytest.raises(AnswersError) as info:
        validate(AtmosphereAnswers, base_answers(tmp_path, **{field: value}))
    text = str(info.value)
    assert f"  {field}" in text and needle in text and "for example" in text


def test_secrets_in_the_answers_file_are_refused(tmp_path):
    cli = Cli(tmp_path)
    data = base_answers(tmp_path, os_admin_password="hunter2")
    result = cli("plan", "atmosphere", "--answers", str(cli.write(data)))
    assert result.returncode == 2 and "secrets never go in answers files" in result.stderr


def test_openrc_is_read_not_executed(tmp_path):
    assert parse_openrc(RUNBOOK_OPENRC) == {
        "OS_AUTH_URL": "https://jetstreamtestcloud.cyverse.org:5000/v3",
        "OS_PROJECT_ID": "090a144b4911402b91fba4ba10c3ebfe", "OS_PROJECT_NAME": "cmart",
        "OS_USER_DOMAIN_NAME": "Default", "OS_USERNAME": "admin",
        "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public",
        "OS_IDENTITY_API_VERSION": "3"}
    marker = tmp_path / "executed"
    openrc = tmp_path / "openrc"
    openrc.write_text(RUNBOOK_OPENRC + f"touch {marker}\nexport OS_CACERT=$(touch {marker})\n")
    data = base_answers(tmp_path, openrc=str(openrc), region_name="RegionTwo")
    del data["auth_url"]
    answers = validate(AtmosphereAnswers, data)
    assert answers.auth_url == "https://jetstreamtestcloud.cyverse.org:5000/v3"
    assert answers.os_admin_project == "cmart"
    assert answers.os_user_domain == "Default"
    assert answers.region_name == "RegionTwo"  # an explicit answer wins
    assert not marker.exists()
    with pytest.raises(AnswersError, match="openrc: cannot read"):
        validate(AtmosphereAnswers, base_answers(tmp_path, openrc=str(tmp_path / "nope")))


# ---------------------------------------------------------------- files (acceptance 1)


def test_user_variables_parse_and_keep_osa_jinja_literal(tmp_path):
    s = session(tmp_path, base_answers(tmp_path, public_services=["keystone", "nova", "swift"]))
    (path, text), = files_of(s, "user-variables").items()
    assert path == f"{tmp_path}/openstack_deploy/user_variables_atmosphere.yml"
    data = yaml.safe_load(text)
    assert data["keystone_service_adminuri"] == (
        "{{ keystone_service_adminuri_proto }}://cloud.example.org:{{ keystone_admin_port }}")
    assert data["keystone_service_adminuri_proto"] == "https"
    assert data["keystone_service_adminuri_insecure"] is False
    assert data["nova_service_publicuri"] == (
        "{{ nova_service_publicuri_proto }}://cloud.example.org:{{ nova_service_port }}")
    assert data["swift_service_publicuri"] == (
        "{{ swift_service_publicuri_proto }}://cloud.example.org:{{ swift_proxy_port }}")
    assert "glance_service_publicuri" not in data
    for service in ("rabbitmq", "horizon", "haproxy", "keystone"):
        assert data[f"{service}_user_ssl_cert"] == "/etc/ssl/mycert.crt"
        assert data[f"{service}_user_ssl_ca_cert"] == "/etc/ssl/mycert-ca.crt"
    # OSA 18 (Rocky, the rig's checkout): keystone_admin's whitelist is one variable.
    assert data["haproxy_keystone_admin_whitelist_networks"] == [
        "192.168.0.0/16", "10.0.0.0/8", "128.196.0.0/16"]
    assert "haproxy_default_services" not in data


def test_user_variables_warns_about_duplicate_keys_in_other_user_files(tmp_path):
    config = tmp_path / "openstack_deploy"
    config.mkdir()
    (config / "user_variables.yml").write_text(
        "keystone_service_adminuri_proto: http\n"
        "haproxy_keystone_admin_whitelist_networks: []\nother: 1\n")
    s = session(tmp_path, base_answers(tmp_path))
    views = {v.step: v for v in s.plan_view(s.plan(["user-variables"]))}
    warnings = [i.text for i in views["user-variables"].items if i.kind == "manual"]
    assert any(f"{config}/user_variables.yml also defines "
               "haproxy_keystone_admin_whitelist_networks, keystone_service_adminuri_proto"
               in w for w in warnings)


def test_provider_json_is_json_and_0600(tmp_path):
    # admin_url and user_role answered: written without Keystone (no admin password here).
    data = base_answers(tmp_path, host_role="atmosphere", admin_url="https://cloud.example.org:5000",
                        user_role="member")
    cli = Cli(tmp_path, secrets={"atmo_admin_password": ATMO_PASSWORD,
                                 "provider_secret": PROVIDER_SECRET})
    root = tmp_path / "root"
    result = cli("apply", "atmosphere", "--answers", str(cli.write(data)), "--root", str(root),
                 "--yes", "--step", "provider-json")
    assert result.returncode == 0, result.stderr
    path = root / str(tmp_path / "provider/my-awesome-cloud.json").lstrip("/")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    provider = json.loads(path.read_text())
    assert provider["admin"] == {"username": "atmoadmin", "password": ATMO_PASSWORD,
                                 "tenant": "atmoadmin"}
    # Every add_new_provider.py skips its name prompt when the JSON has the name.
    assert provider["provider"] == {"name": "my-awesome-cloud", "public": True}
    assert provider["credential"] == {
        "admin_url": "https://cloud.example.org:5000",
        "auth_url": "https://cloud.example.org:5000", "public_routers": "public_router",
        "network_name": "selfservice", "region_name": "RegionOne",
        "ex_force_auth_version": "3.x_password"}
    assert provider["cloud_config"]["user"] == {"admin_role_name": "admin",
                                                "user_role_name": "member",
                                                "domain": "default", "secret": PROVIDER_SECRET}
    assert provider["cloud_config"]["deploy"]["hostname_format"] == \
        "vm%(four)s.cloud.example.org"
    assert provider["cloud_config"]["network"]["dns_nameservers"] == ["8.8.8.8", "8.8.4.4"]
    assert ATMO_PASSWORD not in result.stderr + result.stdout


@pytest.mark.skipif(not shutil.which("ansible-inventory", path=str(Path(sys.executable)
                                                                   .parent)),
                    reason="ansible-core (test extra) not installed")
def test_ansible_hosts_parse_with_ansible_inventory_and_keep_other_entries(tmp_path):
    hosts = tmp_path / "atmosphere-ansible/ansible/hosts"
    hosts.parent.mkdir(parents=True)
    hosts.write_text("[atmosphere:children]\natmosphere-old\n\n[atmosphere-old]\n"
                     "vm9.old.example.org ansible_host=198.51.100.9\n")
    s = session(tmp_path, base_answers(tmp_path, host_role="atmosphere",
                                       floating_ip_range="192.0.2.0/26"))
    for path, text in files_of(s, "atmosphere-ansible").items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    again = files_of(session(tmp_path, base_answers(tmp_path, host_role="atmosphere",
                                                    floating_ip_range="192.0.2.0/26")),
                     "atmosphere-ansible")
    assert again[str(hosts)] == hosts.read_text()  # the block is replaced, not appended
    inventory = Path(sys.executable).parent / "ansible-inventory"
    listed = subprocess.run([str(inventory), "-i", str(hosts), "--list"], capture_output=True,
                            text=True, timeout=120,
                            env={"PATH": f"{inventory.parent}:/usr/bin:/bin",
                                 "HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert sorted(data["atmosphere"]["children"]) == ["atmosphere-my-awesome-cloud",
                                                      "atmosphere-old"]
    names = data["atmosphere-my-awesome-cloud"]["hosts"]
    assert len(names) == 62 and names[0] == "vm1.cloud.example.org"
    assert "vm9.old.example.org" in data["atmosphere-old"]["hosts"]
    hostvars = data["_meta"]["hostvars"]["vm62.cloud.example.org"]
    assert hostvars["ansible_host"] == "192.0.2.62"
    # From group_vars/atmosphere-my-awesome-cloud: what atmosphere-ansible's roles read.
    assert hostvars["ansible_port"] == 22
    assert hostvars["NTP_SERVERS"] == ["0.ubuntu.pool.ntp.org", "1.ubuntu.pool.ntp.org",
                                       "2.ubuntu.pool.ntp.org"]
    assert hostvars["F2B_IGNOREIP"] == ["127.0.0.1/8"]
    assert hostvars["SSH_ALLOW_GROUPS"] == "users root"


# The variables atmosphere-ansible's roles read from group_vars, as its examples set them
# (cyverse/atmosphere-ansible ansible/group_vars/atmosphere-example @6aaa7da, cyverse/clank
# dist_files/group_vars/atmosphere-provider1): atmo-ntp templates/ntp.conf.j2 (NTP_SERVERS),
# atmo-fail2ban templates/*jail.local.j2 (F2B_IGNOREIP), atmo-common
# templates/etc_timezone.j2 (TIMEZONE), atmo-ssh-setup defaults/main.yml and
# tasks/root-setup.yml (SSH_ALLOW_GROUPS, SSHKEYS); ansible_port is Ansible's own.
ATMOSPHERE_ANSIBLE_VARS = {"ansible_port", "NTP_SERVERS", "F2B_IGNOREIP", "TIMEZONE",
                           "SSH_ALLOW_GROUPS", "SSHKEYS"}
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ4c3hnb2V6dWx0b2ZkYWx0b2ZkYWx0b2ZkYWx0b2Zk "
       "admin@site")


def test_group_vars_hold_what_atmosphere_ansible_reads_named_as_upstream(tmp_path):
    s = session(tmp_path, base_answers(
        tmp_path, host_role="atmosphere", hostname_format="vm%(four)s.%(domain)s",
        ntp_servers=["ntp1.example.org", "192.0.2.123"], f2b_ignoreip=["127.0.0.1/8",
                                                                       "128.196.0.0/16"],
        timezone="/usr/share/zoneinfo/UTC", ssh_allow_groups="users root admins",
        ssh_keys=[KEY]))
    files = files_of(s, "atmosphere-ansible")
    base = f"{tmp_path}/atmosphere-ansible/ansible"
    data = yaml.safe_load(files[f"{base}/group_vars/atmosphere-my-awesome-cloud"])
    assert set(data) == ATMOSPHERE_ANSIBLE_VARS
    assert data == {"ansible_port": 22, "NTP_SERVERS": ["ntp1.example.org", "192.0.2.123"],
                    "F2B_IGNOREIP": ["127.0.0.1/8", "128.196.0.0/16"],
                    "TIMEZONE": "/usr/share/zoneinfo/UTC",
                    "SSH_ALLOW_GROUPS": "users root admins", "SSHKEYS": [KEY]}
    hosts = files[f"{base}/hosts"]
    # %(domain)s is Atmosphere's INSTANCE_HOSTNAMING_DOMAIN, rendered as dns_zone.
    assert "[atmosphere-my-awesome-cloud]\nvm2.cloud.example.org ansible_host=192.0.2.2\n" \
        in hosts
    assert "[atmosphere:children]\natmosphere-my-awesome-cloud\n" in hosts
    # No SSHKEYS at all when none are given (atmo-ssh-setup: `when: SSHKEYS is defined`).
    s = session(tmp_path, base_answers(tmp_path, host_role="atmosphere"))
    data = yaml.safe_load(files_of(s, "atmosphere-ansible")[
        f"{base}/group_vars/atmosphere-my-awesome-cloud"])
    assert "SSHKEYS" not in data and set(data) < ATMOSPHERE_ANSIBLE_VARS


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("ssh_keys", ["not a key"], "is not an OpenSSH public key line"),
    ("f2b_ignoreip", ["10.0.0.0/33"], "is not an IP address, a network (CIDR) or a host name"),
    ("ntp_servers", ["ntp server"], "is not a host name or IP address"),
])
def test_bad_group_vars_answers_name_the_field(tmp_path, field, value, needle):
    problems = field_problems(AtmosphereAnswers, base_answers(tmp_path, **{field: value}), field)
    assert problems and needle in problems[0]


def test_an_earlier_cloudrig_group_vars_file_is_replaced_by_upstreams_name(tmp_path):
    base = tmp_path / "atmosphere-ansible/ansible"
    legacy = base / "group_vars/my-awesome-cloud"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("---\n# Written by CloudRig (procedure `atmosphere`): variables for the "
                      "instances\nansible_port: 22\natmosphere_provider: my-awesome-cloud\n")
    operator = base / "group_vars/someone-else"
    operator.write_text("---\nNTP_SERVERS: [ntp.example.org]\n")
    s = session(tmp_path, base_answers(tmp_path, host_role="atmosphere"))
    [plan] = s.plan(["atmosphere-ansible"])
    assert [i.path for i in plan.items if i.kind == "remove"] == [str(legacy)]


def test_merge_block_appends_then_replaces():
    block = "# BEGIN CloudRig atmosphere p\n[p]\n# END CloudRig atmosphere p\n"
    first = merge_block("[x]\nh1", block, "p")
    assert first == "[x]\nh1\n\n" + block
    assert merge_block(first, block.replace("[p]", "[p]\nh2"), "p").count("BEGIN") == 1


def test_zone_fragment_parses_with_dnspython(tmp_path):
    s = session(tmp_path, base_answers(tmp_path))
    (path, text), = files_of(s, "dns").items()
    assert path == f"{tmp_path}/export/dns/cloud.example.org.zone-fragment"
    zone = dns.zone.from_text(text, origin="cloud.example.org.", check_origin=False)
    records = {str(name): rdata.to_text() for name, _ttl, rdata in zone.iterate_rdatas("A")}
    assert len(records) == 61
    assert records["vm2"] == "192.0.2.2" and records["vm62"] == "192.0.2.62"


def test_the_public_service_type_names_exactly_the_services_with_variables() -> None:
    """ServiceName is written out for the type checker: it must list every key of
    PUBLIC_SERVICES, in its order (the wizard's choices), and nothing else."""
    assert typing.get_args(ServiceName) == tuple(PUBLIC_SERVICES)
