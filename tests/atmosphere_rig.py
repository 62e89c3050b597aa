"""Shared pieces of the atmosphere tests: answers, OSA's haproxy config, a CLI runner."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from private_cli import private_env, run_cloudrig

# The shape of openstack-ansible's playbooks/vars/configs/haproxy_config.yml
# (abridged to four services; the procedure must copy whatever is there).
OSA_HAPROXY = """\
---
haproxy_default_services:
  - service:
      haproxy_service_name: galera
      haproxy_backend_nodes: "{{ [groups['galera_all'][0]] | default([]) }}"
      haproxy_bind: "{{ [internal_lb_vip_address] }}"
      haproxy_port: 3306
      haproxy_balance_type: tcp
      haproxy_timeout_client: 5000s
      haproxy_backend_options:
        - "mysql-check user {{ galera_monitoring_user }}"
      haproxy_whitelist_networks: "{{ haproxy_galera_whitelist_networks }}"
  - service:
      haproxy_service_name: keystone_service
      haproxy_backend_nodes: "{{ groups['keystone_all'] | default([]) }}"
      haproxy_port: 5000
      haproxy_ssl: "{{ haproxy_ssl }}"
      haproxy_balance_type: "http"
      haproxy_backend_options:
        - "httpchk HEAD /"
  - service:
      haproxy_service_name: keystone_admin
      haproxy_backend_nodes: "{{ groups['keystone_all'] | default([])  }}"
      haproxy_port: 35357
      haproxy_balance_type: "http"
      haproxy_backend_options:
        - "httpchk HEAD /"
      haproxy_whitelist_networks: "{{ haproxy_keystone_admin_whitelist_networks }}"
  - service:
      haproxy_service_name: nova_api_os_compute
      haproxy_backend_nodes: "{{ groups['nova_api_os_compute'] | default([]) }}"
      haproxy_ssl: "{{ haproxy_ssl }}"
      haproxy_port: 8774
      haproxy_balance_type: http
"""

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


def base_answers(tmp: Path, **changes: object) -> dict[str, object]:
    haproxy = tmp / "osa" / "haproxy_config.yml"
    haproxy.parent.mkdir(parents=True, exist_ok=True)
    haproxy.write_text(OSA_HAPROXY)
    answers: dict[str, object] = {
        "host_role": "osa-deploy",
        "export_dir": str(tmp / "export"),
        "cloud_fqdn": "cloud.example.org",
        "tls_cert": "/etc/ssl/mycert.crt",
        "tls_key": "/etc/ssl/private/mycert.key",
        "tls_ca": "/etc/ssl/mycert-ca.crt",
        "atmosphere_networks": ["192.168.0.0/16", "10.0.0.0/8", "128.196.0.0/16"],
        "osa_config_dir": str(tmp / "openstack_deploy"),
        "osa_haproxy_config": str(haproxy),
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
