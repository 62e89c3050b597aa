"""Config drive ISOs: CloudStack's layout, read back by cloud-init, blkid and isoinfo,
compared with genisoimage's ISO of the same tree, and reproducible byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cloudinit_reader import blkid_label, cloud_init_network, cloud_init_read, iso_tree, need

from tui.procedures.cloudstack.configdrive import ConfigDriveData, build_iso, layout, read_iso

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7 operator@laptop"
USER_DATA = ("#cloud-config\nhostname: web-1\nwrite_files:\n- path: /etc/motd\n"
             "  content: héllo ${x} {{y}}\n")


def data(**changes) -> ConfigDriveData:
    base = dict(user_data=USER_DATA.encode(), password="Pa55-w0rd!",
                metadata={"service-offering": "Small Instance", "availability-zone": "zone-1",
                          "local-hostname": "web-1", "instance-id": "i-2-5-VM",
                          "vm-id": "6b2e8f1c-1d2f-4c7a-9a55-0a1b2c3d4e5f", "public-keys": KEY})
    base.update(changes)
    return ConfigDriveData(**base)


def test_layout_is_configdrivebuilders():
    files = layout(data(vendor_data="cloud-init"))
    assert files["cloudstack/userdata/user_data.txt"] == USER_DATA.encode()
    assert files["openstack/latest/user_data"] == files["cloudstack/userdata/user_data.txt"]
    assert files["cloudstack/password/vm_password.txt"] == b"Pa55-w0rd!"
    assert files["cloudstack/metadata/instance-id.txt"] == b"i-2-5-VM"
    assert "openstack/latest/network_data.json" not in files  # no NIC described
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert list(meta) == ["availability_zone", "hostname", "uuid", "keys", "public_keys"]
    assert meta["uuid"] == "6b2e8f1c-1d2f-4c7a-9a55-0a1b2c3d4e5f"
    assert meta["keys"] == [{"type": "ssh", "data": KEY, "name": "key"}]
    vendor = json.loads(files["openstack/latest/vendor_data.json"])
    assert vendor["cloud-init"].startswith("#cloud-config\n")
    assert layout(data(vendor_data="empty"))["openstack/latest/vendor_data.json"] == b"{}"
    assert layout(data(password=None, vendor_data="cloud-init"))[
        "openstack/latest/vendor_data.json"] == b"{}"
    assert layout(data())["openstack/latest/vendor_data.json"] == b"{}"  # CloudStack's


def test_iso_is_read_by_cloud_init_with_user_data_metadata_keys_and_password(tmp_path):
    iso = tmp_path / "drive.iso"
    iso.write_bytes(build_iso(data(vendor_data="cloud-init")))
    seen = cloud_init_read(iso, tmp_path / "mnt")
    assert seen["version"] == 2
    assert seen["userdata"] == USER_DATA
    assert seen["metadata"]["instance-id"] == "6b2e8f1c-1d2f-4c7a-9a55-0a1b2c3d4e5f"
    assert seen["metadata"]["local-hostname"] == "web-1"
    assert seen["metadata"]["availability_zone"] == "zone-1"
    assert seen["public_keys"] == [KEY]
    assert seen["vendor_config"] == {"password": "Pa55-w0rd!", "ssh_pwauth": True,
                                     "chpasswd": {"expire": False}}
    assert (tmp_path / "mnt/cloudstack/password/vm_password.txt").read_text() == "Pa55-w0rd!"
    assert blkid_label(iso) == "config-2"


def test_cloudstacks_vendor_data_keeps_password_only_in_the_cloudstack_file(tmp_path):
    iso = tmp_path / "cloudstack.iso"
    iso.write_bytes(build_iso(data()))
    seen = cloud_init_read(iso, tmp_path / "mnt")
    assert seen["vendordata_raw"] == {}
    assert (tmp_path / "mnt/cloudstack/password/vm_password.txt").read_text() == "Pa55-w0rd!"


def test_same_input_same_bytes_and_other_input_other_bytes():
    first = build_iso(data())
    assert build_iso(data()) == first
    assert build_iso(data(user_data=b"#cloud-config\n{}\n")) != first


def test_tree_matches_genisoimage_with_cloudstacks_arguments(tmp_path):
    need("genisoimage", "isoinfo")
    tree = tmp_path / "tree"
    for path, content in layout(data()).items():
        if path == "openstack/latest/user_data":
            continue
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    os.link(tree / "cloudstack/userdata/user_data.txt", tree / "openstack/latest/user_data")
    theirs = tmp_path / "genisoimage.iso"
    subprocess.run(["genisoimage", "-o", str(theirs), "-ldots", "-allow-lowercase",
                    "-allow-multidot", "-cache-inodes", "-l", "-quiet", "-J", "-r",
                    "-V", "config-2", str(tree)], check=True)
    ours = tmp_path / "cloudrig.iso"
    ours.write_bytes(build_iso(data()))
    assert iso_tree(ours, "-R") == iso_tree(theirs, "-R")
    assert iso_tree(ours, "-J") == iso_tree(theirs, "-J")
    assert blkid_label(theirs) == blkid_label(ours) == "config-2"
    assert read_iso(ours).files == read_iso(theirs).files
    assert read_iso(theirs).label == "config-2"


def test_reading_something_that_is_not_an_iso_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"not an iso" * 1000)
    with pytest.raises(ValueError, match="not an ISO 9660 image"):
        read_iso(junk)


def test_hard_link_shares_one_extent():
    # user_data.txt and openstack/latest/user_data are one extent, as genisoimage's
    # -cache-inodes makes them: 100 kB more user data grows the image by ~100 kB, not 200.
    small = len(build_iso(data(user_data=b"x" * 100_000)))
    large = len(build_iso(data(user_data=b"x" * 200_000)))
    assert 100_000 <= large - small < 110_000


def test_bytes_do_not_depend_on_the_build_hosts_time_zone():
    import hashlib
    import sys

    code = ("import hashlib;"
            "from test_configdrive import data;"
            "from tui.procedures.cloudstack.configdrive import build_iso;"
            "print(hashlib.sha256(build_iso(data())).hexdigest())")
    digests = set()
    for zone in ("UTC", "Asia/Kolkata", "America/St_Johns"):
        env = dict(os.environ, TZ=zone,  # this folder for `test_configdrive`; tui as installed
                   PYTHONPATH=os.pathsep.join(filter(None, [
                       str(Path(__file__).parent), str(Path(__file__).parents[1] / "support"),
                       os.environ.get("PYTHONPATH")])))
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout.strip()
        digests.add(out)
    assert digests == {hashlib.sha256(build_iso(data())).hexdigest()}


def test_bytes_do_not_depend_on_the_clock(monkeypatch):
    """The clock moves (400 days) between two builds: the same bytes, because the
    records' times come from the pinned epoch, not from when the ISO is built."""
    import time

    first = build_iso(data())
    later = time.time() + 400 * 86_400
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(time, "time_ns", lambda: int(later * 1e9))
    monkeypatch.setattr(time, "localtime",
                        lambda seconds=None: time.gmtime(later if seconds is None else seconds))
    assert build_iso(data()) == first


