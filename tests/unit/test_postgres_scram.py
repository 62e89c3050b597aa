"""The live PostgreSQL path takes its SCRAM verifier from libpq (issue 19 part 5),
against a real PostgreSQL with scram-sha-256 authentication.

libpq applies SASLprep (RFC 4013) to a password both when it computes a verifier
(`PQencryptPasswordConn`) and when it logs in (fe-auth-scram.c), so a role made
through it logs in with any password. The offline verifier (kept only for the SQL
file written for the operator) hashes the raw bytes: equal for ordinary passwords.
"""

from __future__ import annotations

import base64
import uuid

import psycopg
from pg_server import pg_server  # noqa: F401  (fixture)

from tui.clients import postgres

# U+00AD (soft hyphen) is "mapped to nothing" and U+FB01 (fi ligature) is NFKC-folded to
# "fi" by SASLprep: the verifier must be of the prepared password.
PREPPED = "Pa\u00adss-w0rd-\ufb01x"


def _server(pg) -> postgres.Server:
    return postgres.Server(pg.host, pg.port)


def _stored(pg, user: str) -> str:
    with psycopg.connect(host=pg.host, port=pg.port, user=pg.admin,
                         password=pg.admin_password, dbname="postgres") as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                           (user,)).fetchone()
    assert row is not None
    return row[0]


def test_a_role_made_live_logs_in_even_when_saslprep_changes_the_password(
        pg_server):  # noqa: F811
    user, db = f"files-{uuid.uuid4().hex[:8]}", f"db-{uuid.uuid4().hex[:8]}"
    server = _server(pg_server)
    done = postgres.ensure_role_and_database(server, pg_server.admin,
                                             pg_server.admin_password, user, PREPPED, db)
    assert done == [f"created role {user}", f"created database {db} owned by {user}"]
    assert postgres.can_login(server, user, PREPPED, db)
    assert _stored(pg_server, user).startswith("SCRAM-SHA-256$4096:")
    # the login test proves it: a second run changes nothing
    assert postgres.ensure_role_and_database(server, pg_server.admin,
                                             pg_server.admin_password, user, PREPPED,
                                             db) == []


def test_the_offline_verifier_equals_libpqs_for_an_ordinary_password(pg_server):  # noqa: F811
    """Same salt and iterations, same verifier: the SQL file's role logs in too."""
    password = "pa'ss \"$word\\ ${x}"
    with psycopg.connect(host=pg_server.host, port=pg_server.port, user=pg_server.admin,
                         password=pg_server.admin_password, dbname="postgres") as conn:
        live = postgres.libpq_verifier(conn, "carbonio-files-adm", password)
    scheme, rest = live.split("$", 1)
    params, _keys = rest.split("$")
    iterations, salt = params.split(":")
    assert scheme == "SCRAM-SHA-256"
    assert postgres.scram_verifier(password, base64.b64decode(salt), int(iterations)) == live
