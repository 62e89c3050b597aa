"""A Consul HTTP API on 127.0.0.1, written from Consul's API documentation.

Covers what the carbonio procedure uses — ACL policies and tokens, the catalog,
config entries, KV and agent deregistration — with Consul's behaviour:
- auth by `X-Consul-Token`, `Authorization: Bearer` or `?token=`; a missing or
  unknown token answers 403 `ACL not found` (text/plain);
- reading a policy by a name that does not exist also answers 403 `ACL not found`;
- a duplicate policy name on create answers 500 `Invalid Policy: A Policy with
  Name "x" already exists`; names must match [A-Za-z0-9_-];
- a non-management token gets 403 `Permission denied: token with AccessorID '…'
  lacks permission '…'` for anything but reading itself;
- every PUT replaces the whole object; policy updates require Name;
- KV PUT takes raw bytes; GET returns base64 in JSON unless `?raw`; missing → 404
  with an empty body; config entry missing → 404.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import uuid
from typing import Any
from urllib.parse import unquote

from fakes.server import FakeService, Reply, Request

GLOBAL_MANAGEMENT_ID = "00000000-0000-0000-0000-000000000001"
POLICY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
CONFIG_KINDS = {"terminating-gateway", "service-defaults", "proxy-defaults",
                "ingress-gateway", "service-router", "service-resolver", "service-splitter",
                "service-intentions", "mesh"}


class FakeConsul(FakeService):
    def __init__(self, management_token: str | None = None) -> None:
        super().__init__()
        self.index = itertools.count(10)
        self.policies: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.config: dict[tuple[str, str], dict[str, Any]] = {}
        self.kv: dict[str, bytes] = {}
        self.agent_services: dict[str, dict[str, Any]] = {}
        self.management_token = management_token or str(uuid.uuid4())
        self.policies[GLOBAL_MANAGEMENT_ID] = self._policy_record(
            GLOBAL_MANAGEMENT_ID, "global-management", "Builtin Policy", "operator = \"write\"")
        self._add_token(self.management_token, [{"ID": GLOBAL_MANAGEMENT_ID,
                                                 "Name": "global-management"}],
                        "Initial Management Token")

    # ------------------------------------------------------------ records

    def _policy_record(self, pid: str, name: str, description: str, rules: str,
                       datacenters: list[str] | None = None) -> dict[str, Any]:
        i = next(self.index)
        return {"ID": pid, "Name": name, "Description": description, "Rules": rules,
                "Datacenters": datacenters or [],
                "Hash": base64.b64encode(hashlib.sha256(rules.encode()).digest()).decode(),
                "CreateIndex": i, "ModifyIndex": i}

    def _add_token(self, secret: str, policies: list[dict[str, str]],
                   description: str) -> dict[str, Any]:
        i = next(self.index)
        token = {"AccessorID": str(uuid.uuid4()), "SecretID": secret,
                 "Description": description, "Policies": policies, "Local": False,
                 "CreateTime": "2026-11-22T00:00:00Z", "Hash": "", "CreateIndex": i,
                 "ModifyIndex": i}
        self.tokens[token["AccessorID"]] = token
        return token

    def policy_named(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.policies.values() if p["Name"] == name), None)

    # ------------------------------------------------------------ auth

    def _caller(self, req: Request) -> dict[str, Any] | None:
        secret = req.headers.get("x-consul-token") or req.arg("token")
        auth = req.headers.get("authorization", "")
        if not secret and auth.startswith("Bearer "):
            secret = auth.removeprefix("Bearer ")
        return next((t for t in self.tokens.values() if t["SecretID"] == secret), None)

    @staticmethod
    def _is_management(token: dict[str, Any]) -> bool:
        return any(p["ID"] == GLOBAL_MANAGEMENT_ID for p in token["Policies"])

    # ------------------------------------------------------------ routing

    def handle(self, req: Request) -> Reply:
        caller = self._caller(req)
        if caller is None:
            return Reply.text("ACL not found", 403)
        path = req.path
        if req.method == "GET" and path == "/v1/acl/token/self":
            return Reply.json(caller)
        if not self._is_management(caller):
            return Reply.text(f"Permission denied: token with AccessorID "
                              f"'{caller['AccessorID']}' lacks permission 'acl:write'", 403)
        for pattern, method, handler in self.routes():
            match = re.fullmatch(pattern, path)
            if match and req.method == method:
                return handler(req, *[unquote(g) for g in match.groups()])
        return Reply.text(f"Unsupported path {req.method} {path}", 404)

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            (r"/v1/acl/policy", "PUT", self.create_policy),
            (r"/v1/acl/policy/name/(.+)", "GET", self.read_policy_by_name),
            (r"/v1/acl/policy/([^/]+)", "GET", self.read_policy),
            (r"/v1/acl/policy/([^/]+)", "PUT", self.update_policy),
            (r"/v1/acl/policy/([^/]+)", "DELETE", self.delete_policy),
            (r"/v1/acl/policies", "GET", self.list_policies),
            (r"/v1/acl/token", "PUT", self.create_token),
            (r"/v1/acl/tokens", "GET", self.list_tokens),
            (r"/v1/acl/token/([^/]+)", "GET", self.read_token),
            (r"/v1/acl/token/([^/]+)", "DELETE", self.delete_token),
            (r"/v1/catalog/register", "PUT", self.register),
            (r"/v1/catalog/deregister", "PUT", self.deregister),
            (r"/v1/catalog/service/(.+)", "GET", self.catalog_service),
            (r"/v1/catalog/node/(.+)", "GET", self.catalog_node),
            (r"/v1/agent/services", "GET", self.list_agent_services),
            (r"/v1/agent/service/deregister/(.+)", "PUT", self.agent_deregister),
            (r"/v1/config", "PUT", self.put_config),
            (r"/v1/config/([^/]+)/(.+)", "GET", self.get_config),
            (r"/v1/config/([^/]+)/(.+)", "DELETE", self.delete_config),
            (r"/v1/kv/(.+)", "GET", self.kv_get),
            (r"/v1/kv/(.+)", "PUT", self.kv_put),
            (r"/v1/kv/(.+)", "DELETE", self.kv_delete),
        ]

    # ------------------------------------------------------------ ACL policies

    def create_policy(self, req: Request) -> Reply:
        body = _json_or_none(req)
        if not isinstance(body, dict):
            return Reply.text("Request decode failed: invalid character", 400)
        name = body.get("Name") or ""
        if not POLICY_NAME.match(name):
            return Reply.text(f"Invalid Policy: invalid Name {name!r}", 400)
        if self.policy_named(name):
            return Reply.text(f'Invalid Policy: A Policy with Name "{name}" already exists',
                              500)
        error = _rules_error(body.get("Rules", ""))
        if error:
            return Reply.text(error, 400)
        pid = str(uuid.uuid4())
        self.policies[pid] = self._policy_record(pid, name, body.get("Description", ""),
                                                 body.get("Rules", ""),
                                                 body.get("Datacenters"))
        return Reply.json(self.policies[pid])

    def read_policy_by_name(self, req: Request, name: str) -> Reply:
        policy = self.policy_named(name)
        return Reply.json(policy) if policy else Reply.text("ACL not found", 403)

    def read_policy(self, req: Request, pid: str) -> Reply:
        policy = self.policies.get(pid)
        return Reply.json(policy) if policy else Reply.text("ACL not found", 403)

    def update_policy(self, req: Request, pid: str) -> Reply:
        body = _json_or_none(req)
        if not isinstance(body, dict):
            return Reply.text("Request decode failed", 400)
        if body.get("ID") and body["ID"] != pid:
            return Reply.text("Policy ID in URL and payload do not match", 400)
        existing = self.policies.get(pid)
        if existing is None:
            return Reply.text(f"Invalid Policy: Cannot find policy {pid}", 400)
        name = body.get("Name") or ""
        if not name:
            return Reply.text("Invalid Policy: no Name is set", 400)
        other = self.policy_named(name)
        if other and other["ID"] != pid:
            return Reply.text(f'Invalid Policy: A Policy with Name "{name}" already exists',
                              500)
        error = _rules_error(body.get("Rules", ""))
        if error:
            return Reply.text(error, 400)
        record = self._policy_record(pid, name, body.get("Description", ""),
                                     body.get("Rules", ""), body.get("Datacenters"))
        record["CreateIndex"] = existing["CreateIndex"]
        self.policies[pid] = record
        return Reply.json(record)

    def delete_policy(self, req: Request, pid: str) -> Reply:
        if pid == GLOBAL_MANAGEMENT_ID:
            return Reply.text("Delete operation not permitted on the builtin policy", 400)
        self.policies.pop(pid, None)
        for token in self.tokens.values():
            token["Policies"] = [p for p in token["Policies"] if p["ID"] != pid]
        return Reply.json(True)

    def list_policies(self, req: Request) -> Reply:
        return Reply.json([{k: v for k, v in p.items() if k != "Rules"}
                           for p in self.policies.values()])

    # ------------------------------------------------------------ ACL tokens

    def create_token(self, req: Request) -> Reply:
        body = _json_or_none(req)
        if not isinstance(body, dict):
            return Reply.text("Request decode failed", 400)
        links = []
        for link in body.get("Policies") or []:
            policy = (self.policies.get(link.get("ID", "")) if link.get("ID")
                      else self.policy_named(link.get("Name", "")))
            if policy is None:
                wanted = link.get("ID") or link.get("Name")
                return Reply.text(f"Invalid Policy: Unable to find policy: {wanted}", 400)
            links.append({"ID": policy["ID"], "Name": policy["Name"]})
        token = self._add_token(body.get("SecretID") or str(uuid.uuid4()), links,
                                body.get("Description", ""))
        return Reply.json(token)

    def list_tokens(self, req: Request) -> Reply:
        policy = req.arg("policy")
        tokens = [t for t in self.tokens.values()
                  if policy is None or any(p["ID"] == policy for p in t["Policies"])]
        return Reply.json(tokens)

    def read_token(self, req: Request, accessor: str) -> Reply:
        token = self.tokens.get(accessor)
        return Reply.json(token) if token else Reply.text("ACL not found", 403)

    def delete_token(self, req: Request, accessor: str) -> Reply:
        self.tokens.pop(accessor, None)
        return Reply.json(True)

    # ------------------------------------------------------------ catalog

    def register(self, req: Request) -> Reply:
        body = _json_or_none(req)
        if not isinstance(body, dict):
            return Reply.text("Request decode failed", 400)
        if not body.get("Node"):
            return Reply.text("Must provide node", 400)
        if not body.get("Address"):
            return Reply.text("Must provide address", 400)
        node = self.nodes.setdefault(body["Node"], {"services": {}})
        node.update({"Node": body["Node"], "Address": body["Address"],
                     "NodeMeta": body.get("NodeMeta") or {}})
        service = body.get("Service")
        if service:
            if not service.get("Service"):
                return Reply.text("Must provide service name", 400)
            sid = service.get("ID") or service["Service"]
            node["services"][sid] = {"ID": sid, "Service": service["Service"],
                                     "Port": service.get("Port", 0),
                                     "Address": service.get("Address", ""),
                                     "Tags": service.get("Tags") or [],
                                     "Meta": service.get("Meta") or {}}
        return Reply.json(True)

    def deregister(self, req: Request) -> Reply:
        body = _json_or_none(req)
        if not isinstance(body, dict) or not body.get("Node"):
            return Reply.text("Must provide node", 400)
        node = self.nodes.get(body["Node"])
        if node is None:
            return Reply.json(True)
        if body.get("ServiceID"):
            node["services"].pop(body["ServiceID"], None)
        else:
            del self.nodes[body["Node"]]
        return Reply.json(True)

    def catalog_service(self, req: Request, name: str) -> Reply:
        out = []
        for node in self.nodes.values():
            for service in node["services"].values():
                if service["Service"] == name:
                    out.append({"Node": node["Node"], "Address": node["Address"],
                                "NodeMeta": node["NodeMeta"], "ServiceID": service["ID"],
                                "ServiceName": service["Service"],
                                "ServicePort": service["Port"],
                                "ServiceAddress": service["Address"],
                                "ServiceTags": service["Tags"],
                                "ServiceMeta": service["Meta"]})
        return Reply.json(out)

    def catalog_node(self, req: Request, name: str) -> Reply:
        node = self.nodes.get(name)
        if node is None:
            return Reply.json(None)
        return Reply.json({"Node": {"Node": node["Node"], "Address": node["Address"],
                                    "Meta": node["NodeMeta"]},
                           "Services": dict(node["services"])})

    def list_agent_services(self, req: Request) -> Reply:
        return Reply.json(self.agent_services)

    def agent_deregister(self, req: Request, sid: str) -> Reply:
        if sid not in self.agent_services:
            return Reply.text(f'Unknown service ID "{sid}". Ensure that the service ID is '
                              "passed, not the service name.", 404)
        del self.agent_services[sid]
        return Reply.json(None)

    # ------------------------------------------------------------ config entries

    def put_config(self, req: Request) -> Reply:
        body = _json_or_none(req)
        if not isinstance(body, dict):
            return Reply.text("Request decode failed", 400)
        kind, name = body.get("Kind"), body.get("Name")
        if kind not in CONFIG_KINDS:
            return Reply.text(f"invalid config entry kind: {kind}", 400)
        if not name:
            return Reply.text("Name is required", 400)
        key = (kind, name)
        cas = req.arg("cas")
        existing = self.config.get(key)
        if cas is not None:
            current = existing["ModifyIndex"] if existing else 0
            if int(cas) != current:
                return Reply.json(False)
        i = next(self.index)
        entry = dict(body)
        entry["CreateIndex"] = existing["CreateIndex"] if existing else i
        entry["ModifyIndex"] = i
        self.config[key] = entry
        return Reply.json(True)

    def get_config(self, req: Request, kind: str, name: str) -> Reply:
        entry = self.config.get((kind, name))
        if entry is None:
            return Reply.text(f'Config entry not found for "{kind}" / "{name}"', 404)
        return Reply.json(entry)

    def delete_config(self, req: Request, kind: str, name: str) -> Reply:
        self.config.pop((kind, name), None)
        return Reply.json({})

    # ------------------------------------------------------------ KV

    def kv_get(self, req: Request, key: str) -> Reply:
        value = self.kv.get(key)
        if value is None:
            return Reply(404, b"", "text/plain")
        if "raw" in req.query:
            return Reply(200, value, "text/plain; charset=utf-8")
        return Reply.json([{"Key": key, "Flags": 0, "LockIndex": 0, "CreateIndex": 1,
                            "ModifyIndex": 1, "Value": base64.b64encode(value).decode()}])

    def kv_put(self, req: Request, key: str) -> Reply:
        if len(req.body) > 512 * 1024:
            return Reply.text("Value exceeds 524288 byte limit", 413)
        self.kv[key] = req.body
        return Reply.json(True)

    def kv_delete(self, req: Request, key: str) -> Reply:
        if "recurse" in req.query:
            for k in [k for k in self.kv if k.startswith(key)]:
                del self.kv[k]
        else:
            self.kv.pop(key, None)
        return Reply.json(True)


def _json_or_none(req: Request) -> Any:
    try:
        return json.loads(req.body or b"null")
    except ValueError:
        return None


def _rules_error(rules: str) -> str | None:
    """Consul parses rules (HCL or JSON); JSON rules that do not parse are refused."""
    if rules.strip().startswith("{"):
        try:
            json.loads(rules)
        except ValueError as exc:
            return f"Failed to parse ACL rules: {exc}"
    return None
