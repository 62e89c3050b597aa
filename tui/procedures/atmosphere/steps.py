"""The atmosphere steps, in runbook order; each names the host it runs on."""

from __future__ import annotations

import contextlib
import copy
import re
import secrets as _secrets
from pathlib import Path
from typing import Any

import yaml

from tui.clients.keystone import KeystoneClient
from tui.commands import display
from tui.errors import OperatorError
from tui.files import check_files, host_path, read_current
from tui.procedure import (
    ApiCall,
    CheckResult,
    Command,
    Context,
    FileRemove,
    FileWrite,
    Manual,
    PlanItem,
    Status,
    Step,
)
from tui.redact import MASK
from tui.redact import register as register_secret
from tui.render import render
from tui.steps import ManualStep, template_values
from tui.words import plural

from . import audit as endpoint_audit
from .answers import PUBLIC_SERVICES, AtmosphereAnswers

OSA, ATMOSPHERE = "osa-deploy", "atmosphere"
PLAYBOOKS = ("then rerun `openstack-ansible setup-infrastructure.yml` and `openstack-ansible "
             "setup-openstack.yml` from /opt/openstack-ansible/playbooks")
ADMIN_PASSWORD, ATMO_PASSWORD, PROVIDER_SECRET = (
    "os_admin_password", "atmo_admin_password", "provider_secret")


def answers(ctx: Context) -> AtmosphereAnswers:
    assert isinstance(ctx.answers, AtmosphereAnswers)
    return ctx.answers


def read_host_file(path: str, ctx: Context) -> bytes | None:
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


def haproxy_services(a: AtmosphereAnswers, source: bytes | None) -> list[Any]:
    """OSA's haproxy_default_services, whole, with keystone_admin changed as the
    runbook says (whitelist networks and haproxy_ssl) and nothing else."""
    where = a.osa_haproxy_config
    if source is None:
        raise OperatorError(f"{where} does not exist here; CloudRig copies "
                            "haproxy_default_services from it. Run on the OSA deployment "
                            "host or set osa_haproxy_config")
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise OperatorError(f"{where} is not valid YAML ({exc})") from None
    services = data.get("haproxy_default_services") if isinstance(data, dict) else None
    if not isinstance(services, list):
        raise OperatorError(f"{where} has no haproxy_default_services list; check the path "
                            "(playbooks/vars/configs/haproxy_config.yml in openstack-ansible)")
    services = copy.deepcopy(services)
    for entry in services:
        service = entry.get("service") if isinstance(entry, dict) else None
        if isinstance(service, dict) and service.get("haproxy_service_name") == "keystone_admin":
            service["haproxy_ssl"] = "{{ haproxy_ssl }}"
            service["haproxy_whitelist_networks"] = list(a.atmosphere_networks)
            return services
    raise OperatorError(f"{where} has no keystone_admin service in haproxy_default_services")


