"""A real PostgreSQL server (Debian's packages) in a temp directory, for database steps.

Started once per test session on a free 127.0.0.1 port with SCRAM authentication.
PostgreSQL refuses to run as root, so under root the cluster belongs to the
`postgres` system user (created by Debian's package) and is run through `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest

ADMIN = "postgres"
ADMIN_PASSWORD = "adm'in $pw\"1"


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    admin: str
    admin_password: str


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


@pytest.fixture(scope="session")
def pg_server():
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        message = "PostgreSQL server binaries are missing (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    owner = None
    if os.geteuid() == 0:
        owner = "postgres"
        pwd.getpwnam(owner)  # Debian's postgresql package creates it
    base = tempfile.mkdtemp(prefix="cloudrig-pg-")
    os.chmod(base, 0o755)
    data, sockets = os.path.join(base, "data"), os.path.join(base, "run")
    os.makedirs(sockets)
    pwfile = os.path.join(base, "pw")
    with open(pwfile, "w") as handle:
        handle.write(ADMIN_PASSWORD + "\n")
    if owner:
        info = pwd.getpwnam(owner)
        for path in (base, sockets, pwfile):
            os.chown(path, info.pw_uid, info.pw_gid)
    subprocess.run(_as_owner([initdb, "-D", data, "-U", ADMIN, "--pwfile", pwfile,
                              "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions"], owner),
                   check=True, capture_output=True)
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_owner([pg_ctl, "-D", data, "-o", options, "-l",
                              os.path.join(base, "log"), "-w", "-t", "60", "start"], owner),
                   check=True, capture_output=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield PgServer("127.0.0.1", port, ADMIN, ADMIN_PASSWORD)
    finally:
        subprocess.run(_as_owner([pg_ctl, "-D", data, "-m", "immediate", "stop"], owner),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
