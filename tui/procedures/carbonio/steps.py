"""The carbonio steps, in runbook order: each plans, applies, checks and undoes."""

from __future__ import annotations

import grp
import json
import pwd
import shutil
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import BaseModel

from tui.clients import postgres
from tui.clients.consul import ConsulClient
from tui.context import Context
from tui.errors import OperatorError
from tui.files import check_files, host_path, read_current
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
)
from tui.poll import poll
from tui.procedures.wire import api_call
from tui.redact import register as register_secret
from tui.render import render
from tui.steps import FileStep, TemplateFile, confirmed_check

from .answers import CarbonioAnswers

TOKEN = "consul_token"
Ctx = Context[CarbonioAnswers]


CONSUL: Remote[CarbonioAnswers, ConsulClient] = Remote(
    key="consul", name="Consul", secret=TOKEN,
    client=lambda a, token: ConsulClient(a.consul_url, token, ca_file=a.consul_ca_file),
    base_url=lambda a: a.consul_url)
"""The local Carbonio Mesh agent, with the management token."""


def policy_name(a: CarbonioAnswers) -> str:
    return f"{a.gateway_name}-policy"


def _carbonio(a: BaseModel) -> CarbonioAnswers:
    """A TemplateFile's path is handed any answers model; carbonio's files get carbonio's."""
    assert isinstance(a, CarbonioAnswers)
    return a


def _config(a: BaseModel, name: str) -> str:
    return f"{_carbonio(a).config_dir}/{name}"


POLICY_FILE = TemplateFile(
    "carbonio/policies.json.j2", path=lambda a: _config(a, "policies.json"),
    description="ACL rules for the gateway's policy")
EXTERNAL_FILE = TemplateFile(
    "carbonio/external-service.json.j2",
    path=lambda a: _config(a, f"{_carbonio(a).service_name}-external.json"),
    description="catalog registration of the external database")


@dataclass(frozen=True)
class EntryFile(TemplateFile):
    """gateway-config.hcl, rendered from `gateway_entry` — the structure the config
    entry call sends — so the operator's file and Consul's entry cannot differ."""

    def item(self, answers: BaseModel) -> FileWrite:
        assert isinstance(answers, CarbonioAnswers)
        return FileWrite(path=self.path(answers), mode=self.mode,
                         content=render(self.template, entry=gateway_entry(answers)),
                         description=self.description)


GATEWAY_FILE = EntryFile(
    "carbonio/gateway-config.hcl.j2", path=lambda a: _config(a, "gateway-config.hcl"),
    description="terminating-gateway config entry")
UNIT_FILE = TemplateFile(
    "carbonio/gateway.service.j2",
    path=lambda a: f"{_carbonio(a).unit_dir}/{_carbonio(a).gateway_name}.service",
    description="systemd unit running the Envoy terminating gateway")


def combine(*results: CheckResult) -> CheckResult:
    return CheckResult.worst(list(results))


# What CloudRig records creating (Context.created): teardown removes only those.
POLICY, TOKEN_KIND, KV_KEY = "consul-policy", "consul-token", "consul-kv"
CATALOG, CONFIG_ENTRY = "consul-catalog", "consul-config"


def not_ours(what: str, command: str) -> Manual:
    """Teardown's line for an object of the same name that CloudRig did not create."""
    return Manual(text=f"{what} was not created by CloudRig (its ownership record does "
                       f"not name it), so it stays; if it should go: {command}")


# ---------------------------------------------------------------- 1. user


class ServiceUser(Step[CarbonioAnswers]):
    id = "user"
    title = "Service user and group"
    summary = "A system group and user (no home, /sbin/nologin) that runs the gateway"

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        name = ctx.answers.gateway_name
        items: list[PlanItem] = []
        if not _group_exists(name):
            items.append(Command(argv=["groupadd", "-r", name],
                                 description=f"create system group {name}"))
        if not _user_exists(name):
            items.append(Command(
                argv=["useradd", "-r", "-M", "-g", name, "-s", "/sbin/nologin", name],
                description=f"create system user {name}"))
        return items

    def check(self, ctx: Ctx) -> CheckResult:
        name = ctx.answers.gateway_name
        if ctx.root is not None:
            # Staged into a directory: the account belongs to the host that gets the tree.
            return CheckResult(status=Status.STAGED,
                               detail=f"staged under --root: create user and group {name} "
                                      "on the target host")
        if _user_exists(name) and _group_exists(name):
            return CheckResult(status=Status.DONE, detail=f"user and group {name} exist")
        return CheckResult(status=Status.PENDING, detail=f"user or group {name} missing")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


# ---------------------------------------------------------------- 2. policy


