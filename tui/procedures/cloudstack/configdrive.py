"""Config drive ISOs laid out as CloudStack's ConfigDriveBuilder does, and read back.

Why a module of its own: operators test user data and templates before they
deploy, so the ISO must be the one CloudStack would attach — same tree, same
label, same JSON — yet built without genisoimage or root (pycdlib), and
byte-for-byte reproducible so a changed ISO always means changed input.

Layout (ConfigDriveBuilder.buildConfigDrive, apache/cloudstack):
- `cloudstack/userdata/user_data.txt`: the user data *decoded* (not base64);
- `cloudstack/metadata/<name>.txt` for each metadata item, content as given;
- `cloudstack/password/vm_password.txt`: the password, for CloudStack's guest script;
- `openstack/latest/meta_data.json`: availability_zone, hostname, uuid, keys,
  public_keys (cloud-init refuses a drive without `uuid`);
- `openstack/latest/user_data`: a hard link to user_data.txt (one extent here too);
- `openstack/latest/vendor_data.json`: `{}`, always, as CloudStack writes it
  (ConfigDriveBuilder.writeVendorEmptyJsonFile, checked in apache/cloudstack at
  2814f122): the password reaches the guest only through vm_password.txt and
  CloudStack's own guest script. The `cloud-init` variant is CloudRig's, for testing
  a template whose password cloud-init should set: a `{"cloud-init":
  "#cloud-config\n…"}` snippet with `password`, `ssh_pwauth` and
  `chpasswd.expire: false`, which cloud-init's ConfigDrive source hands to
  set_passwords;
- `openstack/latest/network_data.json`: only when network data is given. CloudStack
  writes the NIC's links (its MAC), networks and DNS there (writeNetworkData); the
  answers describe no NIC, and an empty `{}` would not be harmless: cloud-init's
  `openstack.convert_net_json({})` makes it `{"version": 1, "config": []}`, which
  DataSourceConfigDrive.network_config hands on as *the* network configuration, so a
  VM booted from the ISO would configure no interface at all. Without the file
  cloud-init falls back to DHCP on the first NIC (canonical/cloud-init
  cloudinit/sources/DataSourceConfigDrive.py, helpers/openstack.py; checked with
  Debian's 22.4.2 in the tests);
- volume label `config-2`, Rock Ridge and Joliet (genisoimage `-J -r`).
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

LABEL = "config-2"
MAX_ISO = 64 * 1024 * 1024
"""ConfigDriveBuilder refuses a config drive larger than 64 MB."""
EPOCH = 946684800
"""Every date in the ISO (2000-01-01T00:00:00Z): same input, same bytes."""

METADATA_ORDER = ("service-offering", "availability-zone", "local-ipv4", "local-hostname",
                  "public-ipv4", "public-hostname", "instance-id", "vm-id", "public-keys",
                  "cloud-identifier")
"""The order NetworkModel.generateVmData lists metadata (meta_data.json keeps it)."""
OPENSTACK_NAMES = {"availability-zone": "availability_zone", "local-hostname": "hostname",
                   "vm-id": "uuid", "public-hostname": "name"}
"""NetworkModel.openStackFileMapping: metadata files that also go to meta_data.json."""

VendorVariant = Literal["cloud-init", "empty"]


class ConfigDriveData(BaseModel):
    """What goes on a config drive (the `vmData` CloudStack hands the builder)."""

    user_data: bytes | None = Field(default=None, description="decoded user data")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="metadata file name (without .txt) → content")
    password: str | None = Field(default=None, repr=False)
    vendor_data: VendorVariant = "empty"
    network_data: dict[str, Any] | None = Field(
        default=None, description="network_data.json (links, networks, services); None: "
        "no file, so cloud-init falls back to DHCP")
    label: str = LABEL


def metadata_json(metadata: dict[str, str]) -> dict[str, Any]:
    """meta_data.json as ConfigDriveBuilder.buildOpenStackMetaData builds it."""
    meta: dict[str, Any] = {}
    for name in _ordered(metadata):
        content = metadata[name]
        if not content:
            continue
        if name == "public-keys":
            fields = content.replace("\\n", "").split(" ")
            key_name = fields[2] if len(fields) > 3 and fields[2] else "key"
            meta["keys"] = [{"type": "ssh", "data": content.replace("\\n", ""),
                             "name": key_name}]
            meta["public_keys"] = {key_name: content}
        elif name in OPENSTACK_NAMES:
            meta[OPENSTACK_NAMES[name]] = content
    return meta


def vendor_data(password: str | None, variant: VendorVariant) -> str:
    """vendor_data.json: `{}` as CloudStack writes it, or CloudRig's cloud-config variant."""
    if password is None or variant == "empty":
        return "{}"
    snippet = {"password": password, "ssh_pwauth": True, "chpasswd": {"expire": False}}
    return _gson({"cloud-init": "#cloud-config\n" + _gson(snippet)})