class UserVariables(Step):
    id = "user-variables"
    title = "OSA user_variables_atmosphere.yml"
    summary = ("TLS files, keystone admin URI over https, public URIs by name, and "
               "haproxy_default_services with keystone_admin opened to Atmosphere")
    host = OSA

    def path(self, a: AtmosphereAnswers) -> str:
        return f"{a.osa_config_dir}/user_variables_atmosphere.yml"

    def files(self, ctx: Context) -> list[FileWrite]:
        a = answers(ctx)
        content = render("atmosphere/user_variables_atmosphere.yml.j2",
                         **template_values(a), admin_uri=admin_uri(a),
                         public_uris=public_uris(a),
                         haproxy_default_services=haproxy_services(
                             a, read_host_file(a.osa_haproxy_config, ctx)))
        return [FileWrite(path=self.path(a), content=content,
                          description="OSA reads every user_*.yml in its config dir")]

    def duplicates(self, ctx: Context, ours: FileWrite) -> list[str]:
        """Other user_*.yml files that define our keys (one of them will lose)."""
        a = answers(ctx)
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

    def plan(self, ctx: Context) -> list[PlanItem]:
        files = self.files(ctx)
        items: list[PlanItem] = list(files)
        for line in self.duplicates(ctx, files[0]):
            items.append(Manual(text=f"warning: {line}; remove them there so one value "
                                     "wins predictably"))
        if check_files(files, ctx.root).status is not Status.DONE:
            items.append(Manual(text=PLAYBOOKS))
        return items

    def undo_plan(self, ctx: Context) -> list[PlanItem]:
        """Only CloudRig's own user_variables_atmosphere.yml goes (the operator's
        user_variables.yml was never written); OSA forgets it on the next playbook run."""
        path = self.path(answers(ctx))
        if not host_path(path, ctx.root).exists():
            return []
        return [FileRemove(path=path, description="CloudRig's own user_*.yml"),
                Manual(text=PLAYBOOKS + " so OSA drops the keystone admin https URI, the "
                            "public URIs by name and keystone_admin's haproxy whitelist "
                            "(TLS files and endpoints you changed by hand stay)")]

    def check(self, ctx: Context) -> CheckResult:
        files = self.files(ctx)
        result = check_files(files, ctx.root)
        duplicates = self.duplicates(ctx, files[0])
        if duplicates and result.status is Status.DONE:
            return CheckResult(status=Status.DRIFTED, detail="warning: " + duplicates[0])
        return result


# ---------------------------------------------------------------- 2. endpoint audit


def keystone(ctx: Context) -> KeystoneClient:
    """One Keystone client per run, with a project-scoped admin token."""
    a = answers(ctx)
    return ctx.shared("keystone", lambda: KeystoneClient(
        a.auth_url, username=a.os_admin_user, password=ctx.secret(ADMIN_PASSWORD),
        project=a.os_admin_project, user_domain=a.os_user_domain, ca_file=a.os_ca_file))


def keystone_url(ctx: Context, path: str) -> str:
    base = answers(ctx).auth_url.rstrip("/")
    return (base if base.endswith("/v3") else base + "/v3") + path


def unknown(ctx: Context, method: str, path: str, what: str) -> ApiCall:
    """A call plan cannot decide without the admin password: shown, never executed."""
    return ApiCall(method=method, url=keystone_url(ctx, path),
                   description=f"{what} (Keystone not read: no {ADMIN_PASSWORD} at hand)")


class EndpointAudit(Step):
    id = "endpoint-audit"
    title = "Endpoint and TLS audit"
    summary = ("Every public endpoint and the keystone admin endpoint: https, a host name, "
               "answering, a certificate trusted for that name; days to expiry")

    def needs_secrets(self, ctx: Context) -> set[str]:
        return {ADMIN_PASSWORD}

    def reports(self, ctx: Context) -> list[endpoint_audit.EndpointReport]:
        a = answers(ctx)
        return endpoint_audit.audit(keystone(ctx).endpoints(), a.cloud_fqdn)

    def plan(self, ctx: Context) -> list[PlanItem]:
        if not ctx.secrets.available(ADMIN_PASSWORD):
            return [unknown(ctx, "GET", "/endpoints", "audit the service catalog")]
        reports = self.reports(ctx)
        items: list[PlanItem] = [ApiCall(
            method="GET", url=keystone_url(ctx, "/endpoints"), changes_remote=False,
            description=endpoint_audit.summary(reports), execute=lambda: self.run(ctx))]
        strict = " (audit_strict: apply stops here)" if answers(ctx).audit_strict else ""
        for report in reports:
            for finding in report.findings:
                items.append(Manual(text=f"warning{strict}: {finding.sentence}; fix: "
                                         f"{finding.fix}"))
        return items

    def run(self, ctx: Context) -> None:
        reports = self.reports(ctx)
        findings = [f for r in reports for f in r.findings]
        for report in reports:
            if report.days_left is not None:
                ctx.emit(f"{report.label}: certificate valid for {report.days_left} more days")
        for finding in findings:
            ctx.emit(f"{finding.sentence}; fix: {finding.fix}", "warning")
        if findings and answers(ctx).audit_strict:
            raise OperatorError(f"the endpoint audit found {plural(len(findings), 'problem')} "
                                f"and audit_strict is on; first: {findings[0].sentence} (fix: "
                                f"{findings[0].fix})")

    def apply(self, ctx: Context) -> None:
        self.run(ctx)

    def check(self, ctx: Context) -> CheckResult:
        reports = self.reports(ctx)
        text = endpoint_audit.summary(reports)
        if any(r.findings for r in reports):
            return CheckResult(status=Status.DRIFTED, detail=f"warning: {text}")
        return CheckResult(status=Status.DONE, detail=text)