class Policy(FileStep[CarbonioAnswers]):
    def __init__(self) -> None:
        super().__init__("policy", "ACL policy",
                         "policies.json, and the ACL policy <gateway>-policy created or "
                         "updated to match it", [POLICY_FILE])

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN}

    def _wanted(self, ctx: Ctx, files: list[FileWrite] | None = None) -> tuple[str, str, str]:
        """The policy's name, description and rules (policies.json: FILES, when the
        caller has rendered them already)."""
        a = ctx.answers
        rules = (files or self.files(ctx))[0].content
        return policy_name(a), f"Policy for {a.gateway_name}", rules

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        files = self.files(ctx)
        items: list[PlanItem] = list(files)
        name, description, rules = self._wanted(ctx, files)
        if not ctx.reads(CONSUL):
            return [*items, CONSUL.placeholder(ctx, "PUT", "/v1/acl/policy",
                                           f"create or update ACL policy {name} if needed")]
        client = ctx.client(CONSUL)
        existing = client.policy_by_name(name)
        if existing is None:
            create = client.create_policy_request(name, description, rules)

            def created() -> None:  # recorded first: a killed run's policy is adopted
                ctx.create(POLICY, name, lambda: client.send_json(create),
                           id_of=lambda made: made["ID"])

            items.append(api_call(client, create, f"create ACL policy {name}", created))
            return items
        ctx.adopt(POLICY, name, existing["ID"])  # the one a killed run was creating
        if existing.get("Rules") != rules or existing.get("Description") != description:
            items.append(api_call(
                client, client.update_policy_request(existing, description, rules),
                f"update ACL policy {name} (its rules differ from policies.json)"))
        return items

    def check(self, ctx: Ctx) -> CheckResult:
        files = self.files(ctx)  # rendered once: the rules sent and the file on disk
        name, _description, rules = self._wanted(ctx, files)
        existing = ctx.client(CONSUL).policy_by_name(name)
        if existing is None:
            remote = CheckResult(status=Status.PENDING, detail=f"policy {name} missing")
        elif existing.get("Rules") != rules:
            remote = CheckResult(status=Status.DRIFTED,
                                 detail=f"policy {name} rules differ from policies.json")
        else:
            remote = CheckResult(status=Status.DONE, detail=f"policy {name} matches")
        return combine(check_files(files, ctx.root), remote)

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """With --purge, the policy goes only if CloudRig created it (its ID is in the
        ownership record): another team's policy of the same name stays."""
        if not ctx.purge:
            return []
        client = ctx.client(CONSUL)
        name = policy_name(ctx.answers)
        existing = client.policy_by_name(name)
        if existing is None:
            return []
        pid = existing["ID"]
        if not ctx.adopt(POLICY, name, pid):
            return [not_ours(f"ACL policy {name} ({pid})",
                             f"consul acl policy delete -id {pid}")]

        request = client.delete_policy_request(pid)

        def delete() -> None:
            client.send(request)
            ctx.forget(POLICY, pid)

        return [api_call(client, request, f"delete ACL policy {name} (created by CloudRig)",
                         delete)]


# ---------------------------------------------------------------- 3. management token


class ManagementToken(Step[CarbonioAnswers]):
    id = "management-token"
    title = "Management token"
    summary = ("The Consul token CloudRig configures with: from the secret store, the "
               "environment, or `service-discover bootstrap-token --setup`")

    def _bootstrap_possible(self, ctx: Ctx) -> bool:
        return bool(shutil.which("service-discover")) and ctx.secrets.available(
            "cluster_password")

    def provides_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN} if self._bootstrap_possible(ctx) else set()

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return set() if self._bootstrap_possible(ctx) else {TOKEN}

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        if ctx.secrets.available(TOKEN):
            return [ApiCall(method="GET", url=CONSUL.url(ctx.answers, "/v1/acl/token/self"),
                            changes_remote=False, description="verify the management token",
                            execute=lambda: _verify_management(ctx))]
        if self._bootstrap_possible(ctx):
            # zextras/service-discover pkg/command/bootstrap_token.go (@4364bced): the
            # password is read from a terminal only (pkg/term/term_unix.go `New` refuses
            # a stdin that is not one, "the provided file descriptor (0) is not a
            # terminal"), in raw mode with x/term's ReadPassword, and `--setup` prints
            # no prompt: it is typed on a pty as soon as the tool turns echo off.
            return [Command(argv=["service-discover", "bootstrap-token", "--setup"],
                            pty_secret_input="cluster_password",
                            description="obtain the bootstrap token, the cluster credential "
                                        "password typed on its terminal (the token is kept "
                                        "in the secret store only)")]
        return [Manual(text="Run `service-discover bootstrap-token --setup` with the cluster "
                            "credential password and store the token: `cloudrig secrets set "
                            "consul_token`")]

    def apply(self, ctx: Ctx) -> None:
        if not ctx.secrets.available(TOKEN) and self._bootstrap_possible(ctx):
            bootstrap = self.plan(ctx)[0]
            assert isinstance(bootstrap, Command)  # _bootstrap_possible: plan is the command
            result = ctx.run(bootstrap)
            # With --setup the token is printed alone, without a newline (bootstrap_token.go
            # strips the terminal's "\r\n"); the last line of the transcript is it.
            token = (result.stdout.strip().splitlines() or [""])[-1].strip()
            if not token:
                raise OperatorError("`service-discover bootstrap-token --setup` printed no "
                                    "token; check the cluster credential password")
            where = ctx.secrets.remember(TOKEN, token)
            ctx.emit(f"management token kept in the {where}")
        _verify_management(ctx)
        ctx.emit("management token is valid")

    def check(self, ctx: Ctx) -> CheckResult:
        info = ctx.client(CONSUL).token_self()
        if not _is_management(info):
            return CheckResult(status=Status.FAILED,
                               detail="the token is valid but not a management token")
        return CheckResult(status=Status.DONE, detail="management token valid")