def layout(data: ConfigDriveData) -> dict[str, bytes]:
    """Every file of the drive, by path from its root, in CloudStack's order."""
    files: dict[str, bytes] = {
        "openstack/latest/vendor_data.json": vendor_data(data.password,
                                                         data.vendor_data).encode(),
    }
    if data.network_data:
        files["openstack/latest/network_data.json"] = _gson(data.network_data).encode()
    if data.user_data:
        files["cloudstack/userdata/user_data.txt"] = data.user_data
    for name in _ordered(data.metadata):
        if data.metadata[name]:
            files[f"cloudstack/metadata/{name}.txt"] = data.metadata[name].encode()
    if data.password:
        files["cloudstack/password/vm_password.txt"] = data.password.encode()
    files["openstack/latest/meta_data.json"] = _gson(metadata_json(data.metadata)).encode()
    if data.user_data:
        files["openstack/latest/user_data"] = data.user_data
    return files


def _ordered(metadata: dict[str, str]) -> list[str]:
    known = [n for n in METADATA_ORDER if n in metadata]
    return known + sorted(n for n in metadata if n not in METADATA_ORDER)


def _gson(value: Any) -> str:
    """JSON as Gson's JsonElement.toString writes it: compact, UTF-8, insertion order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------- ISO


_clock_lock = threading.Lock()


class _FixedClock:
    """Stands in for the `time` module inside pycdlib while an ISO is built."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch

    def time(self) -> float:
        return self.epoch

    def localtime(self, seconds: float | None = None) -> _time.struct_time:
        return _time.gmtime(self.epoch if seconds is None else seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


@contextmanager
def _fixed_time(epoch: float) -> Iterator[None]:
    """pycdlib stamps every record with time.time() in local time; pin it to UTC epoch."""
    import pycdlib.dates  # deferred: start-up (pycdlib)
    import pycdlib.headervd  # deferred: start-up (pycdlib)
    import pycdlib.pycdlib  # deferred: start-up (pycdlib)
    import pycdlib.utils  # deferred: start-up (pycdlib)

    modules = (pycdlib.dates, pycdlib.headervd, pycdlib.pycdlib, pycdlib.utils)
    with _clock_lock:
        saved = [m.time for m in modules]
        clock = _FixedClock(epoch)
        for module in modules:
            # typeshed's types.ModuleType lets any attribute be read (__getattr__) but
            # declares none to be set: the ignores are for its stub.
            module.time = clock  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for module, original in zip(modules, saved, strict=True):
                module.time = original  # type: ignore[attr-defined]


def _iso_name(name: str, directory: bool) -> str:
    """An ISO 9660 level-3 name (d-characters) for a Rock Ridge / Joliet name."""
    stem, _dot, ext = name.partition(".") if not directory else (name, "", "")
    clean = lambda s: re.sub(r"[^A-Z0-9_]", "_", s.upper())  # noqa: E731
    if directory:
        return clean(stem)[:31]
    ext = clean(ext.replace('.', '_'))[:8]
    return f"{clean(stem)[:29 - len(ext)]}.{ext};1"


def build_iso(data: ConfigDriveData, epoch: float = EPOCH) -> bytes:
    """The config drive ISO for `data`: same input, same bytes."""
    import pycdlib  # deferred: start-up (pycdlib)

    files = layout(data)
    out = io.BytesIO()
    with _fixed_time(epoch):
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, vol_ident=data.label, rock_ridge="1.09", joliet=3,
                sys_ident="LINUX")
        made: dict[str, str] = {"": "/"}
        for path in sorted({str(Path(p).parent) for p in files} | set()):
            _mkdirs(iso, path, made)
        linked = "openstack/latest/user_data"
        for path, content in files.items():
            if path == linked:
                continue
            parent, name = path.rpartition("/")[::2]
            iso.add_fp(io.BytesIO(content), len(content), iso_path=_iso_path(made, parent, name),
                       rr_name=name, joliet_path="/" + path)
        if linked in files:
            source = _iso_path(made, "cloudstack/userdata", "user_data.txt")
            target = _iso_path(made, "openstack/latest", "user_data")
            iso.add_hard_link(iso_old_path=source, iso_new_path=target, rr_name="user_data")
            iso.add_hard_link(iso_old_path=source, joliet_new_path="/" + linked)
        iso.write_fp(out)
        iso.close()
    image = out.getvalue()
    if len(image) > MAX_ISO:
        raise ValueError(f"the config drive would be {len(image)} bytes; CloudStack refuses "
                         "more than 64 MB: shrink the user data")
    return image


