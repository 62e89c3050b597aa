"""The atmosphere steps, in runbook order; each names the host it runs on."""

from __future__ import annotations

import contextlib
import copy
import re
import secrets as _secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tui.clients.keystone import KeystoneClient
from tui.clients.wire import Request
from tui.commands import display
from tui.context import Context
from tui.errors import OperatorError
from tui.files import check_files, host_path, read_current, read_path
from tui.model import (
    ApiCall,
    CheckResult,
    Command,
    FileRemove,
    FileWrite,
    Manual,
    PlanItem,
    Remote,
    Status,
    Step,
    prompt_forms,
)
from tui.procedures.wire import api_call, execute_replanning
from tui.redact import register as register_secret
from tui.render import render
from tui.steps import ManualStep, template_values
from tui.words import plural

from . import audit as endpoint_audit
from . import osa
from .answers import PUBLIC_SERVICES, AtmosphereAnswers

OSA, ATMOSPHERE = "osa-deploy", "atmosphere"


PLAYBOOK_NAMES = "setup-infrastructure.yml, setup-openstack.yml"


def playbooks(a: AtmosphereAnswers) -> str:
    return ("then rerun `openstack-ansible setup-infrastructure.yml` and `openstack-ansible "
            f"setup-openstack.yml` from {a.osa_dir.rstrip('/')}/playbooks")


ADMIN_PASSWORD, ATMO_PASSWORD, PROVIDER_SECRET = (
    "os_admin_password", "atmo_admin_password", "provider_secret")
Ctx = Context[AtmosphereAnswers]



def read_host_file(path: str, ctx: Ctx) -> bytes | None:
    """A file on this host: staged under --root when it is there, else the real one
    (`render --out DIR` re-roots targets, not the files CloudRig reads)."""
    staged = read_current(FileWrite(path=path, content=""), ctx.root)
    if staged is not None or ctx.root is None:
        return staged
    return read_current(FileWrite(path=path, content=""), None)


# ---------------------------------------------------------------- 1. user_variables


def admin_uri(a: AtmosphereAnswers) -> str:
    """The runbook's keystone admin URI, its Ansible expressions kept for OSA."""
    return ("{{ keystone_service_adminuri_proto }}://" + a.cloud_fqdn
            + ":{{ keystone_admin_port }}")


def public_uris(a: AtmosphereAnswers) -> list[tuple[str, str]]:
    uris = []
    for service in a.public_services:
        variable, proto, port = PUBLIC_SERVICES[service]
        uris.append((variable, "{{ " + proto + " }}://" + a.cloud_fqdn + ":{{ " + port + " }}"))
    return uris


def osa_release(ctx: Ctx) -> osa.OsaRelease:
    """The OSA release the deployment host runs: the answer, else its checkout (read
    once per run; staged under --root when it is there)."""
    a = ctx.answers
    return ctx.shared("osa-release", lambda: osa.release(
        a.osa_release, a.osa_dir, lambda path: read_host_file(path, ctx)))


def haproxy_services(a: AtmosphereAnswers, rel: osa.OsaRelease, ctx: Ctx) -> list[Any]:
    """OSA 14's haproxy_default_services, whole, with keystone_admin changed as the
    runbook says (whitelist networks and haproxy_ssl) and nothing else. On later
    releases the settings file is only checked, when it is here (osa.py)."""
    where = a.osa_haproxy_config or f"{a.osa_dir.rstrip('/')}/{rel.haproxy_file}"
    entries = osa.haproxy_settings(rel, where, read_host_file(where, ctx))
    if rel.whitelist != "copy" or entries is None:
        return []
    entries = copy.deepcopy(entries)
    service = osa.keystone_admin(entries)
    assert service is not None  # haproxy_settings checked it
    service["haproxy_ssl"] = "{{ haproxy_ssl }}"
    service["haproxy_whitelist_networks"] = list(a.atmosphere_networks)
    return entries


