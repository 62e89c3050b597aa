"""PostgreSQL role and database provisioning with psycopg.

Identifiers and literals are composed with `psycopg.sql`, so names such as
`carbonio-files-adm` and passwords with quotes or `$` are exact. Passwords are
sent as SCRAM-SHA-256 verifiers, so the clear password never reaches the server's
statement log: on a live connection libpq computes it (`PQencryptPasswordConn`,
what psql's \\password does, SASLprep included — so it matches what libpq sends
when the role logs in); `scram_verifier` here is only for the SQL file CloudRig
writes for the operator when it does not connect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
from dataclasses import dataclass
from typing import Any

from tui.errors import OperatorError

SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, salt: bytes | None = None,
                   iterations: int = SCRAM_ITERATIONS) -> str:
    """The `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey` string PostgreSQL stores (RFC 5802/7677),
    for the offline SQL file only (no server to ask libpq through).

    PostgreSQL applies SASLprep to the password; for the printable passwords operators
    use that is the identity. A live connection uses `libpq_verifier` instead."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    def reachable(self, timeout: float = 3.0) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True
        except OSError:
            return False

    def url(self, user: str, dbname: str) -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"


def _connect(server: Server, user: str, password: str, dbname: str) -> Any:
    import psycopg  # deferred: start-up (psycopg)

    return psycopg.connect(host=server.host, port=server.port, user=user, password=password,
                           dbname=dbname, connect_timeout=10, autocommit=True,
                           sslmode="prefer", application_name="cloudrig")


def can_login(server: Server, user: str, password: str, dbname: str) -> bool:
    """Whether `user` logs in to `dbname` with `password` (the role's real test)."""
    import psycopg  # deferred: start-up (psycopg)

    try:
        with _connect(server, user, password, dbname):
            return True
    except psycopg.OperationalError:
        return False


def libpq_verifier(conn: Any, user: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier libpq computes on CONN (`PQencryptPasswordConn`)."""
    raw = conn.pgconn.encrypt_password(password.encode(), user.encode(), b"scram-sha-256")
    return bytes(raw).decode()


def role_statement(conn: Any, user: str, password: str, exists: bool) -> Any:
    from psycopg import sql  # deferred: start-up (psycopg)

    verb = "ALTER" if exists else "CREATE"
    return sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(
        sql.Identifier(user), sql.Literal(libpq_verifier(conn, user, password)))


def database_statement(dbname: str, owner: str, exists: bool) -> Any:
    from psycopg import sql  # deferred: start-up (psycopg)

    template = "ALTER DATABASE {} OWNER TO {}" if exists else "CREATE DATABASE {} OWNER {}"
    return sql.SQL(template).format(sql.Identifier(dbname), sql.Identifier(owner))


def ensure_role_and_database(server: Server, admin: str, admin_password: str, user: str,
                             password: str, dbname: str) -> list[str]:
    """Create or update the login role and its database; returns what was done."""
    import psycopg  # deferred: start-up (psycopg)

    done: list[str] = []
    try:
        with _connect(server, admin, admin_password, "postgres") as conn:
            role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                (dbname,)).fetchone()
            if role is None or not can_login(server, user, password, "postgres"):
                conn.execute(role_statement(conn, user, password, exists=role is not None))
                done.append(f"{'created' if role is None else 'updated the password of'} "
                            f"role {user}")
            if owner is None:
                conn.execute(database_statement(dbname, user, exists=False))
                done.append(f"created database {dbname} owned by {user}")
            elif owner[0] != user:
                conn.execute(database_statement(dbname, user, exists=True))
                done.append(f"made {user} the owner of database {dbname}")
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OperatorError(
            f"cannot connect to PostgreSQL at {server.host}:{server.port} as {admin} "
            f"({first}); check the admin password and pg_hba.conf on the database node"
        ) from None
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OperatorError(
            f"PostgreSQL at {server.host}:{server.port} refused the change: {first}") from None
    return done


def psql_script(user: str, password: str, dbname: str) -> str:
    """An idempotent script for `psql -f` on the database node (holds a password verifier)."""
    from psycopg import sql  # deferred: start-up (psycopg)

    role = sql.Literal(user).as_string(None)
    db = sql.Literal(dbname).as_string(None)
    verifier = sql.Literal(scram_verifier(password)).as_string(None)
    ident_user = sql.Identifier(user).as_string(None)
    return (
        "-- Written by CloudRig for the carbonio procedure. Run on the database node:\n"
        "--   sudo -u postgres psql -v ON_ERROR_STOP=1 -f THIS_FILE\n"
        f"SELECT format('CREATE ROLE %I WITH LOGIN', {role})\n"
        f"  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {role})\\gexec\n"
        f"ALTER ROLE {ident_user} WITH LOGIN PASSWORD {verifier};\n"
        f"SELECT format('CREATE DATABASE %I OWNER %I', {db}, {role})\n"
        f"  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {db})\\gexec\n"
        f"SELECT format('ALTER DATABASE %I OWNER TO %I', {db}, {role})\\gexec\n"
    )