# ---------------------------------------------------------------- 3. keystone


# The descriptions CloudRig gives what it creates: teardown --purge deletes only those.
PROJECT_MARK = "Atmosphere's admin project (CloudRig)"
USER_MARK = "Atmosphere's admin user (CloudRig)"


class KeystoneAccount(Step):
    id = "keystone"
    title = "Keystone project, user and admin role"
    summary = "Project and user atmo_admin, role admin_role on that project: each only if absent"

    def needs_secrets(self, ctx: Context) -> set[str]:
        return {ADMIN_PASSWORD, ATMO_PASSWORD}

    def _state(self, ctx: Context) -> dict[str, Any]:
        a = answers(ctx)
        client = keystone(ctx)
        domain = client.domain_id(a.os_user_domain)
        role = client.find_role(a.admin_role)
        if role is None:
            raise OperatorError(f"Keystone has no role named {a.admin_role!r}; check "
                                "admin_role")
        project = client.find_project(a.atmo_admin, domain)
        user = client.find_user(a.atmo_admin, domain)
        granted = bool(project and user and client.has_role(project["id"], user["id"],
                                                             role["id"]))
        password_ok = bool(user) and client.password_works(
            a.atmo_admin, ctx.secret(ATMO_PASSWORD), a.os_user_domain)
        return {"domain": domain, "role": role["id"], "project": project and project["id"],
                "user": user and user["id"], "granted": granted, "password_ok": password_ok}

    def plan(self, ctx: Context) -> list[PlanItem]:
        a = answers(ctx)
        if not ctx.secrets.available(ADMIN_PASSWORD):
            return [unknown(ctx, "POST", "/projects", f"create project {a.atmo_admin} if "
                            "absent"),
                    unknown(ctx, "POST", "/users", f"create user {a.atmo_admin} if absent"),
                    unknown(ctx, "PUT", "/projects/…/users/…/roles/…",
                            f"grant {a.admin_role} if not granted")]
        client = keystone(ctx)
        ids = self._state(ctx)
        name = a.atmo_admin
        items: list[PlanItem] = []
        if ids["project"] is None:
            def create_project() -> None:
                ids["project"] = client.create_project(name, ids["domain"], PROJECT_MARK)["id"]
            items.append(ApiCall(method="POST", url=keystone_url(ctx, "/projects"),
                                 body={"project": {"name": name, "domain_id": ids["domain"]}},
                                 description=f"create project {name}",
                                 execute=create_project))
        if ids["user"] is None:
            def create_user() -> None:
                ids["user"] = client.create_user(name, ids["domain"], ctx.secret(ATMO_PASSWORD),
                                                 ids["project"], USER_MARK)["id"]
            items.append(ApiCall(method="POST", url=keystone_url(ctx, "/users"),
                                 body={"user": {"name": name, "domain_id": ids["domain"],
                                                "password": MASK}},
                                 description=f"create user {name} with atmo_admin_password",
                                 execute=create_user))
        elif not ids["password_ok"]:
            items.append(ApiCall(
                method="PATCH", url=keystone_url(ctx, f"/users/{ids['user']}"),
                body={"user": {"password": MASK}},
                description=f"set {name}'s password to atmo_admin_password (it differs)",
                execute=lambda: client.set_password(ids["user"], ctx.secret(ATMO_PASSWORD))))
        if not ids["granted"]:
            items.append(ApiCall(
                method="PUT", url=keystone_url(ctx, "/projects/{project}/users/{user}/roles/"
                                               + ids["role"]),
                description=f"grant role {a.admin_role} to {name} on project {name}",
                execute=lambda: client.assign_role(ids["project"], ids["user"], ids["role"])))
        return items

    def check(self, ctx: Context) -> CheckResult:
        a = answers(ctx)
        ids = self._state(ctx)
        if ids["project"] is None or ids["user"] is None:
            return CheckResult(status=Status.PENDING,
                               detail=f"project or user {a.atmo_admin} missing")
        if not ids["granted"]:
            return CheckResult(status=Status.PENDING,
                               detail=f"{a.atmo_admin} lacks role {a.admin_role}")
        if not ids["password_ok"]:
            return CheckResult(status=Status.DRIFTED,
                               detail=f"{a.atmo_admin}'s password differs from "
                                      "atmo_admin_password")
        return CheckResult(status=Status.DONE,
                           detail=f"{a.atmo_admin} has {a.admin_role} on {a.atmo_admin}")

    def undo_secrets(self, ctx: Context) -> set[str]:
        return {ADMIN_PASSWORD} if ctx.purge else set()  # nothing is removed without --purge

    def undo_plan(self, ctx: Context) -> list[PlanItem]:
        """With --purge: revoke the grant, delete the user, delete the project — each only
        if CloudRig created it (its description, or a user whose default project is
        CloudRig's). Objects the operator made are named with the command to remove
        them, never deleted."""
        if not ctx.purge:
            return []
        a = answers(ctx)
        client = keystone(ctx)
        domain = client.domain_id(a.os_user_domain)
        project = client.find_project(a.atmo_admin, domain)
        user = client.find_user(a.atmo_admin, domain)
        ours_project = project is not None and project.get("description") == PROJECT_MARK
        ours_user = user is not None and (
            user.get("description") == USER_MARK
            or (ours_project and user.get("default_project_id") == project["id"]))
        items: list[PlanItem] = []
        role = client.find_role(a.admin_role)
        if (project and user and role and (ours_project or ours_user)
                and client.has_role(project["id"], user["id"], role["id"])):
            pid, uid, rid = project["id"], user["id"], role["id"]
            items.append(ApiCall(
                method="DELETE", url=keystone_url(ctx, f"/projects/{pid}/users/{uid}/roles/{rid}"),
                description=f"revoke {a.admin_role} from {a.atmo_admin} on {a.atmo_admin}",
                execute=lambda: client.revoke_role(pid, uid, rid)))
        if user and ours_user:
            uid = user["id"]
            items.append(ApiCall(method="DELETE", url=keystone_url(ctx, f"/users/{uid}"),
                                 description=f"delete user {a.atmo_admin}",
                                 execute=lambda: client.delete_user(uid)))
        if project and ours_project:
            pid = project["id"]
            items.append(ApiCall(method="DELETE", url=keystone_url(ctx, f"/projects/{pid}"),
                                 description=f"delete project {a.atmo_admin}",
                                 execute=lambda: client.delete_project(pid)))
        for kind, found, ours in (("user", user, ours_user), ("project", project, ours_project)):
            if found and not ours:
                items.append(Manual(text=(
                    f"Keystone {kind} {a.atmo_admin} was not created by CloudRig (no CloudRig "
                    f"description), so it stays; to remove it: openstack {kind} delete "
                    f"--domain {a.os_user_domain} {a.atmo_admin}")))
        return items