class UserVariables(Step[AtmosphereAnswers]):
    id = "user-variables"
    renders = ("atmosphere/user_variables_atmosphere.yml.j2",)
    title = "OSA user_variables_atmosphere.yml"
    summary = ("TLS files, keystone admin URI over https, public URIs by name, and "
               "haproxy_default_services with keystone_admin opened to Atmosphere")
    host = OSA

    def path(self, a: AtmosphereAnswers) -> str:
        return f"{a.osa_config_dir}/user_variables_atmosphere.yml"

    def files(self, ctx: Ctx) -> list[FileWrite]:
        a = ctx.answers
        rel = osa_release(ctx)
        content = render("atmosphere/user_variables_atmosphere.yml.j2",
                         **template_values(a), admin_uri=admin_uri(a),
                         public_uris=public_uris(a), osa=rel,
                         haproxy_default_services=haproxy_services(a, rel, ctx))
        return [FileWrite(path=self.path(a), content=content,
                          description=f"OSA reads every user_*.yml in its config dir "
                                      f"({rel.name}, from {rel.source})")]

    def duplicates(self, ctx: Ctx, ours: FileWrite) -> list[str]:
        """Other user_*.yml files that define our keys (one of them will lose)."""
        a = ctx.answers
        keys = set(yaml.safe_load(ours.content))
        found = []
        directory = host_path(a.osa_config_dir, ctx.root)
        for other in sorted(directory.glob("user_*.yml")) if directory.is_dir() else []:
            if other.name == Path(ours.path).name:
                continue
            try:
                data = yaml.safe_load(other.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                continue
            same = sorted(keys & set(data if isinstance(data, dict) else {}))
            if same:
                found.append(f"{a.osa_config_dir}/{other.name} also defines "
                             f"{', '.join(same)}")
        return found

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        files = self.files(ctx)
        items: list[PlanItem] = list(files)
        for line in self.duplicates(ctx, files[0]):
            items.append(Manual(text=f"warning: {line}; remove them there so one value "
                                     "wins predictably"))
        rel = osa_release(ctx)
        if rel.whitelist == "none":
            items.append(Manual(text=(
                f"note: {rel.name} ({rel.source}) has no separate Keystone admin API "
                "(keystone_service on port 5000 serves it since OSA 19), so nothing is "
                "whitelisted and atmosphere_networks is not used")))
        if check_files(files, ctx.root).status is not Status.DONE:
            items.append(Manual(text=playbooks(ctx.answers)))
        return items

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """Only CloudRig's own user_variables_atmosphere.yml goes (the operator's
        user_variables.yml was never written); OSA forgets it on the next playbook run."""
        a = ctx.answers
        path = self.path(a)
        if not host_path(path, ctx.root).exists():
            return []
        return [FileRemove(path=path, description="CloudRig's own user_*.yml"),
                Manual(text=playbooks(a) + " so OSA drops the keystone admin https URI, the "
                            "public URIs by name and keystone_admin's haproxy whitelist "
                            "(TLS files and endpoints you changed by hand stay)")]

    def check(self, ctx: Ctx) -> CheckResult:
        files = self.files(ctx)
        result = check_files(files, ctx.root)
        duplicates = self.duplicates(ctx, files[0])
        if duplicates and result.status is Status.DONE:
            return CheckResult(status=Status.DRIFTED, detail="warning: " + duplicates[0])
        return result


# ---------------------------------------------------------------- 2. endpoint audit


def _admin(a: AtmosphereAnswers, password: str) -> KeystoneClient:
    return KeystoneClient(
        a.auth_url, username=a.os_admin_user, password=password,
        project=a.os_admin_project, user_domain=a.os_user_domain,
        project_domain=a.os_project_domain, project_domain_id=a.os_project_domain_id,
        ca_file=a.os_ca_file)


def _v3(a: AtmosphereAnswers) -> str:
    base = a.auth_url.rstrip("/")
    return base if base.endswith("/v3") else base + "/v3"


KEYSTONE: Remote[AtmosphereAnswers, KeystoneClient] = Remote(
    key="keystone", name="Keystone", secret=ADMIN_PASSWORD, client=_admin, base_url=_v3)
"""Keystone's v3 API, with a project-scoped admin token."""


class EndpointAudit(Step[AtmosphereAnswers]):
    id = "endpoint-audit"
    title = "Endpoint and TLS audit"
    summary = ("Every public endpoint and the keystone admin endpoint: https, a host name, "
               "answering, a certificate trusted for that name; days to expiry")

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {ADMIN_PASSWORD}

    def reports(self, ctx: Ctx) -> list[endpoint_audit.EndpointReport]:
        a = ctx.answers
        return endpoint_audit.audit(ctx.client(KEYSTONE).endpoints(), a.cloud_fqdn)

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        if not ctx.reads(KEYSTONE):
            return [KEYSTONE.placeholder(ctx, "GET", "/endpoints", "audit the service catalog")]
        reports = self.reports(ctx)
        items: list[PlanItem] = [ApiCall(
            method="GET", url=KEYSTONE.url(ctx.answers, "/endpoints"), changes_remote=False,
            description=endpoint_audit.summary(reports), execute=lambda: self.run(ctx))]
        strict = " (audit_strict: apply stops here)" if ctx.answers.audit_strict else ""
        for report in reports:
            for finding in report.findings:
                items.append(Manual(text=f"warning{strict}: {finding.sentence}; fix: "
                                         f"{finding.fix}"))
        return items

    def run(self, ctx: Ctx) -> None:
        reports = self.reports(ctx)
        findings = [f for r in reports for f in r.findings]
        for report in reports:
            if report.days_left is not None:
                ctx.emit(f"{report.label}: certificate valid for {report.days_left} more days")
        for finding in findings:
            ctx.emit(f"{finding.sentence}; fix: {finding.fix}", "warning")
        if findings and ctx.answers.audit_strict:
            raise OperatorError(f"the endpoint audit found {plural(len(findings), 'problem')} "
                                f"and audit_strict is on; first: {findings[0].sentence} (fix: "
                                f"{findings[0].fix})")

    def apply(self, ctx: Ctx) -> None:
        self.run(ctx)

    def check(self, ctx: Ctx) -> CheckResult:
        reports = self.reports(ctx)
        text = endpoint_audit.summary(reports)
        if any(r.findings for r in reports):
            return CheckResult(status=Status.DRIFTED, detail=f"warning: {text}")
        return CheckResult(status=Status.DONE, detail=text)


# ---------------------------------------------------------------- 3. keystone


# The descriptions CloudRig gives what it creates (shown in Keystone); what teardown
# --purge deletes is what the ownership record names (Context.created), by id.
PROJECT_MARK = "Atmosphere's admin project (CloudRig)"
USER_MARK = "Atmosphere's admin user (CloudRig)"
PROJECT, USER = "keystone-project", "keystone-user"


ATMOSPHERE_DOMAIN = "default"


def atmosphere_domain(ctx: Ctx) -> str:
    """The Keystone domain atmo_admin must live in: the one Atmosphere logs it in with.

    cyverse/atmosphere service/accounts/openstack_manager.py (tag v37-5) logs the
    provider's admin in with `project_domain_name` and `user_domain_name` 'default'
    (`_build_sdk_creds`) and, for its user manager, with cloud_config.user.domain
    (`_build_user_creds`); lookups use `domain_id: 'default'` too. So the account goes
    to Keystone's default domain (id `default`), whatever the admin's own domain is,
    and `domain` (written as cloud_config.user.domain) must name that same domain."""
    a = ctx.answers
    domain = ctx.client(KEYSTONE).find_domain(a.domain)
    if domain is None:
        raise OperatorError(f"Keystone has no domain {a.domain!r} (the answer domain, "
                            "written as cloud_config.user.domain); Atmosphere logs its admin "
                            "in with domain 'default': answer domain: default")
    if domain.get("id") != ATMOSPHERE_DOMAIN:
        raise OperatorError(
            f"domain {a.domain!r} is Keystone domain {domain.get('id')}, not the default "
            "domain: Atmosphere logs its admin in with user and project domain 'default' "
            "(service/accounts/openstack_manager.py), so atmo_admin must be there and "
            "cloud_config.user.domain must agree; answer domain: default")
    return ATMOSPHERE_DOMAIN


# What Keystone's bootstrap creates: `member` and `reader` from keystone 14.0.0 (Rocky,
# keystone/cmd/bootstrap.py), plus `manager` and `service` from 24.0.0; before 14 only
# the admin role, with `_member_` made on first use ([DEFAULT] member_role_name).
MEMBER_ROLES = ("member", "_member_")


def user_role(ctx: Ctx) -> str:
    """The role Atmosphere gives the users it creates: the answer, which must exist,
    else the member role this Keystone has (`member`, else the older `_member_`)."""
    a = ctx.answers

    def resolve() -> str:
        names = ctx.client(KEYSTONE).role_names()
        if a.user_role is not None:
            if a.user_role not in names:
                raise OperatorError(f"Keystone has no role named {a.user_role!r} (user_role); "
                                    f"it has {', '.join(names)}: answer one of them, or leave "
                                    "user_role empty to use the member role it has")
            return a.user_role
        for candidate in MEMBER_ROLES:
            if candidate in names:
                return candidate
        raise OperatorError(f"Keystone has neither a 'member' nor a '_member_' role (it has "
                            f"{', '.join(names)}); answer user_role with the role Atmosphere "
                            "should give its users")
    return ctx.shared("user-role", resolve)


class KeystoneAccount(Step[AtmosphereAnswers]):
    id = "keystone"
    title = "Keystone project, user and admin role"
    summary = ("Project and user atmo_admin in the default domain, role admin_role on that "
               "project: each only if absent; user_role checked")

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {ADMIN_PASSWORD, ATMO_PASSWORD}

    def _state(self, ctx: Ctx) -> dict[str, Any]:
        """What Keystone has, read with the admin's token only: no login as atmo_admin
        (on a Keystone with lockout_failure_attempts every failed one counts)."""
        a = ctx.answers
        client = ctx.client(KEYSTONE)
        domain = atmosphere_domain(ctx)
        role = client.find_role(a.admin_role)
        if role is None:
            raise OperatorError(f"Keystone has no role named {a.admin_role!r}; check "
                                "admin_role")
        user_role(ctx)
        project = client.find_project(a.atmo_admin, domain)
        user = client.find_user(a.atmo_admin, domain)
        granted = bool(project and user and client.has_role(project["id"], user["id"],
                                                             role["id"]))
        return {"domain": domain, "role": role["id"], "project": project and project["id"],
                "user": user and user["id"], "granted": granted,
                "enabled": bool(user and user.get("enabled", True) is not False)}

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        if not ctx.reads(KEYSTONE):
            return [KEYSTONE.placeholder(ctx, "POST", "/projects",
                                         f"create project {a.atmo_admin} if absent"),
                    KEYSTONE.placeholder(ctx, "POST", "/users",
                                         f"create user {a.atmo_admin} if absent"),
                    KEYSTONE.placeholder(ctx, "PUT", "/projects/…/users/…/roles/…",
                                         f"grant {a.admin_role} if not granted")]
        client = ctx.client(KEYSTONE)
        ids = self._state(ctx)
        name = a.atmo_admin
        # What this apply learnt of atmo_admin's password: True (set or verified),
        # False (the one login failed: set it next), absent (not tried yet).
        run: dict[str, bool] = ctx.shared("keystone-password", dict)
        password = ctx.secret(ATMO_PASSWORD)
        # An id a call earlier in this plan creates: apply plans again after each call
        # (execute_replanning), so the call is sent with the real id.
        project = ids["project"] or "{project}"
        items: list[PlanItem] = []
        if ids["project"] is None:
            create = client.create_project_request(name, ids["domain"], PROJECT_MARK)

            def create_project() -> None:
                ctx.create(PROJECT, name, lambda: client.send_json(create)["project"]["id"],
                           id_of=str)

            items.append(api_call(client, create, f"create project {name}", create_project))
        else:
            ctx.adopt(PROJECT, name, ids["project"])  # the one a killed run was creating
        if ids["user"] is not None:
            ctx.adopt(USER, name, ids["user"])
        if ids["user"] is None:
            made = client.create_user_request(name, ids["domain"], password, project,
                                              USER_MARK)

            def create_user() -> None:
                ctx.create(USER, name, lambda: client.send_json(made)["user"]["id"], id_of=str)
                run["verified"] = True

            items.append(api_call(client, made, f"create user {name} with "
                                                "atmo_admin_password", create_user))
        elif not ids["enabled"] or run.get("verified") is False:
            reset = client.set_password_request(ids["user"], password)

            def set_password() -> None:
                client.send(reset)
                if run.get("verified") is False:
                    ctx.emit(f"{name}'s password differed from atmo_admin_password; set it")
                run["verified"] = True

            why = ("the login with atmo_admin_password failed" if ids["enabled"]
                   else f"{name} is disabled")
            items.append(api_call(client, reset, f"enable {name} and set its password to "
                                                 f"atmo_admin_password ({why})", set_password))
        elif "verified" not in run:
            login = client.password_check_request(ids["user"], password)
            items.append(api_call(
                client, login, f"one login as {name} to verify atmo_admin_password; if it "
                               f"fails, PATCH /users/{ids['user']} sets it (and clears a "
                               "lockout)", lambda: self._verify_password(ctx, client, login)))
        if not ids["granted"]:
            items.append(api_call(
                client, client.assign_role_request(project, ids["user"] or "{user}",
                                                   ids["role"]),
                f"grant role {a.admin_role} to {name} on project {name}"))
        return items

    def apply(self, ctx: Ctx) -> None:
        execute_replanning(ctx, self.plan)

    def _verify_password(self, ctx: Ctx, client: KeystoneClient, login: Request) -> None:
        """At most one login as atmo_admin per apply; a failure makes the next plan set
        the password with the admin's token (which resets the failure count)."""
        run: dict[str, bool] = ctx.shared("keystone-password", dict)
        run["verified"] = client.password_works(login)

    def check(self, ctx: Ctx) -> CheckResult:
        a = ctx.answers
        ids = self._state(ctx)
        if ids["project"] is None or ids["user"] is None:
            return CheckResult(status=Status.PENDING,
                               detail=f"project or user {a.atmo_admin} missing")
        if not ids["granted"]:
            return CheckResult(status=Status.PENDING,
                               detail=f"{a.atmo_admin} lacks role {a.admin_role}")
        if not ids["enabled"]:
            return CheckResult(status=Status.DRIFTED, detail=f"{a.atmo_admin} is disabled")
        return CheckResult(status=Status.DONE,
                           detail=f"{a.atmo_admin} has {a.admin_role} on {a.atmo_admin} in "
                                  f"domain {ids['domain']} (its password is verified by "
                                  "apply, never by a check: no failed logins)")

    def undo_secrets(self, ctx: Ctx) -> set[str]:
        return {ADMIN_PASSWORD} if ctx.purge else set()  # nothing is removed without --purge

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """With --purge: revoke the grant, delete the user, delete the project — each only
        if CloudRig created it (its id is in the ownership record). Objects the operator
        made, even with CloudRig's description, are named with the command to remove
        them, never deleted. They are looked for in the default domain (where CloudRig
        creates them) and in the admin's domain (where versions before it did)."""
        if not ctx.purge:
            return []
        a = ctx.answers
        client = ctx.client(KEYSTONE)
        items: list[PlanItem] = []
        domains = dict.fromkeys([ATMOSPHERE_DOMAIN, client.domain_id(a.os_user_domain)])
        for domain in domains:
            items += self._undo_in(ctx, client, domain)
        return items

    def _undo_in(self, ctx: Ctx, client: KeystoneClient, domain: str) -> list[PlanItem]:
        a = ctx.answers
        project = client.find_project(a.atmo_admin, domain)
        user = client.find_user(a.atmo_admin, domain)
        ours_project = project is not None and ctx.adopt(PROJECT, a.atmo_admin, project["id"])
        ours_user = user is not None and ctx.adopt(USER, a.atmo_admin, user["id"])
        items: list[PlanItem] = []
        role = client.find_role(a.admin_role)
        if (project and user and role and (ours_project or ours_user)
                and client.has_role(project["id"], user["id"], role["id"])):
            pid, uid, rid = project["id"], user["id"], role["id"]
            items.append(api_call(client, client.revoke_role_request(pid, uid, rid),
                                  f"revoke {a.admin_role} from {a.atmo_admin} on "
                                  f"{a.atmo_admin}"))
        if user and ours_user:
            uid = user["id"]

            drop_user = client.delete_user_request(uid)

            def delete_user() -> None:
                client.send(drop_user)
                ctx.forget(USER, uid)

            items.append(api_call(client, drop_user, f"delete user {a.atmo_admin}",
                                  delete_user))
        if project and ours_project:
            pid = project["id"]

            drop_project = client.delete_project_request(pid)

            def delete_project() -> None:
                client.send(drop_project)
                ctx.forget(PROJECT, pid)

            items.append(api_call(client, drop_project, f"delete project {a.atmo_admin}",
                                  delete_project))
        for kind, found, ours in (("user", user, ours_user), ("project", project, ours_project)):
            if found and not ours:
                items.append(Manual(text=(
                    f"Keystone {kind} {a.atmo_admin} was not created by CloudRig (its "
                    f"ownership record does not name it), so it stays; to remove it: "
                    f"openstack {kind} delete --domain {domain} {a.atmo_admin}")))
        return items


# ---------------------------------------------------------------- 4. provider JSON


def provider_json_path(a: AtmosphereAnswers) -> str:
    return a.provider_json or f"/etc/cloudrig/atmosphere/{a.provider_name}.json"


def auth_root(url: str) -> str:
    """The runbook's credential.auth_url is scheme://host:port (no /v3)."""
    return re.sub(r"/v[23](\.0)?/?$", "", url.rstrip("/"))


def provider_secret(ctx: Ctx) -> str:
    """The provider secret: given, stored, or generated strongly and kept in the store."""
    if ctx.secrets.available(PROVIDER_SECRET):
        return ctx.secret(PROVIDER_SECRET)
    value = _secrets.token_urlsafe(36)  # 48 characters
    if ctx.dry_run:
        register_secret(value)
        return value
    where = ctx.secrets.remember(PROVIDER_SECRET, value)
    ctx.emit(f"generated provider_secret (48 characters), kept in the {where}")
    return value


def origin(url: str) -> tuple[str, str, int]:
    """scheme, host and port of a URL: what two endpoints must share to be the same."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def catalog_identity(ctx: Ctx) -> dict[str, str]:
    """interface → URL of the identity endpoints in region_name (Keystone's catalog,
    read once per run)."""
    a = ctx.answers
    endpoints = ctx.shared("catalog", lambda: ctx.client(KEYSTONE).endpoints())
    found: dict[str, str] = {}
    for e in endpoints:
        if (e.service_type == "identity" and e.enabled and e.region in (None, a.region_name)
                and e.interface not in found):
            found[e.interface] = e.url
    return found


def provider_urls(ctx: Ctx) -> tuple[str, str]:
    """credential.auth_url and admin_url of the provider JSON. Atmosphere authenticates
    with them (openstack_manager.py uses admin_url as OS_AUTH_URL), so they are taken
    from Keystone's catalog — the identity admin endpoint, or the public one on clouds
    without an admin interface (OSA 19 on) — or, when answered, checked against it.
    Without the admin password (no catalog) the answers are used as given."""
    a = ctx.answers
    given_admin = a.admin_url or (f"https://{a.cloud_fqdn}:{a.keystone_admin_port}"
                                  if a.keystone_admin_port else None)
    if not ctx.reads(KEYSTONE):
        if given_admin is None:
            raise OperatorError("admin_url comes from Keystone's catalog: give "
                                "os_admin_password, or answer admin_url")
        return auth_root(a.auth_url), auth_root(given_admin)
    catalog = catalog_identity(ctx)
    public = catalog.get("public")
    if public is None:
        raise OperatorError(f"Keystone's catalog has no public identity endpoint in region "
                            f"{a.region_name}; check region_name (`openstack endpoint list "
                            "--service identity`)")
    fix = (f"rerun the OSA playbooks if the endpoints are still to change ({PLAYBOOK_NAMES}), "
           "or correct the answer")
    if origin(public) != origin(a.auth_url):
        raise OperatorError(f"auth_url {a.auth_url} is not Keystone's public identity endpoint "
                            f"in {a.region_name} ({public}), and Atmosphere authenticates with "
                            f"it: {fix}")
    admin = catalog.get("admin") or public
    if given_admin is not None and origin(admin) != origin(given_admin):
        what = "admin_url" if a.admin_url else "https://cloud_fqdn:keystone_admin_port"
        raise OperatorError(f"{what} {given_admin} is not Keystone's identity "
                            f"{'admin' if 'admin' in catalog else 'public'} endpoint in "
                            f"{a.region_name} ({admin}), and Atmosphere authenticates with it: "
                            f"{fix}")
    return auth_root(a.auth_url), auth_root(given_admin or admin)


def needs_keystone(a: AtmosphereAnswers) -> bool:
    """Whether the provider JSON can only be written with Keystone at hand."""
    return a.user_role is None or not (a.admin_url or a.keystone_admin_port)


class ProviderJson(Step[AtmosphereAnswers]):
    id = "provider-json"
    renders = ("atmosphere/provider.json.j2",)
    title = "Provider JSON for add_new_provider.py"
    summary = ("Valid JSON (no comments), 0600: it holds atmo_admin's password and the secret; "
               "URLs and the user role from Keystone")
    host = ATMOSPHERE

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        given = {PROVIDER_SECRET} if ctx.secrets.available(PROVIDER_SECRET) else set()
        keystone_needed = {ADMIN_PASSWORD} if needs_keystone(ctx.answers) else set()
        return {ATMO_PASSWORD} | given | keystone_needed  # a given provider secret: ≥ 32

    def _writable(self, ctx: Ctx) -> bool:
        a = ctx.answers
        return ctx.secrets.available(ATMO_PASSWORD) and (
            ctx.reads(KEYSTONE) or not needs_keystone(a))

    def files(self, ctx: Ctx) -> list[FileWrite]:
        if not self._writable(ctx):
            return []  # nothing to write without them (`render` never asks for secrets)
        a = ctx.answers
        auth_url, admin_url = provider_urls(ctx)
        role = (user_role(ctx) if ctx.reads(KEYSTONE) else a.user_role)
        values = {**template_values(a), "admin_url": admin_url, "auth_root": auth_url,
                  "user_role": role}
        content = render("atmosphere/provider.json.j2", **values,
                         atmo_admin_password=ctx.secret(ATMO_PASSWORD),
                         provider_secret=provider_secret(ctx))
        return [FileWrite(path=provider_json_path(a), content=content, mode=0o600,
                          secret=True, dir_mode=0o700,
                          description="add_new_provider.py --from-json input")]

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        if not self._writable(ctx):
            path = provider_json_path(ctx.answers)
            return [Manual(text=f"{path} (0600) is written once atmo_admin_password and "
                                "os_admin_password are given (admin_url and user_role come "
                                "from Keystone unless answered): CLOUDRIG_SECRET_<NAME> or "
                                "`cloudrig secrets set <name>`")]
        return list(self.files(ctx))

    def check(self, ctx: Ctx) -> CheckResult:
        if not (self._writable(ctx) and ctx.secrets.available(PROVIDER_SECRET)):
            path = host_path(provider_json_path(ctx.answers), ctx.root)
            return CheckResult(status=Status.DONE if path.exists() else Status.PENDING,
                               detail=f"{provider_json_path(ctx.answers)} "
                                      f"{'present' if path.exists() else 'missing'}")
        return check_files(self.files(ctx), ctx.root)

    def undo_secrets(self, ctx: Ctx) -> set[str]:
        return set()  # removing the file needs no password

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        path = provider_json_path(ctx.answers)
        if not host_path(path, ctx.root).exists():
            return []
        return [FileRemove(path=path, description="it holds atmo_admin's password and the "
                                                  "provider secret")]


# ---------------------------------------------------------------- 5. DNS


class DnsRecords(Step[AtmosphereAnswers]):
    id = "dns"
    renders = ("atmosphere/zone-fragment.j2",)
    title = "DNS names for the floating IPs"
    summary = "A BIND zone fragment for the whole range; the check resolves every name"

    def path(self, a: AtmosphereAnswers) -> str:
        return f"{a.export_dir}/dns/{a.dns_zone}.zone-fragment"

    def files(self, ctx: Ctx) -> list[FileWrite]:
        a = ctx.answers
        suffix = "." + a.dns_zone
        records = [(name[: -len(suffix)], ip) for name, ip in a.hostnames()]
        return [FileWrite(path=self.path(a),
                          content=render("atmosphere/zone-fragment.j2", **template_values(a),
                                         records=records),
                          description=f"records to add to the zone {a.dns_zone}")]

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        return [*self.files(ctx),
                Manual(text=f"include {self.path(a)} in the zone {a.dns_zone} on its DNS "
                            "server (this step is probably optional: the runbook)")]

    def check(self, ctx: Ctx) -> CheckResult:
        from .dns import check_names  # deferred: start-up (dns)

        files = check_files(self.files(ctx), ctx.root)
        a = ctx.answers
        return CheckResult.worst([files, check_names(a.hostnames(), a.dns_server)])

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        path = self.path(a)
        if not host_path(path, ctx.root).exists():
            return []
        return [FileRemove(path=path, description="the zone fragment CloudRig wrote"),
                Manual(text=f"remove the records you added from {path} (vm names of "
                            f"{a.floating_ip_range}) from the zone {a.dns_zone} on its DNS "
                            "server, if you included them")]


# ---------------------------------------------------------------- 6. Atmosphere provider


def django(a: AtmosphereAnswers, *argv: str) -> list[str]:
    """A command in Atmosphere's environment, as the runbook's activate/export lines set
    it up, without a shell: `env` sets DJANGO_SETTINGS_MODULE and PYTHONPATH."""
    return ["env", "DJANGO_SETTINGS_MODULE=atmosphere.settings",
            f"PYTHONPATH={a.atmosphere_dir}", a.atmosphere_python, *argv]


LOOKUP = ("from core.models import Provider; "
          "p = Provider.objects.filter(location={name!r}).first(); "
          "print('PROVIDER_ID=%s' % (p.id if p else ''))")
DEACTIVATE = ("from django.utils import timezone; from core.models import Provider; "
              "print('deactivated %s' % Provider.objects.filter(location={name!r})"
              ".update(active=False, end_date=timezone.now()))")
MONITOR = ("from service.tasks.monitoring import monitor_machines_for, monitor_instances_for, "
           "monitor_sizes_for; monitor_sizes_for({id}); monitor_machines_for({id}); "
           "monitor_instances_for({id}); print('monitored provider {id}')")


def provider_prompts(name: str, platform: str) -> list[tuple[str, str]]:
    """What add_new_provider.py --from-json may still ask, as printed by its old and its
    current version (cyverse/atmosphere scripts/add_new_provider.py at 17-y-y-3, and
    since commit 6a5dcab4, tag 17-z-z, through v37-5; fixtures in
    tests/fixtures/atmosphere/). The name is in the JSON, so neither version asks it;
    its two wordings are here for a JSON written before CloudRig put it there. Any
    other prompt ends the step at once, quoted (tui.prompts)."""
    return [(prompt_forms("Name of new provider:",
                          "What is the name of your new provider? :"), name),
            (prompt_forms("Select a platform type ([1]/2):"), platform),  # 17-y-y only
            (prompt_forms("default_security_rules for provider: (Should be a list)"), ""),
            (prompt_forms("Does everything above look correct? [Yes]/No"), "Yes")]


# Both versions ask it only when the JSON's secret is under 32 characters.
SECRET_PROMPT = prompt_forms(
    "What secret would you like to use to create user accounts? (32 character minimum)")


def lookup_command(a: AtmosphereAnswers) -> Command:
    return Command(argv=django(a, f"{a.atmosphere_dir}/manage.py", "shell", "-c",
                               LOOKUP.format(name=a.provider_name)),
                   sets="PROVIDER_ID", changes_host=False, timeout=300,
                   description=f"the id of provider {a.provider_name} (parsed, not guessed)")


def provider_id(output: str) -> str | None:
    found = re.findall(r"^PROVIDER_ID=(\d*)\s*$", output, flags=re.M)
    return found[-1] if found and found[-1] else None


class Provider(Step[AtmosphereAnswers]):
    id = "provider"
    title = "Atmosphere provider, accounts and monitoring"
    summary = ("add_new_provider.py --from-json (prompts answered on a pseudo-terminal), "
               "add_new_accounts.py, monitor_*_for(provider id)")
    host = ATMOSPHERE

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {PROVIDER_SECRET} if ctx.secrets.available(PROVIDER_SECRET) else set()

    def commands(self, a: AtmosphereAnswers, known_id: str | None) -> list[Command]:
        pid = known_id or "${PROVIDER_ID}"
        platform = "2" if a.platform == "Xen" else "1"
        add = Command(
            argv=django(a, f"{a.atmosphere_dir}/scripts/add_new_provider.py", "--from-json",
                        provider_json_path(a)),
            pty_replies=provider_prompts(a.provider_name, platform),
            pty_answers=[(SECRET_PROMPT, PROVIDER_SECRET)],
            timeout=600, description=f"add provider {a.provider_name} (interactive mode is "
                                     "broken: --from-json, prompts answered)")
        accounts = Command(
            argv=django(a, f"{a.atmosphere_dir}/scripts/add_new_accounts.py", "--provider",
                        pid, "--users", ",".join(a.atmosphere_users)),
            timeout=600, description="give the users an identity on the new cloud")
        monitor = Command(
            argv=django(a, f"{a.atmosphere_dir}/manage.py", "shell", "-c",
                        MONITOR.format(id=pid)),
            timeout=1800, description="import the cloud's sizes, images and instances")
        return [add, lookup_command(a), accounts, monitor]

    def _existing(self, ctx: Ctx) -> str | None:
        result = ctx.runner.run(lookup_command(ctx.answers))
        return provider_id(result.stdout) if result.returncode == 0 else None

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        return list(self.commands(ctx.answers, None))

    def apply(self, ctx: Ctx) -> None:
        a = ctx.answers
        add, lookup, *_ = self.commands(a, None)
        if ctx.root is not None or ctx.dry_run:
            why = "dry run" if ctx.dry_run else "--root"
            for command in self.commands(a, None):
                ctx.emit(f"skipped ({why}): {' '.join(command.argv[3:5])} …", "item")
                if not ctx.dry_run:
                    ctx.skipped.append(why)
            return
        if self._existing(ctx) is None:
            provider_secret(ctx)  # generated now if it never was
            ctx.run(add)
        result = ctx.run(lookup)
        if result.skipped:
            return
        pid = provider_id(result.stdout)
        if pid is None:
            raise OperatorError(f"add_new_provider.py finished but no provider named "
                                f"{a.provider_name} exists; see its output in the log")
        ctx.emit(f"provider {a.provider_name} has id {pid}")
        for command in self.commands(a, pid)[2:]:
            ctx.run(command)

    def check(self, ctx: Ctx) -> CheckResult:
        a = ctx.answers
        if ctx.root is not None:
            return CheckResult(status=Status.STAGED, detail="not checked (staged under --root)")
        try:
            pid = self._existing(ctx)
        except OperatorError as exc:
            return CheckResult(status=Status.FAILED, detail=exc.sentence)
        if pid is None:
            return CheckResult(status=Status.PENDING, detail=f"no provider {a.provider_name}")
        return CheckResult(status=Status.DONE, detail=f"provider {a.provider_name} is id {pid}")

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """Atmosphere has no script to remove a provider and deleting its row would
        cascade into identities and instance history, so the operator end-dates it (it
        then shows "Offline"): shown, with the exact command, never run by CloudRig."""
        a = ctx.answers
        known = self.id in ctx.previous
        if ctx.root is None:
            # Atmosphere not answering from here: go by what apply recorded.
            with contextlib.suppress(OperatorError):
                known = self._existing(ctx) is not None
        if not known:
            return []
        command = display(django(a, f"{a.atmosphere_dir}/manage.py", "shell", "-c",
                                 DEACTIVATE.format(name=a.provider_name)))
        return [Manual(text=(
            f"Atmosphere has no command to remove provider {a.provider_name}; on the "
            f"Atmosphere server end-date it (it shows Offline, its history stays): {command}"))]


# ---------------------------------------------------------------- 7. allocation strategy


class AllocationStrategy(ManualStep[AtmosphereAnswers]):
    id = "allocation-strategy"
    title = "Allocation strategy"
    summary = ("In Django admin (no script or API in the runbook), confirmed with "
               "`cloudrig confirm atmosphere allocation-strategy`")

    def text(self, ctx: Ctx) -> str:
        a = ctx.answers
        return (f"Open {admin_base(a)}/admin/core/allocationstrategy/add/ as a staff user; "
                f"Provider: {a.provider_name}; Counting behavior: \"1 Month - Calendar "
                "Window\"; Refresh behaviors: \"First of the Month\"; Rules behaviors: "
                "\"Ignore non-active status\" and \"Multiply by Size CPU\"; Save. Then run "
                f"{self.confirm_hint(ctx)}.")

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        if self.id not in ctx.confirmations:
            return []  # never confirmed (or already torn down): nothing known to remove
        a = ctx.answers
        return [Manual(text=(
            f"In {admin_base(a)}/admin/core/allocationstrategy/ open the strategy whose "
            f"Provider is {a.provider_name}, press Delete and confirm (Django admin is the "
            "only way the runbook gives); teardown withdraws the step's confirmation."))]


def admin_base(a: AtmosphereAnswers) -> str:
    return (a.atmosphere_url or "https://<your atmosphere>").rstrip("/")


# ---------------------------------------------------------------- 8. atmosphere-ansible


BEGIN, END = "# BEGIN CloudRig atmosphere {name}", "# END CloudRig atmosphere {name}"


def remove_block(current: str, name: str) -> str:
    """`current` without CloudRig's block for provider `name` (and the blank line
    `merge_block` put before it); every other line is kept as it was."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    pattern = re.compile(r"(?:(?<=\n)\n)?" + re.escape(begin) + r".*?" + re.escape(end)
                         + r"\n?", re.S)
    return pattern.sub("", current, count=1)