def _is_management(info: dict[str, Any]) -> bool:
    return any(p.get("Name") == "global-management" for p in info.get("Policies") or [])


def _verify_management(ctx: Ctx) -> None:
    if not _is_management(ctx.client(CONSUL).token_self()):
        raise OperatorError("the Consul token is valid but lacks the global-management "
                            "policy; use the bootstrap token")


# ---------------------------------------------------------------- 4. gateway token


class GatewayToken(Step[CarbonioAnswers]):
    id = "gateway-token"
    title = "Gateway token"
    summary = "A token linked to the policy, its SecretID in <config_dir>/token (0600)"

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN}

    def path(self, ctx: Ctx) -> str:
        return _config(ctx.answers, "token")

    def _file_token(self, ctx: Ctx) -> str | None:
        raw = read_current(FileWrite(path=self.path(ctx), content=""), ctx.root)
        token = raw.decode(errors="replace").strip() if raw else ""
        if token:
            register_secret(token)
        return token or None

    def _token_file(self, ctx: Ctx, secret: str) -> FileWrite:
        name = ctx.answers.gateway_name
        register_secret(secret)
        return FileWrite(path=self.path(ctx), content=secret + "\n", mode=0o600, owner=name,
                         group=name, secret=True, dir_mode=0o750,
                         description="the gateway's Consul token")

    def _linked(self, info: dict[str, Any] | None, policy: str) -> bool:
        return info is not None and any(p.get("Name") == policy
                                        for p in info.get("Policies") or [])

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        policy = policy_name(a)
        description = f"Token for {a.gateway_name}"
        target = f"{self.path(ctx)} (0600, owner {a.gateway_name})"
        if not ctx.reads(CONSUL):
            return [CONSUL.placeholder(ctx, "PUT", "/v1/acl/token",
                                   f"create a token for {policy} and write it to {target}"
                                   " if needed")]
        client = ctx.client(CONSUL)
        # The runbook's `chown -R` of the config directory is not done: a service user
        # owning it could plant links there; only the token is the gateway's (0600).
        items: list[PlanItem] = []
        file_token = self._file_token(ctx)
        info = client.token_valid(file_token) if file_token else None
        if file_token and info and self._linked(info, policy):
            ctx.adopt(TOKEN_KIND, description, info["AccessorID"])
            token_file = self._token_file(ctx, file_token)
            if check_files([token_file], ctx.root).status is not Status.DONE:
                items.insert(0, token_file)  # same token, mode or content repaired
            return items
        existing = client.policy_by_name(policy)
        reusable = None
        if existing is not None:
            reusable = next((t for t in client.tokens_for_policy(existing["ID"])
                             if t.get("Description") == description), None)
        if existing is not None and reusable is not None:  # reusable: found by `existing`
            accessor = reusable["AccessorID"]

            def reuse() -> None:
                ctx.adopt(TOKEN_KIND, description, accessor)  # a killed run's own
                ctx.write_file(self._token_file(ctx, reusable["SecretID"]))

            call = ApiCall(
                method="GET",
                url=CONSUL.url(ctx.answers, f"/v1/acl/tokens?policy={existing['ID']}"),
                changes_remote=False,
                description=f"reuse the existing token {accessor} and write it to {target}",
                execute=reuse)
        else:
            request = client.create_token_request(description, [policy])

            def create() -> None:
                token = ctx.create(TOKEN_KIND, description, lambda: client.send_json(request),
                                   id_of=lambda made: made["AccessorID"])
                ctx.write_file(self._token_file(ctx, token["SecretID"]))

            call = api_call(client, request, f"create a token linked to {policy}; its "
                                             f"SecretID is written to {target}", create)
        return [call, *items]

    def check(self, ctx: Ctx) -> CheckResult:
        file_token = self._file_token(ctx)
        if not file_token:
            return CheckResult(status=Status.PENDING, detail=f"{self.path(ctx)} missing")
        policy = policy_name(ctx.answers)
        if not self._linked(ctx.client(CONSUL).token_valid(file_token), policy):
            return CheckResult(status=Status.DRIFTED,
                               detail=f"the token in {self.path(ctx)} is not valid for {policy}")
        return combine(check_files([self._token_file(ctx, file_token)], ctx.root),
                       CheckResult(status=Status.DONE, detail="gateway token valid"))

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """With --purge: the gateway tokens CloudRig created (the one in the token file
        and any other linked to the policy that the ownership record names) and the
        token file, if CloudRig wrote it. A token CloudRig did not create stays."""
        if not ctx.purge:
            return []
        a = ctx.answers
        description = f"Token for {a.gateway_name}"
        client = ctx.client(CONSUL)
        file_token = self._file_token(ctx)
        info = client.token_valid(file_token) if file_token else None
        found = [info] if info else []
        existing = client.policy_by_name(policy_name(a))
        if existing is not None:
            found += [t for t in client.tokens_for_policy(existing["ID"])
                      if not info or t.get("AccessorID") != info["AccessorID"]]
        items: list[PlanItem] = []
        for token in found:
            accessor = token["AccessorID"]
            if not ctx.adopt(TOKEN_KIND, description, accessor):
                if token is info:
                    items.append(not_ours(f"the token in {self.path(ctx)} ({accessor})",
                                          f"consul acl token delete -id {accessor}"))
                continue

            request = client.delete_token_request(accessor)

            def delete(request: Any = request, accessor: str = accessor) -> None:
                client.send(request)
                ctx.forget(TOKEN_KIND, accessor)

            items.append(api_call(client, request, f"delete the gateway token {accessor} "
                                                   "(created by CloudRig)", delete))
        if file_token:
            items.append(FileRemove(path=self.path(ctx), description="the gateway's token"))
        return items