# ---------------------------------------------------------------- 4. provider JSON


def provider_json_path(a: AtmosphereAnswers) -> str:
    return a.provider_json or f"/etc/cloudrig/atmosphere/{a.provider_name}.json"


def auth_root(url: str) -> str:
    """The runbook's credential.auth_url is scheme://host:port (no /v3)."""
    return re.sub(r"/v[23](\.0)?/?$", "", url.rstrip("/"))


def provider_secret(ctx: Context) -> str:
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


class ProviderJson(Step):
    id = "provider-json"
    title = "Provider JSON for add_new_provider.py"
    summary = "Valid JSON (no comments), 0600: it holds atmo_admin's password and the secret"
    host = ATMOSPHERE

    def needs_secrets(self, ctx: Context) -> set[str]:
        given = {PROVIDER_SECRET} if ctx.secrets.available(PROVIDER_SECRET) else set()
        return {ATMO_PASSWORD} | given  # a given provider secret is validated (≥ 32)

    def files(self, ctx: Context) -> list[FileWrite]:
        if not ctx.secrets.available(ATMO_PASSWORD):
            return []  # nothing to write without it (`render` never asks for secrets)
        a = answers(ctx)
        values = {**template_values(a), "admin_url": auth_root(a.keystone_admin_url),
                  "auth_root": auth_root(a.auth_url)}
        content = render("atmosphere/provider.json.j2", **values,
                         atmo_admin_password=ctx.secret(ATMO_PASSWORD),
                         provider_secret=provider_secret(ctx))
        return [FileWrite(path=provider_json_path(a), content=content, mode=0o600,
                          secret=True, dir_mode=0o700,
                          description="add_new_provider.py --from-json input")]

    def plan(self, ctx: Context) -> list[PlanItem]:
        if not ctx.secrets.available(ATMO_PASSWORD):
            path = provider_json_path(answers(ctx))
            return [Manual(text=f"{path} (0600) is written once atmo_admin_password is given "
                                "(CLOUDRIG_SECRET_ATMO_ADMIN_PASSWORD or `cloudrig secrets set "
                                "atmo_admin_password`)")]
        return list(self.files(ctx))

    def check(self, ctx: Context) -> CheckResult:
        if not (ctx.secrets.available(ATMO_PASSWORD) and ctx.secrets.available(PROVIDER_SECRET)):
            path = host_path(provider_json_path(answers(ctx)), ctx.root)
            return CheckResult(status=Status.DONE if path.exists() else Status.PENDING,
                               detail=f"{provider_json_path(answers(ctx))} "
                                      f"{'present' if path.exists() else 'missing'}")
        return check_files(self.files(ctx), ctx.root)

    def undo_secrets(self, ctx: Context) -> set[str]:
        return set()  # removing the file needs no password

    def undo_plan(self, ctx: Context) -> list[PlanItem]:
        path = provider_json_path(answers(ctx))
        if not host_path(path, ctx.root).exists():
            return []
        return [FileRemove(path=path, description="it holds atmo_admin's password and the "
                                                  "provider secret")]


