"""OpenStack-Ansible releases: which one a deployment host runs, and how each opens
the Keystone admin API to Atmosphere.

The runbook was written for OSA Newton/Ocata (14/15): copy `haproxy_default_services`
whole and change keystone_admin. What each release really has, read from
openstack/openstack-ansible at the tags named (fixtures under tests/fixtures/osa/):

- The release: `openstack_release: X.Y.Z` in the all-group variables —
  playbooks/inventory/group_vars/all.yml (14.0.0, 15.0.0), group_vars/all/all.yml
  (16.0.0), inventory/group_vars/all/all.yml (17.0.0, 18.0.0). From 19.0.0 that line is
  `{{ lookup('env', 'OSA_VERSION') }}`, and scripts/bootstrap-ansible.sh writes the
  version into the wrapper it installs as /usr/local/bin/openstack-ansible
  (scripts/openstack-ansible.sh: `export OSA_VERSION="CURRENT_OSA_VERSION"`, sed-replaced).
- The HAProxy settings: playbooks/vars/configs/haproxy_config.yml (14.0.0, 15.0.0),
  group_vars/all/haproxy.yml (16.0.0), inventory/group_vars/haproxy_all/haproxy.yml
  (17.0.0), inventory/group_vars/haproxy/haproxy.yml (18.0.0 … 26.0.0), and from 27.0.0
  one file per service: inventory/group_vars/keystone_all/haproxy_service.yml.
- 14.0.0: keystone_admin carries a literal `haproxy_whitelist_networks` list and no
  `haproxy_ssl`; with ansible.cfg's hash_behaviour=replace, the runbook's way (copy the
  whole list, change keystone_admin) is the only one.
- 15.0.0 … 18.0.0: keystone_admin's whitelist is
  `{{ haproxy_keystone_admin_whitelist_networks }}` (commit 75371ddaa, "Configurable
  haproxy network whitelists", 2017-02-04; the variable's default is in
  playbooks/inventory/group_vars/haproxy_all.yml at 15.0.0) and it already has
  `haproxy_ssl`: that one variable does the job, and copying the list would freeze
  every other service at this release's definition.
- 18.0.0: `keystone_admin_port: 5000` (commit 5811dc6fb, "Replace 35357 with 5000 for
  Keystone Admin Port"; inventory/group_vars/all/keystone.yml); the 35357 frontend
  stays only as a pointer to 5000. 19.0.0 drops the keystone_admin service: the
  admin API is keystone_service on port 5000, with nothing to whitelist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from tui.errors import OperatorError

Reader = Callable[[str], bytes | None]
Whitelist = Literal["copy", "variable", "none"]

OLDEST = 14
SERIES = {14: "Newton", 15: "Ocata", 16: "Pike", 17: "Queens", 18: "Rocky", 19: "Stein",
          20: "Train", 21: "Ussuri", 22: "Victoria", 23: "Wallaby", 24: "Xena", 25: "Yoga",
          26: "Zed", 27: "2023.1", 28: "2023.2", 29: "2024.1", 30: "2024.2", 31: "2025.1",
          32: "2025.2", 33: "2026.1"}

# Where each release keeps `openstack_release` (tags 14.0.0 … 18.0.0, see above).
RELEASE_FILES = ("inventory/group_vars/all/all.yml", "group_vars/all/all.yml",
                 "playbooks/inventory/group_vars/all.yml")
WRAPPER = "/usr/local/bin/openstack-ansible"
WHITELIST_VARIABLE = "haproxy_keystone_admin_whitelist_networks"

_RELEASE = re.compile(r"^openstack_release:\s*['\"]?(\d+)\.\d+\.\d+", re.M)
_WRAPPER = re.compile(r"^export OSA_VERSION=['\"]?(\d+)\.\d+\.\d+", re.M)


@dataclass(frozen=True)
class OsaRelease:
    major: int
    source: str  # where the release was read, for the operator

    @property
    def name(self) -> str:
        series = SERIES.get(self.major)
        return f"OSA {self.major}" + (f" ({series})" if series else "")

    @property
    def whitelist(self) -> Whitelist:
        """How keystone_admin is opened to Atmosphere on this release."""
        if self.major <= 14:
            return "copy"
        return "variable" if self.major <= 18 else "none"

    @property
    def keystone_admin_port(self) -> int:
        return 35357 if self.major <= 17 else 5000

    @property
    def haproxy_file(self) -> str:
        """The HAProxy service settings, relative to the checkout."""
        if self.major <= 15:
            return "playbooks/vars/configs/haproxy_config.yml"
        if self.major == 16:
            return "group_vars/all/haproxy.yml"
        if self.major == 17:
            return "inventory/group_vars/haproxy_all/haproxy.yml"
        if self.major <= 26:
            return "inventory/group_vars/haproxy/haproxy.yml"
        return "inventory/group_vars/keystone_all/haproxy_service.yml"


def given(major: int) -> OsaRelease:
    if major < OLDEST:
        raise OperatorError(f"osa_release {major} is older than OSA {OLDEST} (Newton), the "
                            "oldest release CloudRig knows")
    return OsaRelease(major, "the answer osa_release")


def detect(osa_dir: str, read: Reader) -> OsaRelease | None:
    """The release of the checkout at `osa_dir` (files read with `read`), or None when
    nothing there says it (no checkout on this host)."""
    base = osa_dir.rstrip("/")
    for relative in RELEASE_FILES:
        data = read(f"{base}/{relative}")
        if data is None:
            continue
        match = _RELEASE.search(data.decode("utf-8", errors="replace"))
        if match:
            return OsaRelease(int(match.group(1)), f"openstack_release in {base}/{relative}")
    data = read(WRAPPER)
    if data is not None:
        match = _WRAPPER.search(data.decode("utf-8", errors="replace"))
        if match:
            return OsaRelease(int(match.group(1)), f"OSA_VERSION in {WRAPPER}")
    return None


def release(osa_release: int | None, osa_dir: str, read: Reader) -> OsaRelease:
    """The answer when given, else what the checkout says; a sentence when neither."""
    if osa_release is not None:
        return given(osa_release)
    found = detect(osa_dir, read)
    if found is None:
        raise OperatorError(
            f"cannot tell the OpenStack-Ansible release: no openstack_release in {osa_dir} "
            f"and no OSA_VERSION in {WRAPPER} on this host; answer osa_release with the "
            "major version the deployment host runs (e.g. osa_release: 19 for Stein; "
            "`openstack-ansible --version` or the checkout's git tag there says it)")
    if found.major < OLDEST:
        raise OperatorError(f"{found.name} ({found.source}) is older than OSA {OLDEST} "
                            "(Newton), the oldest release CloudRig knows")
    return found


def services(data: Any) -> list[Any] | None:
    value = data.get("haproxy_default_services") if isinstance(data, dict) else None
    return value if isinstance(value, list) else None


def keystone_admin(entries: list[Any]) -> dict[str, Any] | None:
    for entry in entries:
        service = entry.get("service") if isinstance(entry, dict) else None
        if isinstance(service, dict) and service.get("haproxy_service_name") == "keystone_admin":
            return service
    return None


def haproxy_settings(rel: OsaRelease, where: str, source: bytes | None) -> list[Any] | None:
    """haproxy_default_services of `where` (the release's settings file), checked
    against what `rel` says it holds. None when the file is not on this host and the
    release does not need it (only 14 copies the list)."""
    if source is None:
        if rel.whitelist == "copy":
            raise OperatorError(
                f"{where} is not on this host; on {rel.name} CloudRig copies "
                "haproxy_default_services from it (hash_behaviour=replace). Run on the OSA "
                "deployment host, or copy the file here and set osa_haproxy_config")
        return None
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise OperatorError(f"{where} is not valid YAML ({exc})") from None
    entries = services(data)
    if rel.major >= 27:
        return entries  # one file per service from 27: keystone's holds keystone_service only
    if entries is None:
        raise OperatorError(f"{where} has no haproxy_default_services list; check osa_dir "
                            f"and osa_release ({rel.name} keeps it in {rel.haproxy_file})")
    admin = keystone_admin(entries)
    if rel.whitelist == "none":
        if admin is not None:
            raise OperatorError(f"{where} has a keystone_admin service, which {rel.name} "
                                f"({rel.source}) does not have (OSA dropped it in 19); "
                                "check osa_release")
        return entries
    if admin is None:
        raise OperatorError(f"{where} has no keystone_admin service in "
                            f"haproxy_default_services, which {rel.name} ({rel.source}) has; "
                            "check osa_dir and osa_release")
    uses_variable = WHITELIST_VARIABLE in str(admin.get("haproxy_whitelist_networks"))
    if rel.whitelist == "variable" and not uses_variable:
        raise OperatorError(f"keystone_admin in {where} does not use {WHITELIST_VARIABLE}, "
                            f"which {rel.name} ({rel.source}) does; check osa_release "
                            "(OSA 14 has no such variable)")
    return entries
