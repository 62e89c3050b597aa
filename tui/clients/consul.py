"""Consul HTTP API client for the calls a terminating-gateway setup needs.

Written from Consul's API docs (website/content/api-docs/{acl/policies,acl/tokens,
catalog,config,health,kv}.mdx). Quirks kept in mind:
- a missing or unknown token answers 403 "ACL not found" — and so does reading a
  policy by a name that does not exist, so the token is checked first
  (`GET /v1/acl/token/self`) and only then is that 403 read as "no such policy";
- every PUT replaces the whole object (policy Name is required on update);
- KV values are raw bytes on PUT and base64 in GET unless `?raw`;
- `PUT /v1/acl/token` and `PUT /v1/acl/policy` create, so they are never retried.

Every change is built as a `Request` first (`*_request`), which the procedure's
plan shows and `send` sends unchanged.
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any
from urllib.parse import quote

import httpx

from tui.clients.wire import Request
from tui.http import ApiClient, RemoteError, json_body, make_client, request
from tui.redact import redact

ACL_NOT_FOUND = "ACL not found"


class ConsulClient(ApiClient):
    def __init__(self, base_url: str, token: str, *, ca_file: str | None = None,
                 transport: httpx.BaseTransport | None = None, backoff: float = 0.25) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = make_client(self.base_url, ca_file=ca_file, transport=transport,
                                headers={"X-Consul-Token": token}, backoff=backoff)
        self._token: dict[str, Any] | None = None
        self._token_lock = threading.Lock()

    # ------------------------------------------------------------ helpers

    def _explain(self, exc: RemoteError, method: str, path: str) -> RemoteError:
        if exc.status == 403 and ACL_NOT_FOUND in exc.body:
            return RemoteError(
                f"Consul at {self.base_url} refused the token for {method} {path} "
                "(403 ACL not found): the token is unknown or expired; give a valid "
                "management token (CLOUDRIG_SECRET_CONSUL_TOKEN or `cloudrig secrets set "
                "consul_token`)", status=403, body=exc.body)
        if exc.status == 403:
            return RemoteError(
                f"Consul at {self.base_url} denied {method} {path} (403 "
                f"{exc.body[:120] or 'Permission denied'}): the token's ACL policy lacks "
                "this permission; use a management token", status=403, body=exc.body)
        return exc

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200,),
              hint: str = "", **kwargs: Any) -> httpx.Response:
        try:
            return request(self.http, method, path, ok=ok, hint=hint, **kwargs)
        except RemoteError as exc:
            raise self._explain(exc, method, path) from None

    def url_of(self, req: Request) -> str:
        return self.base_url + req.target()

    def send(self, req: Request) -> httpx.Response:
        """Send a built request exactly as it is."""
        return self._call(req.method, req.path, **req.httpx_kwargs())

    def send_json(self, req: Request) -> Any:
        return json_body(self.send(req))

    def send_true(self, req: Request, failure: str) -> None:
        """Send a request Consul answers `true` when it did it (config, KV)."""
        if json_body(self.send(req)) is not True:
            raise RemoteError(f"Consul at {self.base_url} {failure} (it answered false)")

    def token_self(self) -> dict[str, Any]:
        """The calling token; proves it is valid before 403s are interpreted. Read once
        per client: the checks of a dashboard refresh share one client and run at once,
        and the management-token and policy checks both need it, so a second caller
        waits for the first one's answer instead of asking again (a failure is not
        kept: the next caller asks)."""
        with self._token_lock:
            if self._token is None:
                self._token = json_body(self._call("GET", "/v1/acl/token/self"))
            return self._token

    def token_valid(self, secret: str) -> dict[str, Any] | None:
        """Whether another token (e.g. the gateway's) is valid: its self-read, or None."""
        try:
            response = self.http.get("/v1/acl/token/self", headers={"X-Consul-Token": secret})
        except httpx.HTTPError:
            return None
        if response.status_code == 200:
            return json_body(response)
        return None

    # ------------------------------------------------------------ ACL policies

    def policy_by_name(self, name: str) -> dict[str, Any] | None:
        self.token_self()
        path = f"/v1/acl/policy/name/{quote(name, safe='')}"
        response = self._call("GET", path, ok=(200, 403, 404))
        if response.status_code == 200:
            return json_body(response)
        if response.status_code == 404 or ACL_NOT_FOUND in response.text:
            return None  # the token was proven valid: this 403 means "no such policy"
        raise self._explain(RemoteError("", status=403, body=response.text), "GET", path)

    @staticmethod
    def create_policy_request(name: str, description: str, rules: str) -> Request:
        return Request("PUT", "/v1/acl/policy", retry=False,
                       json={"Name": name, "Description": description, "Rules": rules})

    def create_policy(self, name: str, description: str, rules: str) -> dict[str, Any]:
        return self.send_json(self.create_policy_request(name, description, rules))

    @staticmethod
    def update_policy_request(policy: dict[str, Any], description: str,
                              rules: str) -> Request:
        """Full replace, keeping the fields CloudRig does not manage (Datacenters)."""
        body = {"ID": policy["ID"], "Name": policy["Name"], "Description": description,
                "Rules": rules, "Datacenters": policy.get("Datacenters") or []}
        return Request("PUT", f"/v1/acl/policy/{policy['ID']}", json=body)

    def update_policy(self, policy: dict[str, Any], description: str,
                      rules: str) -> dict[str, Any]:
        return self.send_json(self.update_policy_request(policy, description, rules))

    @staticmethod
    def delete_policy_request(policy_id: str) -> Request:
        return Request("DELETE", f"/v1/acl/policy/{policy_id}")

    def delete_policy(self, policy_id: str) -> None:
        self.send(self.delete_policy_request(policy_id))

    # ------------------------------------------------------------ ACL tokens

    @staticmethod
    def create_token_request(description: str, policy_names: list[str]) -> Request:
        body = {"Description": description, "Policies": [{"Name": n} for n in policy_names],
                "Local": False}
        return Request("PUT", "/v1/acl/token", json=body, retry=False)

    def create_token(self, description: str, policy_names: list[str]) -> dict[str, Any]:
        return self.send_json(self.create_token_request(description, policy_names))

    def tokens_for_policy(self, policy_id: str) -> list[dict[str, Any]]:
        return json_body(self._call("GET", "/v1/acl/tokens", params={"policy": policy_id}))

    @staticmethod
    def delete_token_request(accessor_id: str) -> Request:
        return Request("DELETE", f"/v1/acl/token/{accessor_id}", ok=(200, 404))

    def delete_token(self, accessor_id: str) -> None:
        self.send(self.delete_token_request(accessor_id))

    # ------------------------------------------------------------ catalog

    @staticmethod
    def catalog_register_request(registration: dict[str, Any]) -> Request:
        return Request("PUT", "/v1/catalog/register", json=registration)

    def catalog_register(self, registration: dict[str, Any]) -> None:
        self.send(self.catalog_register_request(registration))

    def catalog_service(self, name: str) -> list[dict[str, Any]]:
        return json_body(self._call("GET", f"/v1/catalog/service/{quote(name, safe='')}"))

    @staticmethod
    def catalog_deregister_request(node: str, service_id: str) -> Request:
        """Remove one service from a node (never the whole node: ServiceID is always sent)."""
        return Request("PUT", "/v1/catalog/deregister",
                       json={"Node": node, "ServiceID": service_id})

    def catalog_deregister(self, node: str, service_id: str) -> None:
        self.send(self.catalog_deregister_request(node, service_id))

    def catalog_node(self, node: str) -> dict[str, Any] | None:
        """`GET /v1/catalog/node/:node` (`null` when the node is unknown)."""
        return json_body(self._call("GET", f"/v1/catalog/node/{quote(node, safe='')}"))

    @staticmethod
    def catalog_deregister_node_request(node: str) -> Request:
        """Remove a whole node: only for the external node CloudRig registered."""
        return Request("PUT", "/v1/catalog/deregister", json={"Node": node})

    def catalog_deregister_node(self, node: str) -> None:
        self.send(self.catalog_deregister_node_request(node))

    def agent_services(self) -> dict[str, Any]:
        """Services registered with the local agent, by ID (`GET /v1/agent/services`)."""
        return json_body(self._call("GET", "/v1/agent/services"))

    @staticmethod
    def agent_deregister_request(service_id: str) -> Request:
        return Request("PUT", f"/v1/agent/service/deregister/{quote(service_id, safe='')}",
                       ok=(200, 404))

    def agent_deregister(self, service_id: str) -> None:
        self.send(self.agent_deregister_request(service_id))

    def health_service(self, name: str) -> list[dict[str, Any]]:
        """Every instance of service `name` with its node and checks
        (`GET /v1/health/service/:service`, api-docs/health.mdx)."""
        return json_body(self._call("GET", f"/v1/health/service/{quote(name, safe='')}"))

    def gateway_services(self, gateway: str) -> list[dict[str, Any]]:
        """The services a gateway routes, with their CAFile/SNI
        (`GET /v1/catalog/gateway-services/:gateway`, api-docs/catalog.mdx, Consul 1.8+)."""
        return json_body(self._call(
            "GET", f"/v1/catalog/gateway-services/{quote(gateway, safe='')}"))

    # ------------------------------------------------------------ config entries

    def config_get(self, kind: str, name: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/v1/config/{kind}/{quote(name, safe='')}", ok=(200, 404))
        return json_body(response) if response.status_code == 200 else None

    @staticmethod
    def config_put_request(entry: dict[str, Any]) -> Request:
        return Request("PUT", "/v1/config", json=entry)

    def config_put(self, entry: dict[str, Any]) -> None:
        self.send_true(self.config_put_request(entry),
                       f"did not apply the {entry['Kind']} config entry {entry['Name']!r}")

    @staticmethod
    def config_delete_request(kind: str, name: str) -> Request:
        return Request("DELETE", f"/v1/config/{kind}/{quote(name, safe='')}", ok=(200, 404))

    def config_delete(self, kind: str, name: str) -> None:
        self.send(self.config_delete_request(kind, name))

    # ------------------------------------------------------------ KV

    def kv_get(self, key: str) -> bytes | None:
        response = self._call("GET", f"/v1/kv/{quote(key)}", params={"raw": ""},
                              ok=(200, 404))
        return response.content if response.status_code == 200 else None

    def kv_values(self, keys: list[str]) -> dict[str, bytes | None]:
        """Each of KEYS' value (None: missing), as `kv_get` reads them, in one request
        when they are all there: `GET /v1/kv/<their common prefix>?recurse`
        (api-docs/kv.mdx "Read Key", `recurse`: every key under the prefix as a JSON
        array, values base64, null when empty; 404 when there is none). Consul leaves
        keys the token may not read out of that answer rather than refusing it
        (agent/consul/kvs_endpoint.go `KVS.List`, FilterDirEnt), and answers 403 only
        under `acl.enable_key_list_policy`: so a key not in it — or every key, on a
        403 or 404 — is read alone, which tells "missing" (None) from "denied" (the
        403 sentence) exactly as `kv_get` does."""
        prefix = _common_prefix(keys)
        found: dict[str, bytes] = {}
        if prefix:
            path = f"/v1/kv/{quote(prefix)}"
            response = self._call("GET", path, params={"recurse": ""}, ok=(200, 403, 404))
            if response.status_code == 200:
                found = _kv_entries(response, keys)
        return {key: found[key] if key in found else self.kv_get(key) for key in keys}

    @staticmethod
    def kv_put_request(key: str, value: bytes) -> Request:
        return Request("PUT", f"/v1/kv/{quote(key)}", content=value)

    def kv_put(self, key: str, value: bytes) -> None:
        self.send_true(self.kv_put_request(key, value), f"did not store KV key {key!r}")

    @staticmethod
    def kv_delete_request(key: str) -> Request:
        return Request("DELETE", f"/v1/kv/{quote(key)}")

    def kv_delete(self, key: str) -> None:
        self.send(self.kv_delete_request(key))


def _common_prefix(keys: list[str]) -> str:
    """The characters every key starts with (KV prefixes are strings, not paths:
    `app/db-` is the prefix of `app/db-name` and `app/db-password`)."""
    shortest = min(keys, key=len, default="")
    for index, char in enumerate(shortest):
        if any(key[index] != char for key in keys):
            return shortest[:index]
    return shortest


def _kv_entries(response: httpx.Response, keys: list[str]) -> dict[str, bytes]:
    """KEYS' values from a recursive KV read's entries (the others are ignored); an
    answer that is not Consul's array of entries is a sentence, not a guess."""
    entries = json_body(response)
    wanted = set(keys)
    found: dict[str, bytes] = {}
    try:
        for entry in entries:
            if entry["Key"] in wanted:
                found[entry["Key"]] = base64.b64decode(entry["Value"] or "", validate=True)
    except (TypeError, KeyError, binascii.Error):
        req = response.request
        raise RemoteError(
            f"{req.method} {redact(str(req.url))} answered {response.status_code} with "
            "something other than Consul's KV entries (a JSON array of objects with Key "
            "and a base64 Value); check that the URL points at Consul's HTTP API") from None
    return found