# ---------------------------------------------------------------- 5. external service


class ExternalService(FileStep[CarbonioAnswers]):
    def __init__(self) -> None:
        super().__init__("external-service", "External service",
                         "<service>-external.json, registered in Consul's catalog (the "
                         "runbook omits the call)", [EXTERNAL_FILE])

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN}

    def registration(self, ctx: Ctx, files: list[FileWrite] | None = None) -> dict[str, Any]:
        """The registration <service>-external.json holds (FILES: already rendered)."""
        return json.loads((files or self.files(ctx))[0].content)

    def _registered(self, ctx: Ctx, files: list[FileWrite] | None = None) -> CheckResult:
        a = ctx.answers
        entries = [e for e in ctx.client(CONSUL).catalog_service(a.service_name)
                   if e.get("Node") == a.external_node and e.get("ServiceID") == a.service_name]
        if not entries:
            return CheckResult(status=Status.PENDING, detail=f"{a.service_name} not registered")
        e = entries[0]
        want = self.registration(ctx, files)
        if (e.get("Address"), e.get("ServicePort"), e.get("NodeMeta")) != (
                want["Address"], want["Service"]["Port"], want["NodeMeta"]):
            return CheckResult(status=Status.DRIFTED,
                               detail=f"{a.service_name} is registered with other details")
        return CheckResult(status=Status.DONE,
                           detail=f"{a.service_name} registered at {a.external_address}")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        files = self.files(ctx)
        items: list[PlanItem] = list(files)
        if not ctx.reads(CONSUL):
            return [*items, CONSUL.placeholder(ctx, "PUT", "/v1/catalog/register",
                                           "register the external service if needed")]
        registered = self._registered(ctx, files).status
        if registered is not Status.DONE:
            client = ctx.client(CONSUL)
            request = client.catalog_register_request(self.registration(ctx, files))

            def register() -> None:
                if registered is Status.PENDING:  # absent: CloudRig's from now on
                    ctx.create(CATALOG, self._key(ctx), lambda: client.send(request),
                               id=self._key(ctx))
                else:
                    client.send(request)

            items.append(api_call(client, request, "register the external service",
                                  register))
        return items

    def _key(self, ctx: Ctx) -> str:
        a = ctx.answers
        return f"{a.external_node}/{a.service_name}"

    def check(self, ctx: Ctx) -> CheckResult:
        files = self.files(ctx)  # rendered once: the registration and the file on disk
        return combine(check_files(files, ctx.root), self._registered(ctx, files))

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        if self._registered(ctx).status is Status.PENDING:
            return []
        if not ctx.owns(CATALOG, self._key(ctx)):
            return [not_ours(f"the catalog registration of {a.service_name} on node "
                             f"{a.external_node}",
                             f"curl -X PUT {a.consul_url}/v1/catalog/deregister -d "
                             f"'{{\"Node\": \"{a.external_node}\", \"ServiceID\": "
                             f"\"{a.service_name}\"}}'")]
        client = ctx.client(CONSUL)
        return [api_call(client, client.catalog_deregister_request(a.external_node,
                                                                   a.service_name),
                         f"deregister {a.service_name} (and, with its own call, the external "
                         f"node {a.external_node} when nothing else is on it)",
                         lambda: self._deregister(ctx))]

    def _deregister(self, ctx: Ctx) -> None:
        a = ctx.answers
        client = ctx.client(CONSUL)
        client.catalog_deregister(a.external_node, a.service_name)
        node = client.catalog_node(a.external_node)
        if node is not None and not node.get("Services"):
            client.catalog_deregister_node(a.external_node)
        ctx.forget(CATALOG, self._key(ctx))


