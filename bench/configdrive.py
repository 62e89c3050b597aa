"""Build time of CloudRig's config drive ISO divided by genisoimage's, same tree.

Usage: python bench/configdrive.py [--repeat N]

For 32 KB and 1 MB of user data: CloudRig builds the ISO in memory with pycdlib
(`tui.procedures.cloudstack.configdrive.build_iso`); genisoimage is run with
ConfigDriveBuilder's exact arguments on the same tree, already written to disk
(CloudStack writes the tree first, so only the ISO step is timed for both). Each
side is timed N times in this one run and the best time is kept, which filters out
noise from other processes on a shared machine. A ratio above 1 means CloudRig is slower.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.procedures.cloudstack.configdrive import ConfigDriveData, build_iso, layout

GENISOIMAGE = ["-ldots", "-allow-lowercase", "-allow-multidot", "-cache-inodes", "-l",
               "-quiet", "-J", "-r", "-V", "config-2"]


def drive(size: int) -> ConfigDriveData:
    body = b"#cloud-config\nwrite_files:\n- path: /etc/blob\n  content: "
    body += b"x" * (size - len(body) - 1) + b"\n"
    return ConfigDriveData(user_data=body, password="bench-password", metadata={
        "service-offering": "Small Instance", "availability-zone": "zone-1",
        "local-hostname": "bench", "instance-id": "i-2-5-VM",
        "vm-id": "6b2e8f1c-1d2f-4c7a-9a55-0a1b2c3d4e5f",
        "public-keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7 op@host"})


def write_tree(data: ConfigDriveData, root: Path) -> None:
    for path, content in layout(data).items():
        if path == "openstack/latest/user_data":
            continue
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    os.link(root / "cloudstack/userdata/user_data.txt", root / "openstack/latest/user_data")


def best(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tool = shutil.which("genisoimage") or shutil.which("mkisofs")
    if tool is None:
        print("genisoimage is not installed (apt-get install genisoimage)", file=sys.stderr)
        return 2
    print(f"{'user data':>10}  {'cloudrig s':>10}  {'genisoimage s':>13}  ratio")
    for label, size in (("32 KB", 32 * 1024), ("1 MB", 1024 * 1024)):
        data = drive(size)
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "tree"
            write_tree(data, tree)
            out = Path(tmp) / "genisoimage.iso"
            # genisoimage warns that -allow-lowercase is not strict ISO 9660: silenced.
            argv = [tool, "-o", str(out), *GENISOIMAGE, str(tree)]
            theirs = best(partial(subprocess.run, argv, check=True,
                                  stderr=subprocess.DEVNULL), args.repeat)
            ours = best(partial(build_iso, data), args.repeat)
        print(f"{label:>10}  {ours:>10.4f}  {theirs:>13.4f}  {ours / theirs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