def merge_block(current: str, block: str, name: str) -> str:
    """`current` with CloudRig's block for provider `name` replaced (or appended)."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(current):
        return pattern.sub(lambda _m: block, current, count=1)
    if current and not current.endswith("\n"):
        current += "\n"
    return current + ("\n" if current else "") + block


LEGACY_MARK = "# Written by CloudRig (procedure `atmosphere`)"


class AnsibleHosts(Step[AtmosphereAnswers]):
    id = "atmosphere-ansible"
    renders = ("atmosphere/hosts-block.j2", "atmosphere/group_vars.yml.j2")
    title = "atmosphere-ansible hosts and group_vars"
    summary = ("Every instance name with ansible_host in group atmosphere-<provider> under "
               "[atmosphere:children], and the group_vars atmosphere-ansible's roles read")
    host = ATMOSPHERE

    def group_vars(self, a: AtmosphereAnswers) -> str:
        return f"{a.atmosphere_ansible_dir}/ansible/group_vars/{a.ansible_group}"

    def legacy_group_vars(self, ctx: Ctx) -> str | None:
        """group_vars/<provider> as CloudRig named it before it followed upstream's
        `atmosphere-<provider>`, when CloudRig wrote it (its header says so)."""
        a = ctx.answers
        path = f"{a.atmosphere_ansible_dir}/ansible/group_vars/{a.provider_name}"
        data = read_host_file(path, ctx) if ctx.exporting_to is None else None
        return path if data is not None and data.startswith(b"---\n" + LEGACY_MARK.encode()) \
            else None

    def files(self, ctx: Ctx) -> list[FileWrite]:
        a = ctx.answers
        base = f"{a.atmosphere_ansible_dir}/ansible"
        hosts = f"{base}/hosts"
        block = render("atmosphere/hosts-block.j2", **template_values(a),
                       group=a.ansible_group, records=a.hostnames())
        current = (read_host_file(hosts, ctx) or b"").decode("utf-8", errors="replace")
        return [
            FileWrite(path=hosts, content=merge_block(current, block, a.provider_name),
                      description="instances of the provider (other entries kept)"),
            FileWrite(path=self.group_vars(a),
                      content=render("atmosphere/group_vars.yml.j2", **template_values(a),
                                     group=a.ansible_group),
                      description=f"variables of group {a.ansible_group}"),
        ]

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        if ctx.exporting_to is not None:
            return _exported_hosts_plan(self, ctx)
        items: list[PlanItem] = list(self.files(ctx))
        legacy = self.legacy_group_vars(ctx)
        if legacy:
            items.append(FileRemove(path=legacy, description="CloudRig's earlier name for "
                                                             "this group's variables"))
        return items

    def check(self, ctx: Ctx) -> CheckResult:
        result = check_files(self.files(ctx), ctx.root)
        legacy = self.legacy_group_vars(ctx)
        if legacy and result.status is Status.DONE:
            return CheckResult(status=Status.DRIFTED, detail=f"{legacy} (CloudRig's earlier "
                                                             "name) is still there")
        return result

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """CloudRig's hosts block goes (other entries kept; the file only if nothing else
        is in it); group_vars/atmosphere-<provider> goes if CloudRig created it, and is
        put back from its first backup if it replaced the operator's file (the ownership
        record)."""
        a = ctx.answers
        base = f"{a.atmosphere_ansible_dir}/ansible"
        items: list[PlanItem] = []
        current = (read_path(f"{base}/hosts", ctx.root) or b"").decode("utf-8", "replace")
        kept = remove_block(current, a.provider_name)
        if kept != current:
            items.append(FileWrite(path=f"{base}/hosts", content=kept,
                                   description=f"CloudRig's {a.provider_name} block removed, "
                                               "other entries kept")
                         if kept.strip() else
                         FileRemove(path=f"{base}/hosts",
                                    description="it held only CloudRig's block"))
        block = f"{base}/.cloudrig-{a.provider_name}.hosts"  # left by an exported merge
        if host_path(block, ctx.root).exists():
            items.append(FileRemove(path=block, description="CloudRig's exported hosts block"))
        group_vars = self.group_vars(a)
        target = host_path(group_vars, ctx.root)
        if target.exists():
            items.append(FileRemove(path=group_vars,
                                    description=f"variables of group {a.ansible_group}"))
        legacy = self.legacy_group_vars(ctx)
        if legacy:
            items.append(FileRemove(path=legacy, description="CloudRig's earlier name for "
                                                             "this group's variables"))
        return items


# Run on the Atmosphere server when the step is exported: merges the block file into
# ansible/hosts there (the same merge as `merge_block`), keeping every other line.
MERGE = (
    "import re, sys, os\n"
    "hosts, block_file, name = sys.argv[1:4]\n"
    "block = open(block_file).read()\n"
    "current = open(hosts).read() if os.path.exists(hosts) else ''\n"
    "begin, end = '# BEGIN CloudRig atmosphere ' + name, '# END CloudRig atmosphere ' + name\n"
    "pattern = re.compile(re.escape(begin) + r'.*?' + re.escape(end) + r'\\n?', re.S)\n"
    "if pattern.search(current):\n"
    "    new = pattern.sub(lambda m: block, current, count=1)\n"
    "else:\n"
    "    if current and not current.endswith('\\n'):\n"
    "        current += '\\n'\n"
    "    new = current + ('\\n' if current else '') + block\n"
    "if new != current:\n"
    "    tmp = hosts + '.cloudrig-tmp'\n"
    "    open(tmp, 'w').write(new)\n"
    "    os.replace(tmp, hosts)\n"
)


def _exported_hosts_plan(step: AnsibleHosts, ctx: Ctx) -> list[PlanItem]:
    """For another host: the block as its own file and a merge run there, so the
    operator's other inventory entries on that host are kept."""
    a = ctx.answers
    hosts, group_vars = step.files(ctx)
    block_path = f"{a.atmosphere_ansible_dir}/ansible/.cloudrig-{a.provider_name}.hosts"
    block = render("atmosphere/hosts-block.j2", **template_values(a), group=a.ansible_group,
                   records=a.hostnames())
    return [FileWrite(path=block_path, content=block, description="CloudRig's hosts block"),
            Command(argv=["python3", "-c", MERGE, hosts.path, block_path, a.provider_name],
                    description=f"merge the block into {hosts.path} (other entries kept)"),
            group_vars]


STEPS: tuple[Step, ...] = (
    UserVariables(), EndpointAudit(), KeystoneAccount(), ProviderJson(), DnsRecords(),
    Provider(), AllocationStrategy(), AnsibleHosts(),
)