# ---------------------------------------------------------------- 6. config entry


def gateway_entry(a: CarbonioAnswers) -> dict[str, Any]:
    """The config entry gateway-config.hcl describes, as the HTTP API takes it."""
    service: dict[str, Any] = {"Name": a.service_name}
    if a.ca_file:
        service["CAFile"] = a.ca_file
    if a.sni:
        service["SNI"] = a.sni
    return {"Kind": "terminating-gateway", "Name": a.gateway_name, "Services": [service]}


class GatewayConfig(FileStep[CarbonioAnswers]):
    def __init__(self) -> None:
        super().__init__("gateway-config", "Terminating gateway config entry",
                         "gateway-config.hcl, and the same entry written with PUT /v1/config",
                         [GATEWAY_FILE])

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN}

    def _remote(self, ctx: Ctx) -> CheckResult:
        want = gateway_entry(ctx.answers)
        current = ctx.client(CONSUL).config_get(want["Kind"], want["Name"])
        if current is None:
            return CheckResult(status=Status.PENDING, detail=f"config entry {want['Name']} missing")
        if current.get("Services") != want["Services"]:
            return CheckResult(
                status=Status.DRIFTED,
                detail=f"config entry {want['Name']} differs from gateway-config.hcl")
        return CheckResult(status=Status.DONE, detail=f"config entry {want['Name']} matches")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        items: list[PlanItem] = list(self.files(ctx))
        if not ctx.reads(CONSUL):
            return [*items, CONSUL.placeholder(ctx, "PUT", "/v1/config",
                                           "write the terminating-gateway entry if needed")]
        remote = self._remote(ctx).status
        if remote is not Status.DONE:
            entry = gateway_entry(ctx.answers)
            client = ctx.client(CONSUL)
            request = client.config_put_request(entry)
            failure = f"did not apply the config entry {entry['Name']!r}"

            def put() -> None:
                key = f"{entry['Kind']}/{entry['Name']}"
                if remote is Status.PENDING:  # absent: CloudRig's from now on
                    ctx.create(CONFIG_ENTRY, key, lambda: client.send_true(request, failure),
                               id=key)
                else:
                    client.send_true(request, failure)

            items.append(api_call(client, request, "write the terminating-gateway config "
                                                   "entry", put))
        return items

    def check(self, ctx: Ctx) -> CheckResult:
        return combine(check_files(self.files(ctx), ctx.root), self._remote(ctx))

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        if self._remote(ctx).status is Status.PENDING:
            return []
        name = ctx.answers.gateway_name
        key = f"terminating-gateway/{name}"
        if not ctx.owns(CONFIG_ENTRY, key):
            return [not_ours(f"the terminating-gateway config entry {name}",
                             f"consul config delete -kind terminating-gateway -name {name}")]

        client = ctx.client(CONSUL)
        request = client.config_delete_request("terminating-gateway", name)

        def delete() -> None:
            client.send(request)
            ctx.forget(CONFIG_ENTRY, key)

        return [api_call(client, request, f"delete the terminating-gateway entry {name}",
                         delete)]


# ---------------------------------------------------------------- 7. systemd unit


def systemctl(*args: str, changes_host: bool = True, ok: tuple[int, ...] = (0,)) -> Command:
    return Command(argv=["systemctl", *args], changes_host=changes_host, ok_returncodes=ok,
                   timeout=60)


GATEWAY_WAIT = 120.0
"""Seconds apply waits for the started gateway to register and pass its check: long
enough for a few of the unit's restarts (RestartSec=15)."""


