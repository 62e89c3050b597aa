"""The cloudblue test rig: the fake Connect API, stand-in executables on PATH for
cloudblue-password-manager (a getpass prompt on the controlling terminal, /dev/tty,
which it insists on; writing a SQLite store), the three connector programs, systemctl
and journalctl (the real ones would change this machine), and the CLI run as a
subprocess against them."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fakes.connect import FakeConnect
from private_cli import ProcedureRig, private_env

CLOUDBLUE_TOKEN = "ApiKey SU-123-456-789:0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VAP_TOKEN = "vap-admin-7c1f0e9d8b2a4c6e"
REVOKE = "Access to Application Management Platform has been revoked"
# The runbook's answers, as its example config.json sets them (tests of answers and the form).
RUNBOOK = {
    "vap_infra_domain": "virtuozzo.com", "vap_user_group": "beta",
    "hide_passwords_in_log": True, "test_marketplace_id": "MP-43209", "test_mode": True,
    "billing_stat_delay_hours": 1, "api_endpoint": "https://api.clarocloud.com.co/public/v1",
    "products": ["PRD-576-330-536"], "report_usage": ["PRD-576-330-536"],
    "templates": {"PRD-576-330-536": {"grant": "TL-757-345-804", "revoke": REVOKE}},
}
PPU = {"schema": "QT", "dynamic": False, "future": False}
"""Pay-as-you-go on, as connect-cli's capabilities sync sets it."""
PROGRAMS = ["cloudblue-fulfillments", "cloudblue-usage", "cloudblue-usage-files"]

PASSWORD_MANAGER = """#!@PYTHON@
import getpass, json, os, sqlite3, sys
flags = {"--set-cloudblue-token": "cloudblue", "--set-vap-token": "vap"}
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(" ".join(["cloudblue-password-manager", *sys.argv[1:]]) + "\\n")
with open(os.environ["FAKE_PM_SEEN"], "a") as seen:
    seen.write(json.dumps({"argv": sys.argv, "env": dict(os.environ)}) + "\\n")
if len(sys.argv) != 2 or sys.argv[1] not in flags:
    print("usage: cloudblue-password-manager [-h] [--set-cloudblue-token] [--set-vap-token]")
    sys.exit(2)
# Like many password prompts (sudo, ssh, passwd), it reads from the controlling
# terminal, /dev/tty, and will not take a token from anywhere else.
try:
    os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
except OSError as error:
    print(f"error: a terminal is required to enter tokens ({error.strerror})",
          file=sys.stderr)
    sys.exit(3)
name = flags[sys.argv[1]]
token = getpass.getpass(f"Enter {name} token: ")  # getpass reads /dev/tty first
if getpass.getpass("Repeat the token: ") != token:
    print("tokens differ")
    sys.exit(4)
db = sqlite3.connect(os.path.join(os.environ["FAKE_CONNECTOR_DIR"], "passwords_db.sqlite3"))
if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'passwords'").fetchone():
    db.execute("CREATE TABLE passwords (name TEXT PRIMARY KEY, value TEXT)")
# "Encrypted": stored reversed, so the test can prove what arrived without the
# clear token ever being on disk. The same value again is not written again.
row = db.execute("SELECT value FROM passwords WHERE name = ?", (name,)).fetchone()
if row and row[0] == token[::-1]:
    print(f"{name} token unchanged")
    sys.exit(0)
db.execute("INSERT OR REPLACE INTO passwords VALUES (?, ?)", (name, token[::-1]))
db.commit()
print(f"{name} token saved")
"""
PROGRAM = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
echo "$(basename "$0"): connected to Connect, 0 requests processed"
echo "$(basename "$0"): line two of the output"
exit "${SMOKE_EXIT:-0}"
"""
SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$FAKE_LOG"
unit="$2"
case "$1" in
  is-enabled) cat "$UNITS/$unit.enabled" 2>/dev/null || echo disabled ;;
  is-active) cat "$UNITS/$unit.active" 2>/dev/null || echo inactive ;;
  enable) unit="$3"; echo enabled > "$UNITS/$unit.enabled"; echo active > "$UNITS/$unit.active" ;;
  stop) echo inactive > "$UNITS/$unit.active" ;;
  disable) echo disabled > "$UNITS/$unit.enabled" ;;
esac
exit 0
"""
JOURNALCTL = """#!/bin/sh
echo "cloudblue-usage: Traceback: ConnectionError to api.connect.cloudblue.com"
echo "cloudblue-usage.service: Main process exited, code=exited, status=1/FAILURE"
"""


