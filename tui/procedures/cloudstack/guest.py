"""What cloud-init in the guest does with user data that changed after its first boot.

cloud-init reads the user data again at every boot, but most of its modules run once
per *instance*: their `meta["frequency"]` is `once-per-instance` (canonical/cloud-init
`cloudinit/config/cc_*.py`; checked against Debian's cloud-init 22.4.2 by the tests),
and the instance id on CloudStack is the VM's uuid, which a restart or an
updateVirtualMachine does not change. So new `runcmd`, `write_files`, users or
passwords in the user data of an instance that has booted before do nothing, restart
or not. What does work: `cloud-init clean --reboot` in the guest (the next boot is a
first boot again, with new SSH host keys), or parts that run at every boot — `bootcmd`
(cc_bootcmd, `always`) or a MIME part of type `text/x-shellscript-per-boot`
(cloudinit/handlers/shell_script_by_frequency.py).
"""

from __future__ import annotations

import yaml

ONCE_PER_INSTANCE: dict[str, str] = {
    "runcmd": "cc_runcmd",
    "write_files": "cc_write_files",
    "users": "cc_users_groups",
    "groups": "cc_users_groups",
    "password": "cc_set_passwords",
    "chpasswd": "cc_set_passwords",
    "ssh_pwauth": "cc_set_passwords",
    "packages": "cc_package_update_upgrade_install",
    "package_update": "cc_package_update_upgrade_install",
    "package_upgrade": "cc_package_update_upgrade_install",
    "ssh_authorized_keys": "cc_ssh",
}
"""#cloud-config keys → the cloud-init module that acts on them, run once per instance."""
SCRIPT_MODULE = "cc_scripts_user"
"""A `#!` user-data script is run by scripts_user, once per instance."""
EVERY_BOOT: dict[str, str] = {"bootcmd": "cc_bootcmd"}
"""#cloud-config keys whose module runs at every boot."""
PER_BOOT_PART = "text/x-shellscript-per-boot"
"""A MIME part cloud-init writes to scripts/per-boot and runs at every boot."""

WAYS = (f"run `sudo cloud-init clean --reboot` in the guest (a first boot again, with new "
        f"SSH host keys), or move the work to parts that run at every boot: bootcmd, or a "
        f"MIME part of type {PER_BOOT_PART}")
HELP = ("cloud-init reads user data at each boot but runs runcmd, write_files, users, "
        "passwords, packages and #! scripts once per instance: a restart with the same "
        f"instance id does not run them again; to rerun them, {WAYS}.")


def once_only(text: str | None) -> list[str]:
    """The parts of this user data cloud-init runs only at an instance's first boot."""
    if not text:
        return []
    stripped = text.lstrip()
    if stripped.startswith("#!"):
        return ["its #! script"]
    if not stripped.startswith("#cloud-config"):
        return []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict):
        return []
    return [key for key in data if key in ONCE_PER_INSTANCE]


def note(text: str | None) -> str | None:
    """One sentence for the plan and after apply, or None when nothing is once-only
    (or the format is one CloudRig does not look into)."""
    parts = once_only(text)
    if not parts:
        return None
    return (f"cloud-init in the guest runs {', '.join(parts)} once per instance: an "
            "instance that has booted before does not run them again, restart or not "
            f"(its instance id stays); to rerun them, {WAYS}")
