"""Shared pieces of the atmosphere tests: answers, OSA's haproxy config, a CLI runner."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from fakes.nameserver import NameServer
from private_cli import private_env, run_cloudrig

# Abridged files of openstack-ansible checkouts at tags 14.0.0, 15.0.0, 16.0.0, 18.0.0
# and 19.0.0, each with its source in its header (tests/fixtures/osa/<major>/, laid out
# as on a deployment host: opt/openstack-ansible/…, and usr/local/bin for 19).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OSA_FIXTURES = FIXTURES / "osa"
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


# add_new_provider.py of a stand-in Atmosphere: the upstream version's prompts
# (scripts/upstream_prompts.py, a fixture), then what the real one stores: a Provider
# named by the JSON or the answer (here in db.json), with the secret and platform.
ADD_NEW_PROVIDER = r'''
import argparse, builtins, json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import upstream_prompts
_input = builtins.input
def _asked(prompt=""):
    with open(os.path.join(here, "..", "prompts.log"), "a") as log:
        log.write(prompt + "\n")  # every prompt the release asked, in order
    return _input(prompt)
upstream_prompts.input = _asked
db_path = os.path.join(here, "..", "db.json")
with open(os.path.join(here, "..", "calls.log"), "a") as log:
    log.write("add_new_provider " + " ".join(sys.argv[1:]) + "\n")
assert os.environ.get("DJANGO_SETTINGS_MODULE") == "atmosphere.settings"
parser = argparse.ArgumentParser()
parser.add_argument("--from-json", dest="json")
args = parser.parse_args()
with open(args.json) as fp:
    info = json.loads(fp.read())  # the runbook's `#` comments would fail here
sections = [info.get(k, {}) for k in ("provider", "admin", "credential", "cloud_config")]
if not upstream_prompts.collect(*sections):
    sys.exit(1)
provider, admin, credential, cloud_config = sections
name = provider["name"]
db = json.load(open(db_path)) if os.path.exists(db_path) else {"providers": {}}
if name in db["providers"]:
    print("Found existing provider with name %s: %s" % (name, name))
else:
    db["providers"][name] = {"id": 4 + len(db["providers"]),
                             "secret": cloud_config["user"]["secret"],
                             "platform": provider["platform"], "admin": admin["username"]}
    json.dump(db, open(db_path, "w"))
    print("Created a new provider: %s" % name)
print("You still need to create an AllocationStrategy.")
'''

ADD_NEW_ACCOUNTS = r'''
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "calls.log"), "a") as log:
    log.write("add_new_accounts " + " ".join(sys.argv[1:]) + "\n")
db = json.load(open(os.path.join(here, "..", "db.json")))
pid = int(sys.argv[sys.argv.index("--provider") + 1])
if pid not in [p["id"] for p in db["providers"].values()]:
    print("Provider %s does not exist" % pid); sys.exit(1)
'''

MANAGE = r'''
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
assert sys.argv[1:3] == ["shell", "-c"], sys.argv
exec(sys.argv[3])
'''

MODELS = r'''
import json, os
_db = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "db.json")

class _Row:
    def __init__(self, id, location):
        self.id, self.location = id, location

class _Query:
    def __init__(self, rows):
        self.rows = rows
    def first(self):
        return self.rows[0] if self.rows else None
    def update(self, **fields):
        data = json.load(open(_db))
        for row in self.rows:
            data["providers"][row.location].update(
                {k: str(v) if k == "end_date" else v for k, v in fields.items()})
        json.dump(data, open(_db, "w"))
        return len(self.rows)

class _Manager:
    def filter(self, location):
        data = json.load(open(_db)) if os.path.exists(_db) else {"providers": {}}
        found = data["providers"].get(location)
        return _Query([_Row(found["id"], location)] if found else [])

class Provider:
    objects = _Manager()
'''

MONITORING = r'''
import os
_log = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "calls.log")
def _record(name, pid):
    with open(_log, "a") as log:
        log.write("%s %s\n" % (name, pid))
def monitor_sizes_for(pid): _record("monitor_sizes_for", pid)
def monitor_machines_for(pid): _record("monitor_machines_for", pid)
def monitor_instances_for(pid): _record("monitor_instances_for", pid)
'''


def make_atmosphere(directory: Path, version: str = "v37-5") -> None:
    """A stand-in Atmosphere checkout whose add_new_provider.py asks the prompts of that
    upstream tag (tests/fixtures/atmosphere/add_new_provider_<version>.py)."""
    prompts = (FIXTURES / "atmosphere" / f"add_new_provider_{version}.py").read_text()
    files = {"scripts/add_new_provider.py": ADD_NEW_PROVIDER,
             "scripts/upstream_prompts.py": prompts,
             "scripts/add_new_accounts.py": ADD_NEW_ACCOUNTS, "manage.py": MANAGE,
             "core/__init__.py": "", "core/models.py": MODELS, "service/__init__.py": "",
             "service/tasks/__init__.py": "", "service/tasks/monitoring.py": MONITORING,
             "django/__init__.py": "", "django/utils/__init__.py": "",
             "django/utils/timezone.py": "import datetime\n"
                                         "def now():\n"
                                         "    return datetime.datetime.now(datetime.UTC)\n"}
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


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


_EMPTY_ZONE: list[NameServer] = []


def empty_zone() -> str:
    """host:port of a name server on 127.0.0.1 that holds none of the cloud's names (one
    per test process, never stopped). The DNS check asks it rather than this machine's
    resolvers: a test reaches only 127.0.0.1, and gets the same answer wherever it
    runs (every floating IP's name missing) without waiting on a resolver."""
    if not _EMPTY_ZONE:
        _EMPTY_ZONE.append(NameServer({}))
    return _EMPTY_ZONE[0].address


def base_answers(tmp: Path, osa: int = 18, **changes: object) -> dict[str, object]:
    """Answers for the runbook's cloud, with an OSA `osa` checkout (18: Rocky) as osa_dir,
    its DNS check against `empty_zone()`."""
    answers: dict[str, object] = {
        "dns_server": empty_zone(),
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