# ---------------------------------------------------------------- 5. DNS


class DnsRecords(Step):
    id = "dns"
    title = "DNS names for the floating IPs"
    summary = "A BIND zone fragment for the whole range; the check resolves every name"

    def path(self, a: AtmosphereAnswers) -> str:
        return f"{a.export_dir}/dns/{a.dns_zone}.zone-fragment"

    def files(self, ctx: Context) -> list[FileWrite]:
        a = answers(ctx)
        suffix = "." + a.dns_zone
        records = [(name[: -len(suffix)], ip) for name, ip in a.hostnames()]
        return [FileWrite(path=self.path(a),
                          content=render("atmosphere/zone-fragment.j2", **template_values(a),
                                         records=records),
                          description=f"records to add to the zone {a.dns_zone}")]

    def plan(self, ctx: Context) -> list[PlanItem]:
        a = answers(ctx)
        return [*self.files(ctx),
                Manual(text=f"include {self.path(a)} in the zone {a.dns_zone} on its DNS "
                            "server (this step is probably optional: the runbook)")]

    def check(self, ctx: Context) -> CheckResult:
        from .dns import check_names

        files = check_files(self.files(ctx), ctx.root)
        a = answers(ctx)
        return CheckResult.worst([files, check_names(a.hostnames(), a.dns_server)])

    def undo_plan(self, ctx: Context) -> list[PlanItem]:
        a = answers(ctx)
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


