"""What a CloudStack instance sees: user data and metadata from its virtual router
or its config drive (`cloudrig metadata`, run inside the instance).

Why: the runbook's `grep dhcp-server-identifier /var/lib/dhclient/…` finds the
router only on dhclient distributions; NetworkManager and systemd-networkd keep
their leases elsewhere and in another format. And a config drive can be read
with pycdlib without mounting it (no root, nothing left mounted).
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import httpx
from pydantic import BaseModel

from tui.errors import OperatorError
from tui.http import RemoteError, make_client, request

from .configdrive import read_iso

METADATA_TYPES = ("service-offering", "availability-zone", "local-ipv4", "local-hostname",
                  "public-ipv4", "public-hostname", "instance-id")
"""The metadata types the runbook lists, in its order."""
EXTRA_TYPES = ("vm-id", "public-keys")
"""Also served by the router and written to the drive; shown when present."""

LEASE_GLOBS = (
    "/var/lib/dhclient/*.lease*",          # RHEL/CentOS dhclient
    "/var/lib/dhcp/*.lease*",              # Debian/Ubuntu dhclient
    "/var/lib/NetworkManager/*.lease*",    # NetworkManager (dhclient or internal)
    "/run/systemd/netif/leases/*",         # systemd-networkd
)
DRIVE_LABELS = ("config-2", "CONFIG-2")

_DHCLIENT = re.compile(r"option\s+dhcp-server-identifier\s+([0-9A-Fa-f.:]+)\s*;")
_KEYVALUE = re.compile(r"^SERVER_ADDRESS=([0-9A-Fa-f.:]+)\s*$", re.MULTILINE)


class Metadata(BaseModel):
    """What the instance sees, wherever it came from."""

    source: str
    user_data: str | None
    meta_data: dict[str, str]


# ---------------------------------------------------------------- virtual router


def lease_files(root: Path | None = None) -> list[Path]:
    base = str(root) if root else ""
    found = [Path(p) for pattern in LEASE_GLOBS for p in glob.glob(base + pattern)]
    return sorted((p for p in found if p.is_file()), key=lambda p: p.stat().st_mtime)


def server_in(text: str) -> str | None:
    """The DHCP server of a lease file (the last lease wins), in either format."""
    found = _DHCLIENT.findall(text) or _KEYVALUE.findall(text)
    return found[-1] if found else None


def find_router(root: Path | None = None) -> str:
    """The virtual router's address: the DHCP server of the newest lease."""
    files = lease_files(root)
    for path in reversed(files):
        try:
            server = server_in(path.read_text(errors="replace"))
        except OSError:
            continue
        if server:
            return server
    looked = ", ".join(LEASE_GLOBS)
    raise OperatorError(f"no DHCP lease names a server (looked in {looked}); give the "
                        "virtual router's address with --router, e.g. --router 10.1.1.1")


def from_router(router: str, port: int = 80, timeout: float = 5.0,
                transport: httpx.BaseTransport | None = None) -> Metadata:
    """User data and every metadata type from the router (old URLs as a fallback)."""
    host = f"[{router}]" if ":" in router and not router.startswith("[") else router
    base = f"http://{host}:{port}" if port != 80 else f"http://{host}"
    with make_client(base, timeout=timeout, retries=1, transport=transport) as http:
        user_data = _get(http, "/latest/user-data")
        meta: dict[str, str] = {}
        for kind in METADATA_TYPES + EXTRA_TYPES:
            value = _get(http, f"/latest/meta-data/{kind}")
            if value is None:
                value = _get(http, f"/latest/{kind}")  # the old URL, still supported
            if value is not None:
                meta[kind] = value
    if user_data is None and not meta:
        raise OperatorError(f"the virtual router at {base} serves no user data or metadata; "
                            "is it the right address, and does the network offer UserData "
                            "through VirtualRouter?")
    return Metadata(source=f"virtual router {base}", user_data=user_data, meta_data=meta)


def _get(http: httpx.Client, path: str) -> str | None:
    try:
        response = request(http, "GET", path, ok=(200, 404))
    except RemoteError:
        raise
    if response.status_code == 404:
        return None
    return response.content.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- config drive


def find_drive(dev: Path = Path("/dev/disk/by-label")) -> Path | None:
    """The config drive's device, by its label (as cloud-init looks for it)."""
    for label in DRIVE_LABELS:
        candidate = dev / label
        if candidate.exists():
            return candidate.resolve()
    return None


def from_drive(path: str | Path) -> Metadata:
    """User data and metadata from a config drive ISO or device, without mounting."""
    try:
        drive = read_iso(path)
    except OSError as exc:
        raise OperatorError(f"cannot read config drive {path}: {exc.strerror}; run as root "
                            "to read a device, or give an ISO file") from None
    except ValueError as exc:
        raise OperatorError(f"{path} is not a config drive: {exc}") from None
    if drive.label.lower() != "config-2":
        raise OperatorError(f"{path} is labelled {drive.label!r}, not config-2; cloud-init "
                            "would not read it as a config drive")
    files = drive.files
    raw = files.get("cloudstack/userdata/user_data.txt", files.get("openstack/latest/user_data"))
    meta = {}
    for kind in METADATA_TYPES + EXTRA_TYPES:
        content = files.get(f"cloudstack/metadata/{kind}.txt")
        if content is not None:
            meta[kind] = content.decode("utf-8", errors="replace")
    return Metadata(source=f"config drive {path}",
                    user_data=raw.decode("utf-8", errors="replace") if raw is not None else None,
                    meta_data=meta)


def table(data: Metadata) -> str:
    """The values as an operator reads them: one line per type, user data last."""
    width = max(len(k) for k in (*METADATA_TYPES, *EXTRA_TYPES, "user-data"))
    lines = [f"source: {data.source}"]
    for kind in (*METADATA_TYPES, *EXTRA_TYPES):
        if kind in data.meta_data:
            value = data.meta_data[kind].replace("\n", "\n" + " " * (width + 2))
            lines.append(f"{kind:<{width}}  {value}")
        elif kind in METADATA_TYPES:
            lines.append(f"{kind:<{width}}  (absent)")
    lines.append(f"{'user-data':<{width}}  " + ("(none)" if data.user_data is None else ""))
    if data.user_data is not None:
        lines.extend("  " + line for line in data.user_data.splitlines())
    return "\n".join(lines)
