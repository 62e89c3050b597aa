"""Read a config drive ISO the way a guest does: files extracted with `isoinfo -R -x`
(no pycdlib, no mount), then cloud-init's own ConfigDrive reader run on them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's cloud-init lives in the system Python

READER = r"""
import json, sys, yaml
from cloudinit.sources import convert_vendordata, normalize_pubkey_data
from cloudinit.sources.DataSourceConfigDrive import read_config_drive
r = read_config_drive(sys.argv[1])
vendor = convert_vendordata(r.get("vendordata"))
print(json.dumps({
    "metadata": r["metadata"],
    "userdata": r["userdata"].decode("utf-8"),
    "vendordata_raw": r.get("vendordata"),
    "vendor_config": yaml.safe_load(vendor) if vendor else None,
    "public_keys": normalize_pubkey_data(r["metadata"].get("public_keys")),
    "version": r["version"],
}))
"""

NETWORK_READER = r"""
import json, os, sys, tempfile
from cloudinit import helpers
from cloudinit.sources.DataSourceConfigDrive import DataSourceConfigDrive
cloud = tempfile.mkdtemp()
paths = helpers.Paths({"cloud_dir": cloud, "run_dir": os.path.join(cloud, "run")})
os.makedirs(paths.seed_dir)
os.symlink(sys.argv[1], os.path.join(paths.seed_dir, "config_drive"))
ds = DataSourceConfigDrive({}, None, paths)
assert ds._get_data(), "cloud-init did not take the drive"
ds.known_macs = json.loads(sys.argv[2])  # the guest's NICs, MAC -> name
print(json.dumps({"network_config": ds.network_config,
                  "instance_id": ds.get_instance_id()}))
"""
"""cloud-init's ConfigDrive datasource, given the drive as its seed directory: the
network configuration it hands on (None: cloud-init falls back to DHCP)."""


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install genisoimage cloud-init)")


def iso_tree(iso: Path, flag: str = "-R") -> list[str]:
    out = subprocess.run(["isoinfo", flag, "-f", "-i", str(iso)], check=True,
                         capture_output=True, text=True).stdout
    return sorted(out.split())


def extract(iso: Path, dest: Path) -> dict[str, bytes]:
    files = {}
    for path in iso_tree(iso):
        data = subprocess.run(["isoinfo", "-R", "-i", str(iso), "-x", path], check=True,
                              capture_output=True).stdout
        listing = subprocess.run(["isoinfo", "-R", "-l", "-i", str(iso)], check=True,
                                 capture_output=True, text=True).stdout
        if f"Directory listing of {path}/" in listing:
            (dest / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
            continue
        target = dest / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files[path.lstrip("/")] = data
    return files


def cloud_init_read(iso: Path, workdir: Path) -> dict[str, Any]:
    need("isoinfo", SYSTEM_PYTHON)
    check = subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit"], capture_output=True)
    if check.returncode != 0:
        pytest.skip("needs Debian's cloud-init package")
    extract(iso, workdir)
    result = subprocess.run([SYSTEM_PYTHON, "-c", READER, str(workdir)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def blkid_label(iso: Path) -> str:
    need("blkid")
    return subprocess.run(["blkid", "-o", "value", "-s", "LABEL", str(iso)], check=True,
                          capture_output=True, text=True).stdout.strip()


def cloud_init_network(iso: Path, workdir: Path,
                       nics: dict[str, str] | None = None) -> dict[str, Any]:
    """What cloud-init's DataSourceConfigDrive makes of the drive's network data, in a
    guest whose NICs are NICS (MAC -> interface name)."""
    need("isoinfo", SYSTEM_PYTHON)
    check = subprocess.run([SYSTEM_PYTHON, "-c", "import cloudinit"], capture_output=True)
    if check.returncode != 0:
        pytest.skip("needs Debian's cloud-init package")
    extract(iso, workdir)
    result = subprocess.run([SYSTEM_PYTHON, "-c", NETWORK_READER, str(workdir.resolve()),
                             json.dumps(nics or {})], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def module_frequencies(*modules: str) -> dict[str, dict[str, Any]]:
    """`meta` frequency and activating keys of cloud-init's own config modules."""
    need(SYSTEM_PYTHON)
    code = ("import importlib, json, sys\n"
            "out = {}\n"
            "for name in sys.argv[1:]:\n"
            "    meta = importlib.import_module('cloudinit.config.' + name).meta\n"
            "    out[name] = {'frequency': meta['frequency'],\n"
            "                 'keys': meta.get('activate_by_schema_keys') or []}\n"
            "from cloudinit.handlers import INCLUSION_TYPES_MAP\n"
            "out['mime'] = {'types': sorted(INCLUSION_TYPES_MAP.values())}\n"
            "print(json.dumps(out))\n")
    result = subprocess.run([SYSTEM_PYTHON, "-c", code, *modules], capture_output=True,
                            text=True)
    if result.returncode != 0 and "No module named 'cloudinit'" in result.stderr:
        pytest.skip("needs Debian's cloud-init package")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
