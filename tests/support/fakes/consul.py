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
  with an empty body; config entry missing → 404;
- KV GET with `?recurse` (api-docs/kv.mdx "Read Key", `recurse`; hashicorp/consul
  agent/kvs_endpoint.go `KVSGet` and agent/consul/kvs_endpoint.go `KVS.List`): every
  key starting with the path, in key order, as a JSON array of entries (Key, Flags,
  Value base64 or null when empty, LockIndex, CreateIndex, ModifyIndex; `?raw` is
  ignored); keys the token may not read are left out of the answer, not refused
  (`FilterDirEnt`), and nothing left is 404 with an empty body. Only with
  `acl_enable_key_list_policy` (off by default; `key_list_policy` here) does a token
  without `list` on the prefix get 403;
- ACLs with `default_policy = "deny"` (as Carbonio Mesh runs): a token that is not a
  management token may do only what its policies' rules grant, evaluated as Consul's
  acl/policy_authorizer.go does — an exact rule (`service "x"`) beats a prefix rule,
  the longest prefix wins, `write` implies `read`, no rule denies. A denial answers
  403 `Permission denied: token with AccessorID '…' lacks permission 'service:write'
  on "x"` (acl/errors.go PermissionDeniedByACL). Rules are JSON or HCL. Each route's
  permission is the one its api-docs page lists ("ACL Required");
- the local agent: `GET /v1/agent/self` (agent:read), service registration as
  `consul connect envoy -register` does it (`PUT /v1/agent/service/register`,
  service:write), its services in the catalog and in `/v1/health/service/:name`,
  their checks `critical` until the agent's probe passes (`mark_passing`, or
  `pass_on_register` for an Envoy that listens at once);