def lookup_command(a: AtmosphereAnswers) -> Command:
    return Command(argv=django(a, f"{a.atmosphere_dir}/manage.py", "shell", "-c",
                               LOOKUP.format(name=a.provider_name)),
                   sets="PROVIDER_ID", changes_host=False, timeout=300,
                   description=f"the id of provider {a.provider_name} (parsed, not guessed)")


def provider_id(output: str) -> str | None:
    found = re.findall(r"^PROVIDER_ID=(\d*)\s*$", output, flags=re.M)
    return found[-1] if found and found[-1] else None


class Provider(Step):
    id = "provider"
    title = "Atmosphere provider, accounts and monitoring"
    summary = ("add_new_provider.py --from-json (prompts answered on a pseudo-terminal), "
               "add_new_accounts.py, monitor_*_for(provider id)")
    host = ATMOSPHERE

    def needs_secrets(self, ctx: Context) -> set[str]:
        return {PROVIDER_SECRET} if ctx.secrets.available(PROVIDER_SECRET) else set()

    def commands(self, a: AtmosphereAnswers, known_id: str | None) -> list[Command]:
        pid = known_id or "${PROVIDER_ID}"
        platform = "2" if a.platform == "Xen" else "1"
        add = Command(
            argv=django(a, f"{a.atmosphere_dir}/scripts/add_new_provider.py", "--from-json",
                        provider_json_path(a)),
            pty_replies=[(r"Name of new provider:", a.provider_name),
                         (r"Select a platform type \(\[1\]/2\):", platform),
                         (r"default_security_rules for provider:", ""),
                         (r"Does everything above look correct\? \[Yes\]/No", "Yes")],
            pty_answers=[(r"What secret would you like to use to create user accounts\?",
                          PROVIDER_SECRET)],
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

    def _existing(self, ctx: Context) -> str | None:
        result = ctx.runner.run(lookup_command(answers(ctx)))
        return provider_id(result.stdout) if result.returncode == 0 else None

    def plan(self, ctx: Context) -> list[PlanItem]:
        return list(self.commands(answers(ctx), None))

    def apply(self, ctx: Context) -> None:
        a = answers(ctx)
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

    def check(self, ctx: Context) -> CheckResult:
        a = answers(ctx)
        if ctx.root is not None:
            return CheckResult(status=Status.STAGED, detail="not checked (staged under --root)")
        try:
            pid = self._existing(ctx)
        except OperatorError as exc:
            return CheckResult(status=Status.FAILED, detail=exc.sentence)
        if pid is None:
            return CheckResult(status=Status.PENDING, detail=f"no provider {a.provider_name}")
        return CheckResult(status=Status.DONE, detail=f"provider {a.provider_name} is id {pid}")

    def undo_plan(self, ctx: Context) -> list[PlanItem]:
        """Atmosphere has no script to remove a provider and deleting its row would
        cascade into identities and instance history, so the operator end-dates it (it
        then shows "Offline"): shown, with the exact command, never run by CloudRig."""
        a = answers(ctx)
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


class AllocationStrategy(ManualStep):
    id = "allocation-strategy"
    title = "Allocation strategy"
    summary = ("In Django admin (no script or API in the runbook), confirmed with "
               "`cloudrig confirm atmosphere allocation-strategy`")

    def text(self, ctx: Context) -> str:
        a = answers(ctx)
        return (f"Open {admin_base(a)}/admin/core/allocationstrategy/add/ as a staff user; "
                f"Provider: {a.provider_name}; Counting behavior: \"1 Month - Calendar "
                "Window\"; Refresh behaviors: \"First of the Month\"; Rules behaviors: "
                "\"Ignore non-active status\" and \"Multiply by Size CPU\"; Save. Then run "
                f"{self.confirm_hint(ctx)}.")

    def undo_plan(self, ctx: Context) -> list[PlanItem]:
        if self.id not in ctx.confirmations:
            return []  # never confirmed (or already torn down): nothing known to remove
        a = answers(ctx)
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


class AnsibleHosts(Step):
    id = "atmosphere-ansible"
    title = "atmosphere-ansible hosts and group_vars"
    summary = "Every instance name with ansible_host under [atmosphere:children], and group_vars"
    host = ATMOSPHERE

    def files(self, ctx: Context) -> list[FileWrite]:
        a = answers(ctx)
        base = f"{a.atmosphere_ansible_dir}/ansible"
        hosts = f"{base}/hosts"
        block = render("atmosphere/hosts-block.j2", **template_values(a),
                       records=a.hostnames())
        current = (read_host_file(hosts, ctx) or b"").decode("utf-8", errors="replace")
        return [
            FileWrite(path=hosts, content=merge_block(current, block, a.provider_name),
                      description="instances of the provider (other entries kept)"),
            FileWrite(path=f"{base}/group_vars/{a.provider_name}",
                      content=render("atmosphere/group_vars.yml.j2", **template_values(a)),
                      description=f"variables of group {a.provider_name}"),
        ]

    def plan(self, ctx: Context) -> list[PlanItem]:
        if ctx.exporting_to is not None:
            return _exported_hosts_plan(self, ctx)
        return list(self.files(ctx))

    def undo_plan(self, ctx: Context) -> list[PlanItem]:
        """CloudRig's hosts block goes (other entries kept; the file only if nothing else
        is in it); group_vars/<provider> goes unless it replaced the operator's file,
        which is then named with the command that restores it."""
        a = answers(ctx)
        base = f"{a.atmosphere_ansible_dir}/ansible"
        items: list[PlanItem] = []
        hosts = host_path(f"{base}/hosts", ctx.root)
        current = hosts.read_text(encoding="utf-8", errors="replace") if hosts.exists() else ""
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
        group_vars = f"{base}/group_vars/{a.provider_name}"
        target = host_path(group_vars, ctx.root)
        if target.exists():
            backups = sorted(target.parent.glob(f"{target.name}.cloudrig-*.bak"))
            if backups:
                first = f"{base}/group_vars/{backups[0].name}"
                items.append(Manual(text=(
                    f"{group_vars} replaced your own file, so it stays; to restore yours: "
                    f"mv {first} {group_vars}")))
            else:
                items.append(FileRemove(path=group_vars,
                                        description=f"variables of group {a.provider_name}"))
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


def _exported_hosts_plan(step: AnsibleHosts, ctx: Context) -> list[PlanItem]:
    """For another host: the block as its own file and a merge run there, so the
    operator's other inventory entries on that host are kept."""
    a = answers(ctx)
    hosts, group_vars = step.files(ctx)
    block_path = f"{a.atmosphere_ansible_dir}/ansible/.cloudrig-{a.provider_name}.hosts"
    block = render("atmosphere/hosts-block.j2", **template_values(a), records=a.hostnames())
    return [FileWrite(path=block_path, content=block, description="CloudRig's hosts block"),
            Command(argv=["python3", "-c", MERGE, hosts.path, block_path, a.provider_name],
                    description=f"merge the block into {hosts.path} (other entries kept)"),
            group_vars]


STEPS: tuple[Step, ...] = (
    UserVariables(), EndpointAudit(), KeystoneAccount(), ProviderJson(), DnsRecords(),
    Provider(), AllocationStrategy(), AnsibleHosts(),
)