def _mkdirs(iso: Any, path: str, made: dict[str, str]) -> None:
    parts = [p for p in path.split("/") if p and p != "."]
    for depth in range(1, len(parts) + 1):
        rel = "/".join(parts[:depth])
        if rel in made:
            continue
        parent = made["/".join(parts[: depth - 1])]
        iso_path = parent.rstrip("/") + "/" + _iso_name(parts[depth - 1], True)
        iso.add_directory(iso_path, rr_name=parts[depth - 1], joliet_path="/" + rel)
        made[rel] = iso_path


def _iso_path(made: dict[str, str], parent: str, name: str) -> str:
    return made[parent].rstrip("/") + "/" + _iso_name(name, False)


class Drive(BaseModel):
    """A config drive as read back: its volume label and files by path."""

    label: str
    files: dict[str, bytes]


def read_iso(source: str | Path | bytes) -> Drive:
    """Every file of a config drive (ISO file, device or bytes) by Rock Ridge path,
    read with pycdlib: no mount, no root."""
    import pycdlib  # deferred: start-up (pycdlib)
    from pycdlib.pycdlibexception import PyCdlibException  # deferred: start-up (pycdlib)

    iso = pycdlib.PyCdlib()
    handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    try:
        try:
            iso.open_fp(handle)
        except PyCdlibException as exc:
            raise ValueError(f"not an ISO 9660 image ({exc})") from None
        facade = iso.get_rock_ridge_facade() if iso.has_rock_ridge() else None
        files: dict[str, bytes] = {}
        if facade is not None:
            for root, _dirs, names in iso.walk(rr_path="/"):
                for name in names:
                    path = f"{root.rstrip('/')}/{name}"
                    buf = io.BytesIO()
                    iso.get_file_from_iso_fp(buf, rr_path=path)
                    files[path.lstrip("/")] = buf.getvalue()
        label = iso.pvd.volume_identifier.decode().strip()
        iso.close()
        return Drive(label=label, files=files)
    finally:
        handle.close()


def decode_user_data(value: str) -> bytes:
    """CloudStack's user data (base64) as the drive holds it."""
    return base64.b64decode(value)
