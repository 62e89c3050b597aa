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