def _script(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@dataclass(kw_only=True)
class Rig(ProcedureRig):
    connect: FakeConnect

    @property
    def host_dir(self) -> Path:
        """The connector directory when running without --root."""
        return self.tmp / "host" / "etc" / "cloudblue-connector"

    def calls(self) -> list[str]:
        log = self.tmp / "calls.log"
        return [line.strip() for line in log.read_text().splitlines()] if log.exists() else []

    def env(self) -> dict[str, str]:
        return private_env(
            self.tmp, self.secrets, PATH=f"{self.tmp / 'bin'}:{os.environ['PATH']}",
            FAKE_LOG=str(self.tmp / "calls.log"), FAKE_PM_SEEN=str(self.tmp / "pm-seen.jsonl"),
            FAKE_CONNECTOR_DIR=str(self.host_dir), UNITS=str(self.tmp / "units"),
            **self.extra_env)

    def apply(self, *extra: str, root: bool = True) -> subprocess.CompletedProcess[str]:
        where = ("--root", str(self.root)) if root else ()
        return self.cli("apply", "cloudblue", "--answers", str(self.write_answers()), *where,
                        "--yes", *extra)

    def state_json(self) -> dict:
        return json.loads((self.state / "cloudblue.json").read_text())


def _install(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json.example").write_text(json.dumps({
        "vap_infra_domain": "virtuozzo.com", "vap_user_group": "beta",
        "misc": {"hidePasswordsInLog": True, "testMarketplaceId": "MP-43209",
                 "testMode": True, "billingStatDelayInHours": 1},
        "apiEndpoint": "https://api.clarocloud.com.co/public/v1",
        "products": ["PRD-576-330-536"], "report_usage": ["PRD-576-330-536"],
        "templates": {"PRD-576-330-536": {"grant": "TL-757-345-804", "revoke": REVOKE}}},
        indent=4))
    (directory / "config-logging.json.example").write_text(
        '{"version": 1, "handlers": {"file": {"filename": "/var/log/cloudblue.log"}}}\n')


@contextmanager
def started_rig(tmp_path: Path) -> Iterator[Rig]:
    """The fake Connect API, the stand-in executables, and the connector's examples
    installed both under --root and in the host directory."""
    fake = FakeConnect(CLOUDBLUE_TOKEN).start()
    fake.add_product("PRD-576-330-536", "TL-757-345-804", "TL-111-222-333",
                     ("TL-559-508-354", "tier1", None), ("TL-139-014-284", "asset", "inquire"),
                     ("TL-222-333-444", "asset", "pending"))
    fake.add_product("PRD-276-377-545", "TL-551-876-782", ppu=PPU)
    fake.add_marketplace("MP-43209")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, "cloudblue-password-manager",
            PASSWORD_MANAGER.replace("@PYTHON@", sys.executable))
    for program in PROGRAMS:
        _script(bin_dir, program, PROGRAM)
    _script(bin_dir, "systemctl", SYSTEMCTL)
    _script(bin_dir, "journalctl", JOURNALCTL)
    (tmp_path / "units").mkdir()
    rig = Rig(tmp=tmp_path, connect=fake)
    _install(rig.root / "etc" / "cloudblue-connector")
    _install(rig.host_dir)
    rig.answers = {
        "vap_infra_domain": "paas.example.com", "vap_user_group": "connect users",
        "test_mode": True, "test_marketplace_id": "MP-43209", "billing_stat_delay_hours": 2,
        "api_endpoint": fake.endpoint,
        "products": ["PRD-576-330-536", "PRD-276-377-545"],
        "report_usage": ["PRD-276-377-545"],
        "templates": {"PRD-576-330-536": {"grant": "TL-757-345-804", "revoke": REVOKE},
                      "PRD-276-377-545": {"grant": "TL-551-876-782",
                                          "revoke": "TL-551-876-782"}}}
    rig.secrets = {"cloudblue_token": CLOUDBLUE_TOKEN, "vap_token": VAP_TOKEN}
    try:
        yield rig
    finally:
        fake.stop()



def scan(rig: Rig, secrets: list[str]) -> None:
    """No secret (nor the key without its `ApiKey ` prefix) in any output, state file,
    log, staged or host file, or recorded command line."""
    texts = list(rig.outputs)
    for directory in (rig.state, rig.root, rig.host_dir):
        if directory.exists():
            texts += [p.read_bytes().decode(errors="replace") for p in directory.rglob("*")
                      if p.is_file()]
    texts.append("\n".join(rig.calls()))
    for text in texts:
        for secret in secrets:
            assert secret not in text
            assert secret.removeprefix("ApiKey ") not in text



def stored_tokens(directory: Path) -> dict[str, str]:
    """What the fake password manager stored (reversed, as it "encrypts")."""
    db = sqlite3.connect(directory / "passwords_db.sqlite3")
    try:
        return {name: value[::-1] for name, value in db.execute(
            "SELECT name, value FROM passwords")}
    finally:
        db.close()
