"""Shared pieces of the atmosphere tests: answers, OSA's haproxy config, a CLI runner."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from private_cli import private_env, run_cloudrig

# Abridged files of openstack-ansible checkouts at tags 14.0.0, 15.0.0, 16.0.0, 18.0.0
# and 19.0.0, each with its source in its header (tests/fixtures/osa/<major>/, laid out
# as on a deployment host: opt/openstack-ansible/…, and usr/local/bin for 19).
OSA_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "osa"
OSA_RELEASES = (14, 15, 16, 18, 19)


def osa_checkout(tmp: Path, major: int) -> Path:
    """A copy of the OSA `major` checkout fixture under `tmp` (its osa_dir)."""
    target = tmp / f"osa-{major}" / "openstack-ansible"
    if not target.exists():
        shutil.copytree(OSA_FIXTURES / str(major) / "opt" / "openstack-ansible", target)
    return target


def stage_osa(root: Path, major: int) -> None:
    """The OSA `major` fixture staged under --root DIR, as the deployment host has it
    (/opt/openstack-ansible, and /usr/local/bin/openstack-ansible where it exists)."""
    shutil.copytree(OSA_FIXTURES / str(major), root, dirs_exist_ok=True)


RUNBOOK_OPENRC = """\
export OS_AUTH_URL=https://jetstreamtestcloud.cyverse.org:5000/v3
export OS_PROJECT_ID=090a144b4911402b91fba4ba10c3ebfe
export OS_PROJECT_NAME="cmart"
export OS_USER_DOMAIN_NAME="Default"
if [ -z "$OS_USER_DOMAIN_NAME" ]; then unset OS_USER_DOMAIN_NAME; fi
unset OS_TENANT_ID
unset OS_TENANT_NAME
export OS_USERNAME="admin"
echo "Please enter your OpenStack Password for project $OS_PROJECT_NAME as user $OS_USERNAME: "
read -sr OS_PASSWORD_INPUT
export OS_PASSWORD=$OS_PASSWORD_INPUT
export OS_REGION_NAME="RegionOne"
if [ -z "$OS_REGION_NAME" ]; then unset OS_REGION_NAME; fi
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
"""

ADMIN_PASSWORD = "adm'in \"pw\" ${x} {{ y }}"
ATMO_PASSWORD = "atmo-s3cret pass'word"
PROVIDER_SECRET = "a-provider-secret-that-is-long-enough-1234"


def base_answers(tmp: Path, osa: int = 18, **changes: object) -> dict[str, object]:
    """Answers for the runbook's cloud, with an OSA `osa` checkout (18: Rocky) as osa_dir."""
    answers: dict[str, object] = {
        "host_role": "osa-deploy",
        "export_dir": str(tmp / "export"),
        "cloud_fqdn": "cloud.example.org",
        "tls_cert": "/etc/ssl/mycert.crt",
        "tls_key": "/etc/ssl/private/mycert.key",
        "tls_ca": "/etc/ssl/mycert-ca.crt",
        "atmosphere_networks": ["192.168.0.0/16", "10.0.0.0/8", "128.196.0.0/16"],
        "osa_config_dir": str(tmp / "openstack_deploy"),
        "osa_dir": str(osa_checkout(tmp, osa)),
        "auth_url": "https://cloud.example.org:5000/v3",
        "dns_zone": "cloud.example.org",
        "floating_ip_range": "192.0.2.2-62",
        "hostname_format": "vm%(four)s.cloud.example.org",
        "provider_name": "my-awesome-cloud",
        "atmosphere_users": ["cmart", "sgregory"],
        "atmosphere_ansible_dir": str(tmp / "atmosphere-ansible"),
        "provider_json": str(tmp / "provider" / "my-awesome-cloud.json"),
    }
    answers.update(changes)
    return answers


@dataclass
class Cli:
    tmp: Path
    secrets: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return private_env(self.tmp, self.secrets, **self.extra_env)

    def write(self, answers: dict[str, object]) -> Path:
        path = self.tmp / "answers.yaml"
        path.write_text(json.dumps(answers))  # JSON is YAML
        return path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cloudrig(self.env(), args, self.outputs, timeout=180)
