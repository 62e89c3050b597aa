"""The carbonio answers: the keys of its answers files (a public contract)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, SecretStr, field_validator

from tui.answers import AbsPath, Answers, Host, ask, check_host, matches

# At most 31 characters: systemd's strict user-name rule (utmp's UT_NAMESIZE - 1); a
# 32-character User= is only accepted with a warning by `systemd-analyze verify`.
UnixName = Annotated[str, matches(
    r"[a-z_][a-z0-9_-]{0,30}",
    "user/service name (lower-case letters, digits, '-' and '_', at most 31, starting with "
    "a letter)")]
ServiceName = Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}",
                                     "Consul service name (letters, digits, '-', '_', '.')")]
NodeName = Annotated[str, matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}",
                                  "Consul node name (letters, digits, '-', '_', '.')")]


def _pg_identifier(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if "\x00" in value:
        raise ValueError("cannot contain a NUL character")
    if len(value.encode()) > 63:
        raise ValueError("is longer than PostgreSQL's 63-byte limit for names")
    return value


def _kv_prefix(value: str) -> str:
    value = value.strip("/")
    if not value or any(ord(c) < 0x20 for c in value):
        raise ValueError("must be a non-empty key path without control characters")
    return value


PgName = Annotated[str, AfterValidator(_pg_identifier)]
KvPrefix = Annotated[str, AfterValidator(_kv_prefix)]


class CarbonioAnswers(Answers):
    """What the carbonio runbook asks of the operator (keys are the answers contract)."""

    consul_url: str = ask(
        "http://127.0.0.1:8500", title="Consul HTTP API",
        help="The local Carbonio Mesh (Consul) agent's HTTP API on the terminating gateway.",
        example="http://127.0.0.1:8500")
    consul_ca_file: AbsPath | None = ask(
        None, title="Consul CA bundle",
        help="PEM file to verify Consul's TLS certificate when consul_url is https.",
        example="/etc/carbonio/mesh/ca.pem")
    consul_token: SecretStr | None = ask(
        title="Consul management token", secret=True,
        help="The bootstrap token from `service-discover bootstrap-token --setup`, asked "
             "with the cluster credential password. Never written to answers files.",
        example="0e1f2a3b-…")
    cluster_password: SecretStr | None = ask(
        title="Cluster credential password", secret=True,
        help="Only to obtain the management token: CloudRig runs `service-discover "
             "bootstrap-token --setup` on a terminal and types this there (the tool reads "
             "it from a terminal only and prints no prompt). Kept in the secret store only.",
        example="the cluster credential password")
    gateway_name: UnixName = ask(
        "carbonio-gateway", title="Gateway name",
        help="The terminating gateway's service, system user and group, ACL policy prefix, "
             "systemd unit and config-entry name.", example="carbonio-gateway")
    config_dir: AbsPath = ask(
        "/etc/carbonio/gateway/service-discover", title="Configuration directory",
        help="Where policies.json, the gateway token and the service definitions live.",
        example="/etc/carbonio/gateway/service-discover")
    service_name: ServiceName = ask(
        "carbonio-files-db", title="External service name",
        help="The service routed through the gateway: the Carbonio Files database.",
        example="carbonio-files-db")
    external_address: Host = ask(
        title="Database host",
        help="Host name or IP address of the external PostgreSQL (the 'database node').",
        example="external-database.example.com")
    external_node: NodeName = ask(
        "external-files-db-node", title="External node name",
        help="The catalog node name Consul records for the external database.",
        example="external-files-db-node")
    external_port: int = ask(
        5432, title="Database port", help="PostgreSQL's TCP port on the database host.",
        example=5432, ge=1, le=65535)
    ca_file: AbsPath | None = ask(
        None, title="Service CA file",
        help="Optional: a CA certificate particular to the service, for TLS from the gateway "
             "to the database. Rarely needed: Consul already encrypts traffic between nodes.",
        example="/etc/ssl/certs/files-db-ca.pem")
    sni: Host | None = ask(
        None, title="SNI", help="Optional: the Server Name Indication to send in the TLS "
        "handshake to the database, to avoid a name mismatch.", example="db.example.com")
    unit_dir: AbsPath = ask(
        "/lib/systemd/system", title="systemd unit directory",
        help="Where the gateway's systemd unit is written.", example="/lib/systemd/system")
    kv_prefix: KvPrefix = ask(
        "carbonio-files", title="KV prefix",
        help="Consul KV prefix under which Carbonio Files reads db-name, db-username and "
             "db-password.", example="carbonio-files")
    db_name: PgName = ask(
        title="Database name", help="The database Carbonio Files uses.",
        example="carbonio-files-adm")
    db_username: PgName = ask(
        title="Database user", help="The login role Carbonio Files connects as.",
        example="carbonio-files-adm")
    db_password: SecretStr | None = ask(
        title="Database password", secret=True,
        help="The password of the database user; stored in Consul KV for Carbonio Files.",
        example="a strong passphrase")
    create_database: bool = ask(
        False, title="Create role and database",
        help="Connect to the database host as the admin user and create (or update) the "
             "role and the database. Off: CloudRig writes the SQL for you to run there.",
        example=False)
    db_admin_user: PgName = ask(
        "postgres", title="Database admin user",
        help="A PostgreSQL superuser on the database host, used only to create the role.",
        example="postgres")
    db_admin_password: SecretStr | None = ask(
        title="Database admin password", secret=True,
        help="The admin user's password (only when creating the role and database).",
        example="the postgres password")

    @field_validator("consul_url")
    @classmethod
    def _url(cls, value: str) -> str:
        match = re.fullmatch(r"(https?)://([^/\s:]+|\[[0-9a-fA-F:]+\])(:\d{1,5})?/?", value)
        if not match:
            raise ValueError(f"{value!r} is not an http(s) URL of a Consul agent")
        check_host(match.group(2).strip("[]"))
        return value.rstrip("/")
