"""Consul HTTP API client for the calls a terminating-gateway setup needs.

Written from Consul's API docs (website/content/api-docs/{acl/policies,acl/tokens,
catalog,config,health,kv}.mdx). Quirks kept in mind:
- a missing or unknown token answers 403 "ACL not found" — and so does reading a
  policy by a name that does not exist, so the token is checked first
  (`GET /v1/acl/token/self`) and only then is that 403 read as "no such policy";
- every PUT replaces the whole object (policy Name is required on update);
- KV values are raw bytes on PUT and base64 in GET unless `?raw`;
- `PUT /v1/acl/token` and `PUT /v1/acl/policy` create, so they are never retried.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tui.http import ApiClient, RemoteError, json_body, make_client, request

ACL_NOT_FOUND = "ACL not found"
NO_RETRY = {"idempotent": False}


class ConsulClient(ApiClient):
    def __init__(self, base_url: str, token: str, *, ca_file: str | None = None,
                 transport: httpx.BaseTransport | None = None, backoff: float = 0.25) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = make_client(self.base_url, ca_file=ca_file, transport=transport,
                                headers={"X-Consul-Token": token}, backoff=backoff)
        self._token_checked = False

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

    def token_self(self) -> dict[str, Any]:
        """The calling token; proves it is valid before 403s are interpreted."""
        data = json_body(self._call("GET", "/v1/acl/token/self"))
        self._token_checked = True
        return data

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
        if not self._token_checked:
            self.token_self()
        path = f"/v1/acl/policy/name/{quote(name, safe='')}"
        response = self._call("GET", path, ok=(200, 403, 404))
        if response.status_code == 200:
            return json_body(response)
        if response.status_code == 404 or ACL_NOT_FOUND in response.text:
            return None  # the token was proven valid: this 403 means "no such policy"
        raise self._explain(RemoteError("", status=403, body=response.text), "GET", path)

    def create_policy(self, name: str, description: str, rules: str) -> dict[str, Any]:
        body = {"Name": name, "Description": description, "Rules": rules}
        return json_body(self._call("PUT", "/v1/acl/policy", json=body, extensions=NO_RETRY))

    def update_policy(self, policy: dict[str, Any], description: str,
                      rules: str) -> dict[str, Any]:
        """Full replace, keeping the fields CloudRig does not manage (Datacenters)."""
        body = {"ID": policy["ID"], "Name": policy["Name"], "Description": description,
                "Rules": rules, "Datacenters": policy.get("Datacenters") or []}
        return json_body(self._call("PUT", f"/v1/acl/policy/{policy['ID']}", json=body))

    def delete_policy(self, policy_id: str) -> None:
        self._call("DELETE", f"/v1/acl/policy/{policy_id}")

    # ------------------------------------------------------------ ACL tokens

    def create_token(self, description: str, policy_names: list[str]) -> dict[str, Any]:
        body = {"Description": description, "Policies": [{"Name": n} for n in policy_names],
                "Local": False}
        return json_body(self._call("PUT", "/v1/acl/token", json=body, extensions=NO_RETRY))

    def tokens_for_policy(self, policy_id: str) -> list[dict[str, Any]]:
        return json_body(self._call("GET", "/v1/acl/tokens", params={"policy": policy_id}))

    def delete_token(self, accessor_id: str) -> None:
        self._call("DELETE", f"/v1/acl/token/{accessor_id}", ok=(200, 404))

    # ------------------------------------------------------------ catalog

    def catalog_register(self, registration: dict[str, Any]) -> None:
        self._call("PUT", "/v1/catalog/register", json=registration)

    def catalog_service(self, name: str) -> list[dict[str, Any]]:
        return json_body(self._call("GET", f"/v1/catalog/service/{quote(name, safe='')}"))

    def catalog_deregister(self, node: str, service_id: str) -> None:
        """Remove one service from a node (never the whole node: ServiceID is always sent)."""
        self._call("PUT", "/v1/catalog/deregister", json={"Node": node, "ServiceID": service_id})

    def catalog_node(self, node: str) -> dict[str, Any] | None:
        """`GET /v1/catalog/node/:node` (`null` when the node is unknown)."""
        return json_body(self._call("GET", f"/v1/catalog/node/{quote(node, safe='')}"))

    def catalog_deregister_node(self, node: str) -> None:
        """Remove a whole node: only for the external node CloudRig registered."""
        self._call("PUT", "/v1/catalog/deregister", json={"Node": node})

    def agent_services(self) -> dict[str, Any]:
        """Services registered with the local agent, by ID (`GET /v1/agent/services`)."""
        return json_body(self._call("GET", "/v1/agent/services"))

    def agent_deregister(self, service_id: str) -> None:
        self._call("PUT", f"/v1/agent/service/deregister/{quote(service_id, safe='')}",
                   ok=(200, 404))

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

    def config_put(self, entry: dict[str, Any]) -> None:
        response = self._call("PUT", "/v1/config", json=entry)
        if json_body(response) is not True:
            raise RemoteError(f"Consul at {self.base_url} did not apply the {entry['Kind']} "
                              f"config entry {entry['Name']!r} (it answered false)")

    def config_delete(self, kind: str, name: str) -> None:
        self._call("DELETE", f"/v1/config/{kind}/{quote(name, safe='')}", ok=(200, 404))

    # ------------------------------------------------------------ KV

    def kv_get(self, key: str) -> bytes | None:
        response = self._call("GET", f"/v1/kv/{quote(key)}", params={"raw": ""},
                              ok=(200, 404))
        return response.content if response.status_code == 200 else None

    def kv_put(self, key: str, value: bytes) -> None:
        response = self._call("PUT", f"/v1/kv/{quote(key)}", content=value)
        if json_body(response) is not True:
            raise RemoteError(f"Consul at {self.base_url} did not store KV key {key!r}")

    def kv_delete(self, key: str) -> None:
        self._call("DELETE", f"/v1/kv/{quote(key)}")
