"""`cloudrig metadata`: the router found from lease files, the fake router, the ISO."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fakes.vrouter import FakeRouter
from in_process import run_in_process

from tui.errors import OperatorError
from tui.procedures.cloudstack import metadata
from tui.procedures.cloudstack.configdrive import ConfigDriveData, build_iso

LEASES = Path(__file__).resolve().parents[1] / "support" / "fixtures" / "leases"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7 op@host"
USER_DATA = "#cloud-config\nhostname: web-1\n"
META = {"service-offering": "Small Instance", "availability-zone": "zone-1",
        "local-ipv4": "10.1.1.23", "local-hostname": "web-1", "public-ipv4": "192.0.2.10",
        "public-hostname": "192.0.2.10", "instance-id": "i-2-5-VM",
        "vm-id": "6b2e8f1c-1d2f-4c7a-9a55-0a1b2c3d4e5f", "public-keys": KEY}


def place(root: Path, fixture: str, target: str, mtime: int) -> None:
    path = root / target.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(LEASES / fixture, path)
    os.utime(path, (mtime, mtime))


@pytest.mark.parametrize("fixture,target,server", [
    ("dhclient-eth0.leases", "/var/lib/dhclient/dhclient-eth0.leases", "10.1.1.1"),
    ("dhclient-eth0.leases", "/var/lib/dhcp/dhclient.eth0.leases", "10.1.1.1"),
    ("internal-8b1c4f2e-6d3a-4f0e-9b57-1a2b3c4d5e6f-ens3.lease",
     "/var/lib/NetworkManager/internal-8b1c4f2e-6d3a-4f0e-9b57-1a2b3c4d5e6f-ens3.lease",
     "10.1.2.1"),
    ("networkd-2", "/run/systemd/netif/leases/2", "10.1.3.1"),
])
def test_router_is_found_in_each_distributions_leases(tmp_path, fixture, target, server):
    place(tmp_path, fixture, target, 1_700_000_000)
    assert metadata.find_router(tmp_path) == server


def test_newest_lease_file_wins(tmp_path):
    place(tmp_path, "dhclient-eth0.leases", "/var/lib/dhcp/dhclient.eth0.leases", 1_600_000_000)
    place(tmp_path, "networkd-2", "/run/systemd/netif/leases/2", 1_700_000_000)
    assert metadata.find_router(tmp_path) == "10.1.3.1"


def test_no_lease_is_a_sentence_suggesting_router(tmp_path):
    with pytest.raises(OperatorError, match="--router"):
        metadata.find_router(tmp_path)


@pytest.fixture
def router():
    fake = FakeRouter(USER_DATA, META).start()
    yield fake
    fake.stop()


def test_router_values_and_old_url_fallback(router):
    seen = metadata.from_router("127.0.0.1", router.port)
    assert seen.user_data == USER_DATA and seen.meta_data == META
    router.new_urls = False
    before = len(router.log)
    old = metadata.from_router("127.0.0.1", router.port)
    assert old.meta_data == META
    paths = [r.path for r in router.log[before:]]
    assert "/latest/meta-data/instance-id" in paths and "/latest/instance-id" in paths


def test_unreachable_router_is_a_sentence():
    with pytest.raises(OperatorError, match="cannot connect"):
        metadata.from_router("127.0.0.1", 9, timeout=0.5)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1")
    return run_in_process(env, ["metadata", *args])


def test_cli_prints_the_same_values_from_the_router_and_from_the_iso(tmp_path, router):
    root = tmp_path / "guest"
    lease = root / "var/lib/dhclient/dhclient-eth0.leases"
    lease.parent.mkdir(parents=True)
    lease.write_text("lease {\n  option dhcp-server-identifier 127.0.0.1;\n}\n")
    iso = tmp_path / "drive.iso"
    iso.write_bytes(build_iso(ConfigDriveData(
        user_data=USER_DATA.encode(), metadata=META, password="not-shown-1234")))

    by_router = _cli("--root", str(root), "--port", str(router.port), "--json")
    by_iso = _cli("--iso", str(iso), "--json")
    assert by_router.returncode == 0, by_router.stderr
    assert by_iso.returncode == 0, by_iso.stderr
    a, b = json.loads(by_router.stdout), json.loads(by_iso.stdout)
    assert a["source"].startswith("virtual router http://127.0.0.1:")
    assert b["source"] == f"config drive {iso}"
    assert a["user_data"] == b["user_data"] == USER_DATA
    assert a["meta_data"] == b["meta_data"] == META

    table_router = _cli("--router", "127.0.0.1", "--port", str(router.port))
    table_iso = _cli("--iso", str(iso))
    assert table_router.stdout.split("\n", 1)[1] == table_iso.stdout.split("\n", 1)[1]
    assert "instance-id" in table_iso.stdout and "i-2-5-VM" in table_iso.stdout
    assert "not-shown-1234" not in table_iso.stdout + by_iso.stdout


def test_cli_on_something_that_is_not_a_drive_exits_1(tmp_path):
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"\0" * 70000)
    result = _cli("--iso", str(junk))
    assert result.returncode == 1
    assert "is not a config drive" in result.stderr and "Traceback" not in result.stderr
