"""The cloudstack answers: the keys of its answers files (a public contract).

`mode` comes first so the fields after it can be required only for their mode
(field validators see the fields validated before them).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import SecretStr, ValidationInfo, field_validator

from tui.answers import AbsPath, Answers, ask, check_host
from tui.clients.cloudstack import POST_LIMIT

from . import guest

CLOUD_CONFIG = "#cloud-config"


def user_data_problem(text: str) -> str | None:
    """Why this user data cannot be sent, or None: `#cloud-config` must be YAML
    (with the line of the error) and the base64 must fit CloudStack's POST cap."""
    if not text:
        # UserDataManagerImpl.validateUserData: fewer than one decoded byte is refused.
        return ('is empty: CloudStack refuses it ("User data is too short"); give the '
                "user data to set")
    if text.lstrip().startswith(CLOUD_CONFIG):
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            return f"is #cloud-config but not valid YAML{where}: {problem}"
    size = len(base64.b64encode(text.encode()))
    if size >= POST_LIMIT:
        return (f"is {size} bytes after base64; CloudStack refuses {POST_LIMIT} or more "
                "even by POST")
    return None


def _required_for(mode: str, what: str) -> ValueError:
    return ValueError(f"is required when mode is {mode} ({what})")


class CloudStackAnswers(Answers):
    """What the cloudstack runbook asks of the operator (keys are the answers contract)."""

    mode: Literal["update", "iso"] = ask(
        "update", title="Mode",
        help="update: set the instance's user data through the CloudStack API and check "
             "what it now holds. iso: only build a config drive ISO the way CloudStack "
             "does, to test user data and templates before deploying.", example="update")
    api_url: str | None = ask(
        None, title="CloudStack API URL",
        help="The management server's API endpoint, ending in /client/api. "
             "Required when mode is update.",
        example="https://cloud.example.com/client/api", validate_default=True)
    api_key: str | None = ask(
        None, title="API key",
        help="The API key of the account (Accounts → Users → Generate keys). "
             "Required when mode is update.",
        example="plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdMkAYMmAiLqzzq1ElZLYq_u38zCm0bew",
        validate_default=True)
    secret_key: SecretStr | None = ask(
        title="Secret key", secret=True,
        help="The secret key that signs every request. Never written to answers files.",
        example="the secret key")
    ca_file: AbsPath | None = ask(
        None, title="CA bundle",
        help="PEM file to verify the API's TLS certificate when it is not publicly signed.",
        example="/etc/ssl/certs/cloud-ca.pem")
    vm: str | None = ask(
        None, title="Instance",
        help="The instance to give user data: its name or its id (UUID). "
             "Required when mode is update.",
        example="web-1", validate_default=True)
    zone: str | None = ask(
        None, title="Zone",
        help="Optional: the zone name or id, when the instance name exists in several zones.",
        example="zone-1")
    user_data: str | None = ask(
        None, title="User data (inline)",
        help="The user data itself (e.g. a #cloud-config document); or use user_data_file.",
        example="#cloud-config\nhostname: web-1\n", validate_default=True, multiline=True)
    user_data_file: AbsPath | None = ask(
        None, title="User data file",
        help="A file holding the user data (read when the answers are loaded).",
        example="/srv/cloud/web-1.yaml", validate_default=True)
    restart: bool = ask(
        False, title="Stop and start the instance",
        help="Stop a running instance before setting its user data and start it after "
             "(both are CloudStack jobs); a stopped instance is left stopped. A config "
             "drive is rebuilt, and guests read user data, only at boot. " + guest.HELP,
        example=True)
    job_timeout: int = ask(
        600, title="Job timeout (seconds)",
        help="How long to follow a stop/start job before leaving it running on the server.",
        example=600, ge=5, le=7200)
    iso_path: AbsPath | None = ask(
        None, title="ISO path",
        help="Where the config drive ISO is written. Required when mode is iso.",
        example="/var/tmp/web-1-configdrive.iso", validate_default=True)
    instance_id: str | None = ask(
        None, title="Instance name (instance-id)",
        help="CloudStack's internal instance name, metadata instance-id.",
        example="i-2-5-VM")
    vm_id: str | None = ask(
        None, title="Instance id (vm-id)",
        help="The instance's UUID: meta_data.json's uuid, which cloud-init requires. "
             "Required when mode is iso.",
        example="6b2e8f1c-1d2f-4c7a-9a55-0a1b2c3d4e5f", validate_default=True)
    local_hostname: str | None = ask(
        None, title="Host name (local-hostname)", help="The instance's host name.",
        example="web-1")
    availability_zone: str | None = ask(
        None, title="Zone name (availability-zone)", help="The zone's name.",
        example="zone-1")
    service_offering: str | None = ask(
        None, title="Service offering", help="A description of the service offering.",
        example="Small Instance")
    public_keys: list[str] = ask(
        [], title="SSH public keys",
        help="Keys for public-keys (one per line), as CloudStack joins several.",
        example=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7 operator@laptop"])
    vm_password: SecretStr | None = ask(
        title="Instance password", secret=True,
        help="Optional: the password CloudStack would place on the config drive "
             "(vm_password.txt and vendor_data.json). Only ever written into the ISO "
             "(mode 0600); without CLOUDRIG_SECRET_VM_PASSWORD or a stored value the "
             "drive has no password.",
        example="a generated password")
    vendor_data: Literal["cloud-init", "empty"] = ask(
        "empty", title="vendor_data.json",
        help="empty: `{}`, exactly as CloudStack writes it (the password is only in "
             "vm_password.txt); cloud-init: also the password as cloud-config for "
             "cloud-init's set_passwords, to test a template that relies on it.",
        example="empty")

    # ------------------------------------------------------------ per-mode rules

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("mode") == "update":
                raise _required_for("update", "the API endpoint to call")
            return None
        match = re.fullmatch(r"(https?)://([^/\s:]+|\[[0-9a-fA-F:]+\])(:\d{1,5})?(/\S*)?",
                             value)
        if not match:
            raise ValueError(f"{value!r} is not an http(s) URL of a CloudStack API")
        check_host(match.group(2).strip("[]"))
        return value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("mode") == "update":
            raise _required_for("update", "the account's API key")
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("must be the API key as CloudStack shows it, without spaces")
        return value

    @field_validator("vm")
    @classmethod
    def _vm(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("mode") == "update":
            raise _required_for("update", "the instance whose user data is set")
        return value

    @field_validator("user_data")
    @classmethod
    def _user_data(cls, value: str | None) -> str | None:
        if value is not None and (problem := user_data_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("user_data_file")
    @classmethod
    def _user_data_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        inline = info.data.get("user_data")
        if value is None:
            if inline is None and info.data.get("mode") == "update" and "user_data" in info.data:
                raise ValueError("give user_data_file or user_data: the user data to set")
            return None
        if inline is not None:
            raise ValueError("give user_data_file or user_data, not both")
        try:
            text = Path(value).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"{value} does not exist") from None
        except UnicodeDecodeError:
            raise ValueError(f"{value} is not UTF-8 text") from None
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        if problem := user_data_problem(text):
            raise ValueError(f"{value} {problem}")
        return value

    @field_validator("iso_path")
    @classmethod
    def _iso_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("mode") == "iso":
            raise _required_for("iso", "where to write the config drive")
        return value

    @field_validator("vm_id")
    @classmethod
    def _vm_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("mode") == "iso":
            raise _required_for("iso", "cloud-init refuses a drive without its uuid")
        return value

    @field_validator("public_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if len(key.split()) < 2 or "\n" in key.strip():
                raise ValueError(f"{key[:40]!r} is not one OpenSSH public key line")
        return [k.strip() for k in value]

    # ------------------------------------------------------------ derived

    def user_data_text(self) -> str | None:
        """The user data to send or put on the drive (read from the file if given)."""
        if self.user_data is not None:
            return self.user_data
        if self.user_data_file is not None:
            return Path(self.user_data_file).read_text(encoding="utf-8")
        return None

    def user_data_b64(self) -> str | None:
        text = self.user_data_text()
        return None if text is None else base64.b64encode(text.encode()).decode()