class Unit(FileStep[CarbonioAnswers]):
    def __init__(self) -> None:
        super().__init__("unit", "systemd unit",
                         "<gateway>.service written, daemon-reload, enable --now; done when "
                         "the gateway is registered, passing, and routes the service",
                         [UNIT_FILE])

    def _unit(self, ctx: Ctx) -> str:
        return f"{ctx.answers.gateway_name}.service"

    def _query(self, ctx: Ctx, verb: str) -> str | None:
        """`systemctl is-enabled|is-active` on this host (None under --root)."""
        if ctx.root is not None or not shutil.which("systemctl"):
            return None
        result = ctx.runner.run(systemctl(verb, self._unit(ctx), changes_host=False,
                                          ok=tuple(range(256))))
        return result.stdout.strip() or "unknown"

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        files = self.files(ctx)
        items: list[PlanItem] = list(files)
        changed = check_files(files, ctx.root).status is not Status.DONE
        unit = self._unit(ctx)
        enabled, active = self._query(ctx, "is-enabled"), self._query(ctx, "is-active")
        if changed or enabled is None:
            items.append(systemctl("daemon-reload"))
        if enabled != "enabled" or active != "active":
            items.append(systemctl("enable", "--now", unit))
        elif changed:
            items.append(systemctl("try-restart", unit))
        if enabled is not None:
            gateway = ctx.answers.gateway_name
            items.append(ApiCall(
                method="GET", url=CONSUL.url(ctx.answers, f"/v1/health/service/{gateway}"),
                changes_remote=False,
                description=f"wait for {gateway} to register, pass its check and route "
                            f"{ctx.answers.service_name} (/v1/catalog/gateway-services)",
                execute=lambda: self._wait(ctx)))
        return items

    def _wait(self, ctx: Ctx) -> None:
        """Poll Consul until the started gateway is registered, passing and routing;
        a unit systemd reports failed ends the wait with its journal."""
        if ctx.dry_run:
            return
        unit = self._unit(ctx)

        def failed(_state: CheckResult) -> str | None:
            if self._query(ctx, "is-active") == "failed":
                return f"{unit} failed: {self._journal(ctx)}"
            return None

        poll(lambda: gateway_state(ctx), lambda r: r.status is Status.DONE,
             what=f"the gateway {ctx.answers.gateway_name} in Consul", ctx=ctx,
             timeout=GATEWAY_WAIT, interval=2.0, describe=lambda r: r.detail, failed=failed,
             hint=f"`journalctl -u {unit}` shows what Envoy says")

    def check(self, ctx: Ctx) -> CheckResult:
        files = check_files(self.files(ctx), ctx.root)
        enabled, active = self._query(ctx, "is-enabled"), self._query(ctx, "is-active")
        unit = self._unit(ctx)
        if enabled is None:
            service = CheckResult(status=Status.STAGED,
                                  detail="service state not checked (staged under --root)")
        elif enabled == "enabled" and active == "active":
            gateway = gateway_state(ctx)
            service = CheckResult(status=gateway.status,
                                  detail=f"{unit} enabled and active; {gateway.detail}")
        elif active == "failed":
            service = CheckResult(status=Status.FAILED,
                                  detail=f"{unit} failed: {self._journal(ctx)}")
        else:
            service = CheckResult(status=Status.PENDING,
                                  detail=f"{unit} is {enabled or 'unknown'}, {active}")
        return combine(files, service)

    def _journal(self, ctx: Ctx) -> str:
        if not shutil.which("journalctl"):
            return "no journal on this host"
        result = ctx.runner.run(Command(
            argv=["journalctl", "-u", self._unit(ctx), "-n", "5", "--no-pager", "-o", "cat"],
            changes_host=False, ok_returncodes=tuple(range(256))))
        return " | ".join(result.stdout.strip().splitlines()[-5:]) or "no journal lines"

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """The unit goes only if CloudRig created it; a unit it replaced is put back
        from its first backup (and restarted if running); one it has no record of
        writing stays, and so does the service it runs."""
        unit = self._unit(ctx)
        path = self.files(ctx)[0].path
        owned = ctx.owned_file(path)
        remove = FileRemove(path=path, description="the gateway's unit")
        if not host_path(path, ctx.root).exists():
            return []
        if owned is None or not owned.created:
            if owned is None or owned.backup is None:
                return [remove]  # left as it is, with the reason (the ownership record)
            return [remove, systemctl("daemon-reload"), systemctl("try-restart", unit)]
        items: list[PlanItem] = [systemctl("stop", unit, ok=(0, 5)),
                                 systemctl("disable", unit, ok=(0, 1))]
        gateway = ctx.answers.gateway_name
        client = ctx.client(CONSUL)
        if gateway in client.agent_services():  # registered by CloudRig's unit
            items.append(api_call(
                client, client.agent_deregister_request(gateway),
                f"deregister the gateway service {gateway} from the local agent"))
        return [*items, remove, systemctl("daemon-reload")]

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN}