def test_without_network_data_cloud_init_falls_back_to_dhcp(tmp_path):
    """No NIC in the answers: the drive carries no network_data.json, so cloud-init's
    ConfigDrive datasource gives no network config and the guest falls back to DHCP.
    The `{}` CloudStack's builder writes for a NIC without Dhcp/Dns would instead be
    converted by cloud-init into an empty config: no interface configured at all."""
    iso = tmp_path / "drive.iso"
    iso.write_bytes(build_iso(data()))
    seen = cloud_init_network(iso, tmp_path / "ours")
    assert seen["instance_id"] == "6b2e8f1c-1d2f-4c7a-9a55-0a1b2c3d4e5f"
    assert seen["network_config"] is None
    # The same drive with `{}` added, as genisoimage would lay it out.
    tree = tmp_path / "empty-json"
    for path, content in {**layout(data()), "openstack/latest/network_data.json": b"{}"}.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(content)
    theirs = tmp_path / "empty-json.iso"
    need("genisoimage")
    subprocess.run(["genisoimage", "-o", str(theirs), "-quiet", "-J", "-r", "-V", "config-2",
                    str(tree)], check=True)
    assert cloud_init_network(theirs, tmp_path / "theirs")["network_config"] == {
        "version": 1, "config": []}


def test_given_network_data_goes_on_the_drive_as_cloud_init_reads_it(tmp_path):
    """When network data is given (as CloudStack's builder writes it for a NIC with
    Dhcp), cloud-init reads and converts it."""
    mac = "02:00:4c:5e:00:01"
    network = {"links": [{"ethernet_mac_address": mac, "id": "eth0", "mtu": 1500,
                          "type": "phy"}],
               "networks": [{"id": "eth0", "ip_address": "10.1.1.10", "link": "eth0",
                             "netmask": "255.255.255.0", "network_id": "n-1",
                             "type": "ipv4", "routes": [{"gateway": "10.1.1.1",
                                                         "netmask": "0.0.0.0",
                                                         "network": "0.0.0.0"}]}]}
    files = layout(data(network_data=network))
    assert json.loads(files["openstack/latest/network_data.json"]) == network
    iso = tmp_path / "net.iso"
    iso.write_bytes(build_iso(data(network_data=network)))
    config = cloud_init_network(iso, tmp_path / "mnt", {mac: "ens3"})["network_config"]
    assert config["version"] == 1
    physical = [c for c in config["config"] if c["type"] == "physical"]
    assert physical and physical[0]["mac_address"] == mac and physical[0]["name"] == "ens3"
    assert physical[0]["subnets"][0]["address"] == "10.1.1.10"


def test_pycdlib_is_pinned_to_the_minor_version_the_date_patch_was_written_for():
    """The reproducible-date patch swaps the `time` module inside four pycdlib modules;
    only the minor version it was written against may be installed."""
    import importlib
    import importlib.metadata
    import time
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    (pin,) = [Requirement(d) for d in project["project"]["dependencies"]
              if Requirement(d).name == "pycdlib"]
    installed = Version(importlib.metadata.version("pycdlib"))
    assert installed in pin.specifier
    assert Version(f"{installed.major}.{installed.minor}.0") in pin.specifier
    assert Version(f"{installed.major}.{installed.minor + 1}.0") not in pin.specifier
    for name in ("dates", "headervd", "pycdlib", "utils"):  # what _fixed_time patches
        assert importlib.import_module(f"pycdlib.{name}").time is time
