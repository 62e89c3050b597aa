"""A Keystone v3 identity API on 127.0.0.1, written from Keystone's api-ref.

What it does as Keystone does:
- `POST /v3/auth/tokens` (password method, user by name+domain or id, scope project
  by name+domain or id) answers 201 with the token in `X-Subject-Token` and the token
  body (roles, project, catalog unless `?nocatalog`); a wrong password answers 401
  with `WWW-Authenticate`; an unscoped token carries no roles;
- every other call needs `X-Auth-Token`: missing/unknown → 401; a token without the
  admin role → 403 "You are not authorized to perform the requested action: identity:…";
- `?name=` / `domain_id=` filters on domains, projects, users, roles;
- creating an existing name in a domain → 409 Conflict "Duplicate entry";
- role grants: `PUT …/roles/{id}` → 204, `HEAD` → 204 or 404, `DELETE` → 204 or 404,
  IDs only;
- `DELETE /v3/users/{id}` / `/v3/projects/{id}` → 204 (404 when unknown), and the
  role assignments of what was deleted go with it;
- `GET /v3/domains/{id}` → 200, 404 when unknown; `?name=` matches exactly;
- roles: what `keystone-manage bootstrap` creates — admin, manager, member, reader,
  service since keystone 24.0.0 (keystone/cmd/bootstrap.py; member and reader since
  14.0.0); there is no `_member_` (pass `roles=` for an older cloud);
- `[security_compliance] lockout_failure_attempts` (`lockout=N`): every login with a
  wrong password counts (`failed_logins`); at N the account is locked and even the
  right password answers 401 "The account is locked for user: <id>."; a PATCH with
  `enabled: true` clears the count (keystone/identity/backends/sql.py,
  sql_model.py `User.enabled`); a disabled user's login answers 401;
- errors are `{"error": {"code", "title", "message"}}`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fakes.server import FakeService, Reply, Request

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          409: "Conflict"}


def error(code: int, message: str) -> Reply:
    reply = Reply.json({"error": {"code": code, "title": TITLES[code], "message": message}},
                       code)
    if code == 401:
        reply.headers["WWW-Authenticate"] = 'Keystone uri="http://127.0.0.1"'
    return reply


def new_id() -> str:
    return uuid.uuid4().hex


BOOTSTRAP_ROLES = ("admin", "manager", "member", "reader", "service")


class FakeKeystone(FakeService):
    def __init__(self, admin_password: str = "devstacker",
                 roles: tuple[str, ...] = BOOTSTRAP_ROLES, lockout: int | None = None) -> None:
        super().__init__()
        self.lockout = lockout
        self.failed: dict[str, int] = {}  # user id → failed logins since the last reset
        self.failed_logins: list[str] = []  # every failed login, by user id
        self.domains = {"default": {"id": "default", "name": "Default", "enabled": True}}
        self.projects: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.passwords: dict[str, str] = {}
        self.roles: dict[str, dict[str, Any]] = {}
        self.grants: set[tuple[str, str, str]] = set()
        self.tokens: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        for name in roles:
            rid = new_id()
            self.roles[rid] = {"id": rid, "name": name, "domain_id": None}
        admin_project = self.add_project("admin")
        admin = self.add_user("admin", admin_password)
        self.grants.add((admin_project["id"], admin["id"], self.role_named("admin")["id"]))

    # ------------------------------------------------------------ records

    def add_domain(self, name: str) -> dict[str, Any]:
        did = new_id()
        self.domains[did] = {"id": did, "name": name, "enabled": True}
        return self.domains[did]

    def add_project(self, name: str, domain_id: str = "default") -> dict[str, Any]:
        pid = new_id()
        self.projects[pid] = {"id": pid, "name": name, "domain_id": domain_id,
                              "description": "", "enabled": True, "is_domain": False,
                              "parent_id": domain_id, "tags": []}
        return self.projects[pid]

    def add_user(self, name: str, password: str, domain_id: str = "default") -> dict[str, Any]:
        uid = new_id()
        self.users[uid] = {"id": uid, "name": name, "domain_id": domain_id, "enabled": True}
        self.passwords[uid] = password
        return self.users[uid]

    def role_named(self, name: str) -> dict[str, Any]:
        return next(r for r in self.roles.values() if r["name"] == name)

    def project_named(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.projects.values() if p["name"] == name), None)

    def user_named(self, name: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["name"] == name), None)

    def add_endpoint(self, service: str, kind: str, interface: str, url: str) -> dict[str, Any]:
        existing = next((s for s in self.services.values() if s["name"] == service), None)
        if existing is None:
            sid = new_id()
            existing = self.services[sid] = {"id": sid, "name": service, "type": kind,
                                             "enabled": True}
        eid = new_id()
        self.endpoints[eid] = {"id": eid, "interface": interface, "url": url,
                               "region": "RegionOne", "region_id": "RegionOne",
                               "service_id": existing["id"], "enabled": True}
        return self.endpoints[eid]

    def catalog(self) -> list[dict[str, Any]]:
        return [{"id": s["id"], "name": s["name"], "type": s["type"],
                 "endpoints": [{"id": e["id"], "interface": e["interface"], "url": e["url"],
                                "region": e["region"], "region_id": e["region_id"]}
                               for e in self.endpoints.values() if e["service_id"] == s["id"]]}
                for s in self.services.values()]

    # ------------------------------------------------------------ routing

    def handle(self, req: Request) -> Reply:
        path = req.path.rstrip("/")
        if path == "/v3/auth/tokens" and req.method == "POST":
            return self.issue_token(req)
        token = self.tokens.get(req.headers.get("x-auth-token", ""))
        if token is None:
            return error(401, "The request you have made requires authentication.")
        for pattern, method, handler, action in self.routes():
            match = re.fullmatch(pattern, path)
            if match and req.method == method:
                if not any(r["name"] == "admin" for r in token["roles"]):
                    return error(403, "You are not authorized to perform the requested "
                                      f"action: identity:{action}.")
                return handler(req, *match.groups())
        return error(404, f"Could not find {path}.")

    def routes(self) -> list[tuple[str, str, Any, str]]:
        grant = r"/v3/projects/([^/]+)/users/([^/]+)/roles/([^/]+)"
        return [
            (r"/v3/domains", "GET", self.list_of(self.domains, "domains"), "list_domains"),
            (r"/v3/domains/([^/]+)", "GET", self.get_domain, "get_domain"),
            (r"/v3/projects", "GET", self.list_of(self.projects, "projects"), "list_projects"),
            (r"/v3/projects", "POST", self.create_project, "create_project"),
            (r"/v3/users", "GET", self.list_of(self.users, "users"), "list_users"),
            (r"/v3/users", "POST", self.create_user, "create_user"),
            (r"/v3/users/([^/]+)", "PATCH", self.update_user, "update_user"),
            (r"/v3/users/([^/]+)", "DELETE", self.delete_user, "delete_user"),
            (r"/v3/projects/([^/]+)", "DELETE", self.delete_project, "delete_project"),
            (r"/v3/roles", "GET", self.list_of(self.roles, "roles"), "list_roles"),
            (grant, "HEAD", self.check_grant, "check_grant"),
            (grant, "PUT", self.create_grant, "create_grant"),
            (grant, "DELETE", self.revoke_grant, "revoke_grant"),
            (r"/v3/services", "GET", self.list_of(self.services, "services"), "list_services"),
            (r"/v3/endpoints", "GET", self.list_of(self.endpoints, "endpoints"),
             "list_endpoints"),
            (r"/v3/auth/catalog", "GET", lambda req: Reply.json({"catalog": self.catalog()}),
             "get_catalog"),
        ]

    # ------------------------------------------------------------ handlers

    def issue_token(self, req: Request) -> Reply:
        try:
            auth = req.json()["auth"]
            user_ref = auth["identity"]["password"]["user"]
            password = user_ref["password"]
        except (KeyError, TypeError, ValueError):
            return error(400, "Expecting to find identity in auth. The server could not "
                              "comply with the request since it is either malformed or "
                              "otherwise incorrect.")
        if "id" in user_ref:
            user = self.users.get(user_ref["id"])
        else:
            if "domain" not in user_ref:
                return error(400, "Expecting to find domain in user.")
            domain = self._domain(user_ref["domain"])
            user = next((u for u in self.users.values() if u["name"] == user_ref.get("name")
                         and domain and u["domain_id"] == domain["id"]), None)
        if user is None:
            return error(401, "The request you have made requires authentication.")
        if self.lockout and self.failed.get(user["id"], 0) >= self.lockout:
            return error(401, f"The account is locked for user: {user['id']}.")
        if self.passwords.get(user["id"]) != password:
            self.failed[user["id"]] = self.failed.get(user["id"], 0) + 1
            self.failed_logins.append(user["id"])
            return error(401, "The request you have made requires authentication.")
        if not user.get("enabled", True):
            return error(401, f"The account is disabled for user: {user['id']}.")
        self.failed.pop(user["id"], None)
        scope = auth.get("scope") or {}
        roles: list[dict[str, str]] = []
        project = None
        if "project" in scope:
            ref = scope["project"]
            if "id" in ref:
                project = self.projects.get(ref["id"])
            else:
                domain = self._domain(ref.get("domain") or {})
                project = next((p for p in self.projects.values()
                                if p["name"] == ref.get("name") and domain
                                and p["domain_id"] == domain["id"]), None)
            if project is None:
                return error(401, "The request you have made requires authentication.")
            roles = [{"id": r, "name": self.roles[r]["name"]} for (p, u, r) in self.grants
                     if p == project["id"] and u == user["id"]]
            if not roles:
                return error(401, "The request you have made requires authentication.")
        token_id = "gAAAAA" + new_id()
        body: dict[str, Any] = {
            "methods": ["password"], "roles": roles, "expires_at": "2099-01-01T00:00:00Z",
            "user": {"id": user["id"], "name": user["name"],
                     "domain": {"id": user["domain_id"]}},
            "audit_ids": [new_id()[:22]], "issued_at": "2026-11-22T00:00:00Z"}
        if project is not None:
            body["project"] = {"id": project["id"], "name": project["name"],
                               "domain": {"id": project["domain_id"]}}
            if "nocatalog" not in req.query:
                body["catalog"] = self.catalog()
        self.tokens[token_id] = body
        reply = Reply.json({"token": body}, 201)
        reply.headers["X-Subject-Token"] = token_id
        return reply

    def _domain(self, ref: dict[str, Any]) -> dict[str, Any] | None:
        if "id" in ref:
            return self.domains.get(ref["id"])
        return next((d for d in self.domains.values() if d["name"] == ref.get("name")), None)

    def list_of(self, table: dict[str, dict[str, Any]], key: str) -> Any:
        def handler(req: Request) -> Reply:
            items = list(table.values())
            for field in ("name", "domain_id", "interface", "service_id", "type"):
                wanted = req.arg(field)
                if wanted is not None:
                    items = [i for i in items if i.get(field) == wanted]
            return Reply.json({key: items, "links": {"self": req.path, "next": None,
                                                     "previous": None}})
        return handler

    def create_project(self, req: Request) -> Reply:
        data = (req.json() or {}).get("project") or {}
        name, domain_id = data.get("name"), data.get("domain_id", "default")
        if not name:
            return error(400, "Invalid input for field 'name': None is not of type 'string'")
        if any(p["name"] == name and p["domain_id"] == domain_id
               for p in self.projects.values()):
            return error(409, "Conflict occurred attempting to store project - Duplicate "
                              f"entry found with name {name} at domain ID {domain_id}.")
        project = self.add_project(name, domain_id)
        project["description"] = data.get("description", "")
        return Reply.json({"project": project}, 201)

    def create_user(self, req: Request) -> Reply:
        data = (req.json() or {}).get("user") or {}
        name, domain_id = data.get("name"), data.get("domain_id", "default")
        if not name:
            return error(400, "Invalid input for field 'name': None is not of type 'string'")
        if any(u["name"] == name and u["domain_id"] == domain_id for u in self.users.values()):
            return error(409, "Conflict occurred attempting to store user - Duplicate entry "
                              f"found with name {name} at domain ID {domain_id}.")
        user = self.add_user(name, data.get("password") or "", domain_id)
        if data.get("default_project_id"):
            user["default_project_id"] = data["default_project_id"]
        if "description" in data:
            user["description"] = data["description"]
        return Reply.json({"user": user}, 201)

    def update_user(self, req: Request, user_id: str) -> Reply:
        user = self.users.get(user_id)
        if user is None:
            return error(404, f"Could not find user: {user_id}.")
        data = (req.json() or {}).get("user") or {}
        if "password" in data:
            self.passwords[user_id] = data["password"]
        if "enabled" in data:
            user["enabled"] = bool(data["enabled"])
            if user["enabled"]:
                self.failed.pop(user_id, None)
        return Reply.json({"user": user})

    def get_domain(self, req: Request, domain_id: str) -> Reply:
        domain = self.domains.get(domain_id)
        if domain is None:
            return error(404, f"Could not find domain: {domain_id}.")
        return Reply.json({"domain": domain})

    def _grant_refs(self, project: str, user: str, role: str) -> Reply | None:
        for table, kind, ref in ((self.projects, "project", project),
                                 (self.users, "user", user), (self.roles, "role", role)):
            if ref not in table:
                return error(404, f"Could not find {kind}: {ref}.")
        return None

    def check_grant(self, req: Request, project: str, user: str, role: str) -> Reply:
        missing = self._grant_refs(project, user, role)
        if missing:
            return missing
        if (project, user, role) in self.grants:
            return Reply(204)
        return error(404, f"Could not find role assignment with role: {role}, user or group: "
                          f"{user}, project, domain, or system: {project}.")

    def create_grant(self, req: Request, project: str, user: str, role: str) -> Reply:
        missing = self._grant_refs(project, user, role)
        if missing:
            return missing
        self.grants.add((project, user, role))
        return Reply(204)

    def revoke_grant(self, req: Request, project: str, user: str, role: str) -> Reply:
        missing = self._grant_refs(project, user, role)
        if missing:
            return missing
        if (project, user, role) not in self.grants:
            return error(404, f"Could not find role assignment with role: {role}, user or "
                              f"group: {user}, project, domain, or system: {project}.")
        self.grants.discard((project, user, role))
        return Reply(204)

    def delete_user(self, req: Request, user_id: str) -> Reply:
        if self.users.pop(user_id, None) is None:
            return error(404, f"Could not find user: {user_id}.")
        self.passwords.pop(user_id, None)
        self.grants = {g for g in self.grants if g[1] != user_id}
        return Reply(204)

    def delete_project(self, req: Request, project_id: str) -> Reply:
        if self.projects.pop(project_id, None) is None:
            return error(404, f"Could not find project: {project_id}.")
        self.grants = {g for g in self.grants if g[0] != project_id}
        return Reply(204)

    def dump(self) -> str:
        return json.dumps({"projects": self.projects, "users": self.users}, indent=1)