def gateway_state(ctx: Ctx) -> CheckResult:
    """The gateway as Consul sees it: `<gateway>` registered (by `consul connect envoy
    -register`) with every check passing, and `/v1/catalog/gateway-services/<gateway>`
    listing the external service with the CAFile/SNI of the answers."""
    a = ctx.answers
    client = ctx.client(CONSUL)
    gateway = a.gateway_name
    instances = client.health_service(gateway)
    if not instances:
        return CheckResult(status=Status.PENDING,
                           detail=f"{gateway} is not registered in Consul's catalog")
    failing = [c for i in instances for c in i.get("Checks") or []
               if c.get("Status") != "passing"]
    if failing:
        check = failing[0]
        output = (check.get("Output") or "").strip().splitlines()
        return CheckResult(status=Status.PENDING,
                           detail=f"{gateway} is registered but its check "
                                  f"{check.get('Name')!r} is {check.get('Status')}"
                                  + (f" ({output[-1]})" if output else ""))
    links = [link for link in client.gateway_services(gateway)
             if (link.get("Service") or {}).get("Name") == a.service_name]
    if not links:
        return CheckResult(status=Status.PENDING,
                           detail=f"{gateway} does not route {a.service_name} "
                                  "(/v1/catalog/gateway-services does not list it)")
    link = links[0]
    have = (link.get("CAFile") or None, link.get("SNI") or None)
    if have != (a.ca_file, a.sni):
        return CheckResult(status=Status.DRIFTED,
                           detail=f"{gateway} routes {a.service_name} with CAFile/SNI "
                                  f"{have[0] or '-'}/{have[1] or '-'}, not "
                                  f"{a.ca_file or '-'}/{a.sni or '-'}")
    tls = f" (SNI {a.sni})" if a.sni else ""
    return CheckResult(status=Status.DONE,
                       detail=f"{gateway} registered and passing, routes {a.service_name}{tls}")


# ---------------------------------------------------------------- 8. KV


class Credentials(Step[CarbonioAnswers]):
    id = "kv"
    title = "Database credentials in Consul KV"
    summary = "<kv_prefix>/db-name, db-username and db-password, byte-exact"

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN, "db_password"}

    def _keys(self, ctx: Ctx) -> dict[str, tuple[bytes, bool]]:
        a = ctx.answers
        return {
            f"{a.kv_prefix}/db-name": (a.db_name.encode(), False),
            f"{a.kv_prefix}/db-username": (a.db_username.encode(), False),
            f"{a.kv_prefix}/db-password": (ctx.secret("db_password").encode(), True),
        }

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        if not ctx.reads(CONSUL) or not ctx.secrets.available("db_password"):
            return [CONSUL.placeholder(ctx, "PUT", f"/v1/kv/{a.kv_prefix}/…",
                                   "write db-name, db-username and db-password if needed")]
        client = ctx.client(CONSUL)
        items: list[PlanItem] = []
        for key, (value, secret) in self._keys(ctx).items():
            now = client.kv_get(key)
            if now == value:
                continue
            request = client.kv_put_request(key, value)
            failure = f"did not store KV key {key!r}"

            def put(key: str = key, request: Any = request, new: bool = now is None,
                    failure: str = failure) -> None:
                send = lambda: client.send_true(request, failure)  # noqa: E731
                if new:  # absent: CloudRig's from now on (recorded before it exists)
                    ctx.create(KV_KEY, key, send, id=key)
                else:
                    send()

            # A secret value is shown masked (the preview's redaction of known secrets).
            what = f"set {key}" + (f" (secret, {len(value)} bytes)" if secret else "")
            items.append(api_call(client, request, what, put))
        return items

    def check(self, ctx: Ctx) -> CheckResult:
        wanted = self._keys(ctx)
        values = ctx.client(CONSUL).kv_values(list(wanted))  # one request when all there
        results = []
        for key, (value, _secret) in wanted.items():
            current = values[key]
            if current is None:
                results.append(CheckResult(status=Status.PENDING, detail=f"{key} missing"))
            elif current != value:
                results.append(CheckResult(status=Status.DRIFTED, detail=f"{key} differs"))
        return CheckResult.worst(results) if results else CheckResult(
            status=Status.DONE, detail="db-name, db-username and db-password match")

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """With --purge, the keys CloudRig created; keys that were there before (it
        only set their values) stay, named."""
        if not ctx.purge:
            return []
        client = ctx.client(CONSUL)
        a = ctx.answers
        keys = [f"{a.kv_prefix}/{k}" for k in ("db-name", "db-username", "db-password")]
        present = [k for k in keys if client.kv_get(k) is not None]

        def delete(key: str) -> None:
            client.kv_delete(key)
            ctx.forget(KV_KEY, key)

        items: list[PlanItem] = [
            api_call(client, client.kv_delete_request(k), f"delete {k}", partial(delete, k))
            for k in present if ctx.owns(KV_KEY, k)]
        theirs = [k for k in present if not ctx.owns(KV_KEY, k)]
        if theirs:
            items.append(not_ours("KV " + ", ".join(theirs),
                                  " ; ".join(f"consul kv delete {k}" for k in theirs)))
        return items


# ---------------------------------------------------------------- 9. database


