"""Apache CloudStack user data, metadata and config drive.

Runbook: shared/seeds/cloudstack-userdata-configdrive.txt ("User Data and Meta Data").
Where CloudRig departs from it, and why:

- The runbook says "up to 32KB of User Data". The cloud decides: CloudRig reads
  `vm.userdata.max.length` (a limit on the *base64* length, default 32768) and
  falls back to 32768 only when the account may not read settings; base64 of
  4096 bytes or more is sent by POST, as UserDataManagerImpl refuses it in a GET.
- `#cloud-config` user data is parsed as YAML when the answers are loaded (the
  runbook has no validation): a broken document never reaches an instance.
- Before setting user data, CloudRig checks that one of the instance's networks
  has a UserData provider; the runbook assumes it. Any provider the network lists
  for UserData counts — VirtualRouter, VpcVirtualRouter (every VPC tier),
  ConfigDrive, … (apache/cloudstack `Network.Provider`).
- Stop/start around the update happen only when the operator sets `restart: true`,
  and only for a running instance (they are CloudStack jobs, followed to their end);
  a stopped instance stays stopped. Otherwise a running instance is told to see the
  new user data at its next restart or config-drive remount, which is what the
  runbook's "Config Drive ISO will be rebuilt … the user needs to remount" amounts to.
- The runbook's "changes take effect at restart" is only half true of cloud-init
  guests: cloud-init runs runcmd, write_files, users, passwords, packages and `#!`
  scripts once per instance, and the instance id (the VM's uuid) does not change.
  The help, the plan and the message after apply say so and name the ways that
  work (`cloud-init clean --reboot` in the guest, bootcmd or a per-boot part); see
  guest.py for the module frequencies, checked against cloud-init's own modules.
- Empty user data is refused when the answers are loaded: CloudStack answers "User
  data is too short" (UserDataManagerImpl.validateUserData).
- Config drive: the runbook lists `openstack/version/`; CloudStack writes
  `openstack/latest/`, which is what cloud-init reads, so CloudRig does too.
  The user data directory is `cloudstack/userdata/` (the runbook says
  `user_data/`, ConfigDriveBuilder writes `userdata/`). The password file is
  `cloudstack/password/vm_password.txt`; the runbook's `vm_password_md5checksum`
  is not written (ConfigDriveBuilder only copies it when the caller gives one).
  `meta_data.json` always carries `uuid` (from vm_id), without which cloud-init
  refuses the drive. `network_data.json` is left out: CloudStack describes the
  NIC there (its MAC and address), which the answers do not know, and the `{}` an
  earlier CloudRig wrote makes cloud-init configure no network at all (its
  convert_net_json turns `{}` into an empty network config) instead of falling
  back to DHCP.
- `vendor_data.json` is `{}` as ConfigDriveBuilder writes it (checked in
  apache/cloudstack's source); the password is only in vm_password.txt. An earlier
  CloudRig wrote a cloud-config password there by default, taken from a pull
  request's description; that is now the opt-in `vendor_data: cloud-init`, for
  templates that let cloud-init set the password.
- The ISO is built with pycdlib (no genisoimage, no root, no mount), its dates
  pinned so the same answers give the same bytes.
- `cloudrig metadata` reads the virtual router from DHCP leases of dhclient,
  NetworkManager and systemd-networkd, not only `/var/lib/dhclient`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tui import probes
from tui.model import Page, Procedure

from .answers import CloudStackAnswers
from .steps import CLOUDSTACK, STEPS
from .verbs import METADATA


def _updating(values: Mapping[str, Any]) -> bool:
    """The API and instance pages are for mode update (the default); an ISO needs neither,
    and the config drive page is for mode iso only."""
    return values.get("mode", "update") == "update"


PAGES = (
    Page("What to do", "Set an instance's user data, or only build a config drive ISO.",
         ("mode",)),
    Page("CloudStack API", "The endpoint and the key pair that signs every request.",
         ("api_url", "api_key", "secret_key", "ca_file"), when=_updating,
         probe=probes.cloudstack),
    Page("The instance", "Which instance gets the user data, and whether it may be restarted.",
         ("vm", "zone", "restart", "job_timeout"), when=_updating),
    Page("User data", "Inline, or from a file; #cloud-config is checked as YAML.",
         ("user_data", "user_data_file")),
    Page("Config drive", "The metadata CloudStack puts on the drive (ISO mode).",
         ("iso_path", "instance_id", "vm_id", "local_hostname", "availability_zone",
          "service_offering", "public_keys", "vm_password", "vendor_data"),
         when=lambda values: not _updating(values)),
)

PROCEDURE = Procedure(
    id="cloudstack",
    title="CloudStack user data and config drive",
    summary="Set an instance's user data through the signed API, or build a config drive ISO",
    runbook="cloudstack-userdata-configdrive.txt",
    answers_model=CloudStackAnswers,
    pages=PAGES,
    steps=STEPS,
    remotes=(CLOUDSTACK,),
    cli_verbs=(METADATA,),
)

__all__ = ["PROCEDURE", "CloudStackAnswers"]
