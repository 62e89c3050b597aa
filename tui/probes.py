""""Test connection" for the wizard's credentials pages: one read-only call with the
page's answers and secrets, before the rest of the answers exist.

Each probe proves the address, the TLS trust and the credentials at once, with the
call the procedure's first step makes anyway, and says what answered in one sentence
(or raises the client's own OperatorError: what failed and what to check). Declared
on a page as `Page(probe=...)`; the TUI runs it in a thread on ctrl+t.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tui.clients.cloudcasa import CloudCasaClient
from tui.clients.cloudstack import CloudStackClient
from tui.clients.connect import ConnectClient, authorization
from tui.clients.consul import ConsulClient
from tui.clients.keystone import KeystoneClient
from tui.errors import UsageError
from tui.secrets import SecretSource
from tui.words import plural


def consul(values: Mapping[str, Any], secrets: SecretSource) -> str:
    """carbonio: GET /v1/acl/token/self with the management token."""
    url = str(values["consul_url"])
    with ConsulClient(url, secrets.get("consul_token"),
                      ca_file=values.get("consul_ca_file")) as client:
        token = client.token_self()
    policies = ", ".join(p.get("Name", "?") for p in token.get("Policies") or []) or "none"
    return f"Consul at {url} answered; the management token is valid (policies: {policies})"


def cloudstack(values: Mapping[str, Any], secrets: SecretSource) -> str:
    """cloudstack: the signed listCapabilities the preflight step calls."""
    url = str(values["api_url"])
    with CloudStackClient(url, str(values["api_key"]), secrets.get("secret_key"),
                          ca_file=values.get("ca_file")) as client:
        capability = client.capabilities()
    version = capability.get("cloudstackversion", "?")
    return f"CloudStack {version} at {url} accepted the signed request"


def cloudcasa(values: Mapping[str, Any], secrets: SecretSource) -> str:
    """cloudcasa: the cloud accounts the key may read."""
    url = str(values["api_url"])
    with CloudCasaClient(url, secrets.get("api_key"),
                         ca_file=values.get("api_ca_file")) as client:
        accounts = client.find("cloudaccounts", {})
    return (f"CloudCasa at {url} accepted the API key "
            f"({plural(len(accounts), 'cloud account')} visible)")


def keystone(values: Mapping[str, Any], secrets: SecretSource) -> str:
    """atmosphere: a project-scoped token for the OpenStack admin."""
    url = str(values["auth_url"])
    with KeystoneClient(url, username=str(values["os_admin_user"]),
                        password=secrets.get("os_admin_password"),
                        project=str(values["os_admin_project"]),
                        user_domain=str(values["os_user_domain"]),
                        ca_file=values.get("os_ca_file")) as client:
        client.authenticate()
    return (f"Keystone at {url} issued a token for {values['os_admin_user']} on project "
            f"{values['os_admin_project']}")


def connect(values: Mapping[str, Any], secrets: SecretSource) -> str:
    """cloudblue: the accounts the Connect API key belongs to."""
    key = secrets.get("cloudblue_token")
    try:
        authorization(key)
    except ValueError as exc:
        raise UsageError(f"Connect API key: {exc}") from None
    url = str(values["api_endpoint"])
    with ConnectClient(url, key) as client:
        accounts = client.accounts()
    names = ", ".join(str(a.get("name") or a.get("id")) for a in accounts[:3]) or "none"
    return f"Connect at {url} accepted the API key (accounts: {names})"