class Database(Step[CarbonioAnswers]):
    id = "database"
    title = "Database role and database"
    summary = ("The login role and its database on the database node: created by CloudRig "
               "when reachable, else a 0600 psql script to run there")

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        needed = {"db_password"}
        if ctx.answers.create_database:
            needed.add("db_admin_password")
        return needed

    def _server(self, ctx: Ctx) -> postgres.Server:
        a = ctx.answers
        return postgres.Server(a.external_address, a.external_port)

    def script_path(self, ctx: Ctx) -> str:
        return _config(ctx.answers, "create-database.sql")

    def _masked_sql(self, ctx: Ctx) -> str:
        a = ctx.answers
        return (f"CREATE ROLE \"{a.db_username}\" WITH LOGIN PASSWORD '••••••' (or ALTER ROLE "
                f"when it exists); CREATE DATABASE \"{a.db_name}\" OWNER \"{a.db_username}\"")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        server = self._server(ctx)
        if a.create_database and server.reachable():
            return [ApiCall(
                method="SQL", url=server.url(a.db_admin_user, "postgres"),
                body=self._masked_sql(ctx),
                description=f"create or update role {a.db_username} and database {a.db_name}",
                execute=lambda: self._provision(ctx))]
        why = ("The database node is not reachable from here" if a.create_database
               else "With create_database off, CloudRig does not connect")
        if not ctx.secrets.available("db_password"):
            return [Manual(text=f"{why}. CloudRig writes "
                                f"{self.script_path(ctx)} for `psql -f` on the database node "
                                "once db_password is given")]
        script = FileWrite(path=self.script_path(ctx), mode=0o600, secret=True,
                           content=postgres.psql_script(a.db_username, ctx.secret("db_password"),
                                                        a.db_name),
                           description="SQL for the database node")
        # The script carries a fresh salt each time: written only when missing.
        items: list[PlanItem] = [script] if read_current(script, ctx.root) is None else []
        items.append(Manual(text=f"{why}. Copy {self.script_path(ctx)} to the "
                                 "database node and run: sudo -u postgres psql -v "
                                 "ON_ERROR_STOP=1 -f create-database.sql; then `cloudrig "
                                 "confirm carbonio database`"))
        return items

    def _provision(self, ctx: Ctx) -> list[str]:
        a = ctx.answers
        done = postgres.ensure_role_and_database(
            self._server(ctx), a.db_admin_user, ctx.secret("db_admin_password"), a.db_username,
            ctx.secret("db_password"), a.db_name)
        for line in done or ["role and database already as wanted"]:
            ctx.emit(line)
        return done

    def check(self, ctx: Ctx) -> CheckResult:
        a = ctx.answers
        if not a.create_database:
            # The operator chose that CloudRig does not connect: not even to look; their
            # word (`cloudrig confirm carbonio database`) is what the dashboard can show.
            return confirmed_check(ctx, self.id, f"create_database is off: run "
                                   f"{self.script_path(ctx)} on the database node, then "
                                   "`cloudrig confirm carbonio database`")
        server = self._server(ctx)
        if not server.reachable():
            return CheckResult(status=Status.MANUAL,
                               detail=f"{a.external_address}:{a.external_port} not reachable "
                                      "from here; run the script on the database node")
        if postgres.can_login(server, a.db_username, ctx.secret("db_password"), a.db_name):
            return CheckResult(status=Status.DONE,
                               detail=f"{a.db_username} logs in to {a.db_name}")
        return CheckResult(status=Status.PENDING,
                           detail=f"{a.db_username} cannot log in to {a.db_name} yet")


# ---------------------------------------------------------------- 10. pending-setups


class PendingSetups(Step[CarbonioAnswers]):
    id = "pending-setups"
    title = "Carbonio pending setups"
    summary = "Carbonio's `pending-setups -a`, once Carbonio Files is installed"

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        if shutil.which("pending-setups"):
            return [Command(argv=["pending-setups", "-a"], timeout=900,
                            description="finish Carbonio Files' setup")]
        return [Manual(text="Install carbonio-files-ui on each Proxy node and Carbonio Files "
                            "on the Files nodes (without carbonio-files-db), then run "
                            "`pending-setups -a` there; then `cloudrig confirm carbonio "
                            "pending-setups`")]

    def check(self, ctx: Ctx) -> CheckResult:
        record = ctx.previous.get(self.id)
        if record is not None and record.status is Status.DONE:
            return CheckResult(status=Status.DONE, detail=f"ran {record.at:%Y-%m-%d %H:%M}")
        return confirmed_check(ctx, self.id, "run `pending-setups -a` on the Files nodes, then "
                                             "`cloudrig confirm carbonio pending-setups`")


STEPS: tuple[Step, ...] = (
    ManagementToken(), ServiceUser(), Policy(), GatewayToken(), ExternalService(),
    GatewayConfig(), Unit(), Credentials(), Database(), PendingSetups(),
)
"""The management token comes first: it is obtained and verified before anything is
written, on this host or in Consul (the runbook's step 2 needs it already)."""
