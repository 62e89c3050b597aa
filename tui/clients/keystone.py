"""OpenStack Keystone v3 client: a project-scoped token, projects, users, roles, catalog.

Written from Keystone's api-ref (v3 authenticate, projects, users, roles, endpoints):
- `POST /v3/auth/tokens` answers 201 and the token is the `X-Subject-Token` *header*;
  it is scoped to a project (an unscoped token has no roles, so admin calls 403);
  the user is named with its domain;
- names are looked up with `?name=` (and `domain_id=`) before anything is created,
  because a create of an existing name answers 409;
- a role is granted with `PUT /v3/projects/{p}/users/{u}/roles/{r}` on IDs (204),
  tested with `HEAD` on the same URL (204 granted, 404 not) and revoked with `DELETE`
  (204); `DELETE /v3/users/{id}` and `/v3/projects/{id}` answer 204;
- errors are `{"error": {"code", "title", "message"}}`: the message is what the
  operator reads;
- a failed password login counts against the user when `[security_compliance]
  lockout_failure_attempts` is set (keystone/identity/backends/sql.py
  `_record_failed_auth`, `_is_account_locked`), and setting `enabled: true` clears the
  count (sql_model.py `User.enabled` setter): CloudRig logs in as anyone but the admin
  at most once per apply, never in a check.
POSTs are never retried (a retried create could create twice); the token request
is retried, since it creates nothing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel

from tui.clients.wire import Request
from tui.http import ApiClient, RemoteError, json_body, make_client, request
from tui.redact import register


class Endpoint(BaseModel):
    """One catalog endpoint joined with its service."""

    id: str
    interface: str
    url: str
    region: str | None = None
    service_id: str
    service_name: str = ""
    service_type: str = ""
    enabled: bool = True


def keystone_error(exc: RemoteError, what: str) -> RemoteError:
    """Keystone's own `error.message`, in a sentence that says what was being done."""
    message = ""
    try:
        error = json.loads(exc.body).get("error") or {}
        message = f"{error.get('code')} {error.get('title')}: {error.get('message')}"
    except (ValueError, AttributeError, TypeError):
        message = f"{exc.status}"
    if exc.status is None:
        return exc
    advice = {
        401: "check os_admin_user, os_user_domain and os_admin_password",
        403: "the admin user needs the admin role on os_admin_project",
        404: "check auth_url (it must end with /v3)",
        409: "it already exists; rerun to pick it up",
        429: "Keystone is rate limiting; wait and rerun",
    }.get(exc.status, "check Keystone's log and rerun")
    at = f" ({exc.where})" if exc.where else ""
    return RemoteError(f"Keystone refused to {what} ({message}){at}; {advice}",
                       status=exc.status, body=exc.body, where=exc.where)