- `GET /v1/catalog/gateway-services/:gateway` lists the terminating gateway's linked
  services from its config entry, with CAFile/SNI when set (api-docs/catalog.mdx
  "List Services for Gateway").
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
AGENT_NODE = "carbonio-mesh-1"
ACCESS = {"deny": 0, "read": 1, "list": 2, "write": 3}
SCALAR_RULES = ("acl", "operator", "keyring", "mesh", "peering")
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
        self.kv_index: dict[str, tuple[int, int]] = {}
        """Each key's (CreateIndex, ModifyIndex), set by PUT (1, 1 for a key a test
        put in `kv` directly)."""
        self.key_list_policy = False
        """Consul's `acl.enable_key_list_policy`: a recursive read then needs `list`
        on the prefix (403 without it) instead of only filtering what it answers."""
        self.agent_services: dict[str, dict[str, Any]] = {}
        self.agent_checks: dict[str, dict[str, Any]] = {}
        self.pass_on_register = False
        """Checks of services registered from now on pass at once (Envoy listening)."""
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
        return any(p["ID"] == GLOBAL_MANAGEMENT_ID for p in token.get("Policies") or [])

    # ------------------------------------------------------------ routing

    def handle(self, req: Request) -> Reply:
        caller = self._caller(req)
        if caller is None:
            return Reply.text("ACL not found", 403)
        path = req.path
        if req.method == "GET" and path == "/v1/acl/token/self":
            return Reply.json(caller)
        for pattern, method, handler in self.routes():
            match = re.fullmatch(pattern, path)
            if match and req.method == method:
                args = [unquote(g) for g in match.groups()]
                if not self._is_management(caller):
                    needed = self.permission(req, handler.__name__, args)
                    if needed is not None and not self.allowed(caller, *needed):
                        resource, access, name = needed
                        return Reply.text(
                            f"Permission denied: token with AccessorID "
                            f"'{caller['AccessorID']}' lacks permission "
                            f"'{resource}:{access}' on {json.dumps(name)}", 403)
                return handler(req, *args)
        return Reply.text(f"Unsupported path {req.method} {path}", 404)

    # ------------------------------------------------------------ ACL rules

    def permission(self, req: Request, route: str,
                   args: list[str]) -> tuple[str, str, str] | None:
        """(resource, access, name) a route needs, from the api-docs' "ACL Required"
        column; None: the handler filters its results by the caller's rights."""
        body = _json_or_none(req) if req.method == "PUT" else None
        body = body if isinstance(body, dict) else {}
        match route:
            case "agent_self":
                return ("agent", "read", AGENT_NODE)
            case "agent_register":
                return ("service", "write", str(body.get("Name", "")))
            case "agent_service":
                service = self.agent_services.get(args[0], {})
                return ("service", "read", service.get("Service", args[0]))
            case "agent_deregister":
                service = self.agent_services.get(args[0], {})
                return ("service", "write", service.get("Service", args[0]))
            case "catalog_service" | "health_service" | "gateway_services":
                return ("service", "read", args[0])
            case "catalog_node":
                return ("node", "read", args[0])
            case "register" | "deregister":
                return ("node", "write", str(body.get("Node", "")))
            case "get_config":
                if args[0] == "proxy-defaults":
                    return None  # readable by any token (ProxyConfigEntry.CanRead)
                return ("service", "read", args[1])
            case "put_config" | "delete_config":
                return ("operator", "write", "")
            case "kv_get" if "recurse" in req.query:
                # KVS.List: refused only under the key-list policy; otherwise the
                # handler leaves out the keys the caller may not read (FilterDirEnt).
                return ("key", "list", args[0]) if self.key_list_policy else None
            case "kv_get":
                return ("key", "read", args[0])
            case "kv_put" | "kv_delete":
                return ("key", "write", args[0])
            case "list_agent_services":
                return None
        return ("acl", "write" if req.method != "GET" else "read", "")

    def rules_of(self, token: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for link in token.get("Policies") or []:
            policy = self.policies.get(link["ID"])
            if policy is not None:
                out.append(_parse_rules(policy["Rules"]))
        return out

    def allowed(self, token: dict[str, Any], resource: str, access: str, name: str) -> bool:
        """Consul's answer for one permission, merged over the token's policies (the
        most permissive policy wins between policies; within one, exact beats prefix)."""
        best = 0
        for rules in self.rules_of(token):
            if resource in SCALAR_RULES:
                level = ACCESS.get(str(rules.get(resource) or "deny"), 0)
                if resource == "mesh" and not level:
                    level = ACCESS.get(str(rules.get("operator") or "deny"), 0)
            else:
                level = _lookup(rules, resource, name)
            best = max(best, level)
        return best >= ACCESS[access]

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
            (r"/v1/catalog/gateway-services/(.+)", "GET", self.gateway_services),
            (r"/v1/health/service/(.+)", "GET", self.health_service),
            (r"/v1/agent/self", "GET", self.agent_self),
            (r"/v1/agent/services", "GET", self.list_agent_services),
            (r"/v1/agent/service/register", "PUT", self.agent_register),
            (r"/v1/agent/service/deregister/(.+)", "PUT", self.agent_deregister),
            (r"/v1/agent/service/([^/]+)", "GET", self.agent_service),
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
        out = [{"Node": AGENT_NODE, "Address": "127.0.0.1", "NodeMeta": {},
                "ServiceID": s["ID"], "ServiceName": s["Service"], "ServiceKind": s["Kind"],
                "ServicePort": s["Port"], "ServiceAddress": s["Address"],
                "ServiceTags": s["Tags"], "ServiceMeta": s["Meta"]}
               for s in self.agent_services.values() if s["Service"] == name]
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
        caller = self._caller(req) or {}
        visible = {sid: s for sid, s in self.agent_services.items()
                   if self._is_management(caller)
                   or self.allowed(caller, "service", "read", s.get("Service", sid))}
        return Reply.json(visible)

    def agent_deregister(self, req: Request, sid: str) -> Reply:
        if sid not in self.agent_services:
            return Reply.text(f'Unknown service ID "{sid}". Ensure that the service ID is '
                              "passed, not the service name.", 404)
        del self.agent_services[sid]
        self.agent_checks = {k: c for k, c in self.agent_checks.items()
                             if c["ServiceID"] != sid}
        return Reply.json(None)

    def agent_self(self, req: Request) -> Reply:
        return Reply.json({"Config": {"Datacenter": "dc1", "NodeName": AGENT_NODE,
                                      "NodeID": "8b1c4f2e-6d3a-4f0e-9b57-1a2b3c4d5e6f",
                                      "Version": "1.15.4"},
                           "Member": {"Name": AGENT_NODE, "Addr": "127.0.0.1"},
                           "XDS": {"Ports": {"Plaintext": 8502, "TLS": -1}}})

    def agent_register(self, req: Request) -> Reply:
        """`PUT /v1/agent/service/register` (api-docs/agent/service.mdx): Name required,
        ID defaults to it; a Check starts `critical` until the agent's probe passes."""
        body = _json_or_none(req)
        if not isinstance(body, dict):
            return Reply.text("Request decode failed", 400)
        name = body.get("Name") or ""
        if not name:
            return Reply.text("Invalid Service Meta: missing service name", 400)
        sid = body.get("ID") or name
        self.agent_services[sid] = {
            "ID": sid, "Service": name, "Kind": body.get("Kind", ""),
            "Port": body.get("Port", 0), "Address": body.get("Address", ""),
            "Tags": body.get("Tags") or [], "Meta": body.get("Meta") or {},
            "Proxy": body.get("Proxy") or {}, "Datacenter": "dc1"}
        checks = body.get("Checks") or ([body["Check"]] if body.get("Check") else [])
        for i, check in enumerate(checks):
            cid = check.get("CheckID") or f"service:{sid}" + (f":{i + 1}" if len(checks) > 1
                                                               else "")
            passing = self.pass_on_register
            self.agent_checks[cid] = {
                "Node": AGENT_NODE, "CheckID": cid, "Name": check.get("Name") or cid,
                "Status": "passing" if passing else "critical",
                "Output": "TCP connect: Success" if passing else
                          f"dial tcp {check.get('TCP', '')}: connect: connection refused",
                "ServiceID": sid, "ServiceName": name}
        return Reply.json(None)

    def mark_passing(self, service_id: str) -> None:
        """The agent's probe reached the service (Envoy listens): its checks pass."""
        for check in self.agent_checks.values():
            if check["ServiceID"] == service_id:
                check.update(Status="passing", Output="TCP connect: Success")

    def agent_service(self, req: Request, sid: str) -> Reply:
        service = self.agent_services.get(sid)
        if service is None:
            return Reply.text(f"unknown service ID: {sid}", 404)
        return Reply.json(service)

    def health_service(self, req: Request, name: str) -> Reply:
        out = []
        for service in self.agent_services.values():
            if service["Service"] != name:
                continue
            checks = [c for c in self.agent_checks.values() if c["ServiceID"] == service["ID"]]
            checks.insert(0, {"Node": AGENT_NODE, "CheckID": "serfHealth",
                              "Name": "Serf Health Status", "Status": "passing",
                              "Output": "Agent alive and reachable", "ServiceID": "",
                              "ServiceName": ""})
            if "passing" in req.query and any(c["Status"] != "passing" for c in checks):
                continue
            out.append({"Node": {"Node": AGENT_NODE, "Address": "127.0.0.1",
                                 "Datacenter": "dc1"},
                        "Service": service, "Checks": checks})
        return Reply.json(out)

    def gateway_services(self, req: Request, gateway: str) -> Reply:
        entry = self.config.get(("terminating-gateway", gateway))
        out = []
        for link in (entry or {}).get("Services") or []:
            item: dict[str, Any] = {"Gateway": {"Name": gateway},
                                    "Service": {"Name": link.get("Name")},
                                    "GatewayKind": "terminating-gateway",
                                    "CreateIndex": entry["CreateIndex"],
                                    "ModifyIndex": entry["ModifyIndex"]}
            for field in ("CAFile", "CertFile", "KeyFile", "SNI"):
                if link.get(field):
                    item[field] = link[field]
            caller = self._caller(req) or {}
            if self._is_management(caller) or self.allowed(caller, "service", "read",
                                                           str(link.get("Name"))):
                out.append(item)
        return Reply.json(out)

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

    def _kv_entry(self, key: str) -> dict[str, Any]:
        """One key as Consul's JSON has it (structs.DirEntry): Value is base64, null
        for an empty value (Go's nil []byte); Session only on a locked key."""
        value = self.kv[key]
        create, modify = self.kv_index.get(key, (1, 1))
        return {"LockIndex": 0, "Key": key, "Flags": 0,
                "Value": base64.b64encode(value).decode() if value else None,
                "CreateIndex": create, "ModifyIndex": modify}

    def kv_get(self, req: Request, key: str) -> Reply:
        if "recurse" in req.query:
            caller = self._caller(req) or {}
            keys = sorted(k for k in self.kv if k.startswith(key)
                          and (self._is_management(caller)
                               or self.allowed(caller, "key", "read", k)))
            if not keys:
                return Reply(404, b"", "text/plain")
            return Reply.json([self._kv_entry(k) for k in keys])
        value = self.kv.get(key)
        if value is None:
            return Reply(404, b"", "text/plain")
        if "raw" in req.query:
            return Reply(200, value, "text/plain; charset=utf-8")
        return Reply.json([self._kv_entry(key)])

    def kv_put(self, req: Request, key: str) -> Reply:
        if len(req.body) > 512 * 1024:
            return Reply.text("Value exceeds 524288 byte limit", 413)
        self.kv[key] = req.body
        index = next(self.index)
        self.kv_index[key] = (self.kv_index.get(key, (index, index))[0], index)
        return Reply.json(True)

    def kv_delete(self, req: Request, key: str) -> Reply:
        if "recurse" in req.query:
            for k in [k for k in self.kv if k.startswith(key)]:
                del self.kv[k]
                self.kv_index.pop(k, None)
        else:
            self.kv.pop(key, None)
            self.kv_index.pop(key, None)
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


def _parse_rules(rules: str) -> dict[str, Any]:
    """A policy's rules as a dict, from JSON or HCL (as Consul's acl.NewPolicyFromSource
    takes either)."""
    text = rules.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return json.loads(text)
    import hcl2

    return hcl2.loads(text)


def _entries(value: Any) -> dict[str, str]:
    """`{"name": {"policy": "read"}}`, or a list of such objects (the form the runbook's
    policies.json uses, and HCL blocks parse to) → name → policy."""
    out: dict[str, str] = {}
    for block in value if isinstance(value, list) else [value]:
        if isinstance(block, dict):
            for name, body in block.items():
                policy = body.get("policy") if isinstance(body, dict) else body
                out[str(name).strip('"')] = str(policy).strip('"')
    return out


def _lookup(rules: dict[str, Any], resource: str, name: str) -> int:
    """Access level for `resource` `name`: exact rule, else the longest prefix rule."""
    exact = _entries(rules.get(resource) or [])
    if name in exact:
        return ACCESS.get(exact[name], 0)
    prefixes = _entries(rules.get(f"{resource}_prefix") or [])
    matching = [p for p in prefixes if name.startswith(p)]
    if not matching:
        return 0
    return ACCESS.get(prefixes[max(matching, key=len)], 0)