class KeystoneClient(ApiClient):
    def __init__(self, auth_url: str, *, username: str, password: str, project: str,
                 user_domain: str, project_domain: str | None = None,
                 project_domain_id: str | None = None,
                 ca_file: str | None = None, transport: httpx.BaseTransport | None = None,
                 backoff: float = 0.25) -> None:
        self.auth_url = auth_url.rstrip("/")
        if not self.auth_url.endswith("/v3"):
            self.auth_url += "/v3"
        self.http = make_client(self.auth_url, ca_file=ca_file, transport=transport,
                                backoff=backoff)
        # The project's domain: by id (OS_PROJECT_DOMAIN_ID), else by name
        # (OS_PROJECT_DOMAIN_NAME), else the user's, as python-openstackclient does.
        self._project_domain = ({"id": project_domain_id} if project_domain_id else
                                {"name": project_domain or user_domain})
        self._credentials = (username, password, project, user_domain)
        self.token_data: dict[str, Any] | None = None

    # ------------------------------------------------------------ auth

    def authenticate(self) -> dict[str, Any]:
        """A project-scoped token; kept as the client's X-Auth-Token."""
        username, password, project, user_domain = self._credentials
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "domain": {"name": user_domain}, "password": password}}},
            "scope": {"project": {"name": project, "domain": self._project_domain}}}}
        try:
            response = request(self.http, "POST", "auth/tokens", json=body, ok=(201,),
                               extensions={"idempotent": True})
        except RemoteError as exc:
            raise keystone_error(exc, f"issue a token for {username} on project {project} "
                                      f"at {self.auth_url}") from None
        token = response.headers.get("X-Subject-Token")
        if not token:
            raise RemoteError(f"{self.auth_url}/auth/tokens answered 201 without an "
                              "X-Subject-Token header; check that auth_url is Keystone v3")

        register(token)
        self.http.headers["X-Auth-Token"] = token
        self.token_data = json_body(response).get("token") or {}
        return self.token_data

    def _ensure_token(self) -> None:
        if self.token_data is None:
            self.authenticate()

    def _call(self, method: str, path: str, what: str, ok: tuple[int, ...] = (200,),
              **kwargs: Any) -> httpx.Response:
        self._ensure_token()
        try:
            return request(self.http, method, path, ok=ok, **kwargs)
        except RemoteError as exc:
            raise keystone_error(exc, what) from None

    def url_of(self, req: Request) -> str:
        return f"{self.auth_url}/{req.target()}"

    def send(self, req: Request) -> httpx.Response:
        """Send a built request exactly as it is, with the admin's token."""
        return self._call(req.method, req.path, req.what or f"{req.method} {req.path}",
                          **req.httpx_kwargs())

    def send_json(self, req: Request) -> Any:
        return json_body(self.send(req))

    @staticmethod
    def password_check_request(user_id: str, password: str) -> Request:
        """An unscoped login as the user (it works before any role is granted), sent
        without the admin's token."""
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": user_id, "password": password}}}}}
        return Request("POST", "auth/tokens", json=body, headers={"X-Auth-Token": ""},
                       ok=(201,), retry=False, what="log in as the user")

    def password_works(self, req: Request) -> bool:
        """Whether the login `password_check_request` built gets a token. A failure
        counts towards Keystone's lockout, so this is for apply only, once, never for a
        check."""
        kwargs = req.httpx_kwargs()
        kwargs.pop("ok")
        try:
            response = self.http.request(req.method, req.path, **kwargs)
        except httpx.HTTPError:
            return False
        return response.status_code == 201

    # ------------------------------------------------------------ lookups

    def _one(self, path: str, key: str, what: str, **params: str) -> dict[str, Any] | None:
        items = json_body(self._call("GET", path, what, params=params)).get(key) or []
        return items[0] if items else None

    def domain_id(self, name: str) -> str:
        """The ID of a domain by name (`Default` → `default` on most clouds)."""
        domain = self._one("domains", "domains", f"look up domain {name}", name=name)
        if domain is None:
            raise RemoteError(f"Keystone at {self.auth_url} has no domain named {name!r}; "
                              "check os_user_domain")
        return str(domain["id"])

    def find_domain(self, ref: str) -> dict[str, Any] | None:
        """A domain by ID (`GET /v3/domains/{id}`), else by name: Atmosphere names its
        domain `default`, which is the ID of Keystone's default domain (named Default)."""
        response = self._call("GET", f"domains/{quote(ref, safe='')}", f"look up domain {ref}",
                              ok=(200, 404))
        if response.status_code == 200:
            return json_body(response).get("domain")
        return self._one("domains", "domains", f"look up domain {ref}", name=ref)

    def role_names(self) -> list[str]:
        return sorted(str(r.get("name")) for r in json_body(
            self._call("GET", "roles", "list roles")).get("roles") or [])

    def find_project(self, name: str, domain_id: str) -> dict[str, Any] | None:
        return self._one("projects", "projects", f"look up project {name}", name=name,
                         domain_id=domain_id)

    def find_user(self, name: str, domain_id: str) -> dict[str, Any] | None:
        return self._one("users", "users", f"look up user {name}", name=name,
                         domain_id=domain_id)

    def find_role(self, name: str) -> dict[str, Any] | None:
        return self._one("roles", "roles", f"look up role {name}", name=name)

    def has_role(self, project_id: str, user_id: str, role_id: str) -> bool:
        path = f"projects/{project_id}/users/{user_id}/roles/{role_id}"
        return self._call("HEAD", path, "check a role assignment",
                          ok=(200, 204, 404)).status_code != 404

    # ------------------------------------------------------------ changes

    @staticmethod
    def create_project_request(name: str, domain_id: str, description: str) -> Request:
        body = {"project": {"name": name, "domain_id": domain_id, "description": description,
                            "enabled": True}}
        return Request("POST", "projects", json=body, ok=(201,), retry=False,
                       what=f"create project {name}")

    def create_project(self, name: str, domain_id: str, description: str) -> dict[str, Any]:
        return self.send_json(self.create_project_request(name, domain_id,
                                                          description))["project"]

    @staticmethod
    def create_user_request(name: str, domain_id: str, password: str,
                            default_project_id: str, description: str = "") -> Request:
        body = {"user": {"name": name, "domain_id": domain_id, "password": password,
                         "default_project_id": default_project_id, "enabled": True,
                         "description": description}}
        return Request("POST", "users", json=body, ok=(201,), retry=False,
                       what=f"create user {name}")

    def create_user(self, name: str, domain_id: str, password: str,
                    default_project_id: str, description: str = "") -> dict[str, Any]:
        return self.send_json(self.create_user_request(
            name, domain_id, password, default_project_id, description))["user"]

    @staticmethod
    def set_password_request(user_id: str, password: str) -> Request:
        """The password, and `enabled: true`, which also clears a lockout's failure
        count (a locked account stays locked through a password change alone)."""
        body = {"user": {"password": password, "enabled": True}}
        return Request("PATCH", f"users/{user_id}", json=body,
                       what="update the user's password")

    def set_password(self, user_id: str, password: str) -> None:
        self.send(self.set_password_request(user_id, password))

    @staticmethod
    def assign_role_request(project_id: str, user_id: str, role_id: str) -> Request:
        return Request("PUT", f"projects/{project_id}/users/{user_id}/roles/{role_id}",
                       ok=(204,), what="grant the role")

    def assign_role(self, project_id: str, user_id: str, role_id: str) -> None:
        self.send(self.assign_role_request(project_id, user_id, role_id))

    # DELETEs are idempotent: 404 means it is already gone, which is what was asked.

    @staticmethod
    def revoke_role_request(project_id: str, user_id: str, role_id: str) -> Request:
        return Request("DELETE", f"projects/{project_id}/users/{user_id}/roles/{role_id}",
                       ok=(204, 404), what="revoke the role")

    def revoke_role(self, project_id: str, user_id: str, role_id: str) -> None:
        self.send(self.revoke_role_request(project_id, user_id, role_id))

    @staticmethod
    def delete_user_request(user_id: str) -> Request:
        return Request("DELETE", f"users/{user_id}", ok=(204, 404), what="delete the user")

    def delete_user(self, user_id: str) -> None:
        self.send(self.delete_user_request(user_id))

    @staticmethod
    def delete_project_request(project_id: str) -> Request:
        return Request("DELETE", f"projects/{project_id}", ok=(204, 404),
                       what="delete the project")

    def delete_project(self, project_id: str) -> None:
        self.send(self.delete_project_request(project_id))

    # ------------------------------------------------------------ catalog

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint with its service's name and type."""
        services = {s["id"]: s for s in json_body(
            self._call("GET", "services", "list services")).get("services") or []}
        found = []
        for e in json_body(self._call("GET", "endpoints", "list endpoints")).get(
                "endpoints") or []:
            service = services.get(e.get("service_id"), {})
            found.append(Endpoint(id=e["id"], interface=e.get("interface", ""), url=e["url"],
                                  region=e.get("region_id") or e.get("region"),
                                  service_id=e.get("service_id", ""),
                                  service_name=service.get("name", ""),
                                  service_type=service.get("type", ""),
                                  enabled=e.get("enabled", True)))
        return found


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""
