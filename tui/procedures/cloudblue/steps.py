"""The cloudblue steps: each plans, applies, checks and (services) undoes.

Order: preflight, validate, config-logging, config, tokens, smoke, services, quotas.
Validation against Connect comes before the two file steps so that an unknown id
stops the run before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from typing import Any, NoReturn

from tui.clients.connect import ConnectClient, authorization
from tui.context import Context
from tui.errors import OperatorError, UsageError
from tui.files import backups_of, check_files, current, exists, host_path, read_path
from tui.model import (
    Action,
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
from tui.render import render
from tui.steps import ManualStep, stamp, template_values

from .answers import CloudBlueAnswers

TOKEN = "cloudblue_token"
VAP_TOKEN = "vap_token"
PASSWORD_MANAGER = "cloudblue-password-manager"
STORE = "passwords_db.sqlite3"
KEY_FILE = "connector.pem"
PROGRAMS = ("cloudblue-fulfillments", "cloudblue-usage", "cloudblue-usage-files")
SMOKE_TIMEOUT = 300.0
QUOTAS = {
    "account.minbalance": "-9999",
    "account.personal.min.threshold": "0",
    "sleep.after.inactive.hours": "0",
    "sleep.stop.after.hours": "-1",
}
QUOTA_WHY = {
    "account.minbalance": "avoids automatic user deactivation",
    "account.personal.min.threshold": "disables low balance notifications",
    "sleep.after.inactive.hours": "disables hibernation of inactive environments",
    "sleep.stop.after.hours": "disables the stop of hibernated environments",
}
# cloudblue-password-manager asks with getpass; the text of its prompt is not
# documented, so any prompt ending in ':' is answered, and a second one that asks
# to repeat the value gets the same secret.
PROMPT = r"(?i)(token|key|password|secret)[^\n]*:\s*$"
REPEAT = r"(?i)(again|confirm|repeat|retype|verify)[^\n]*:\s*$"
Ctx = Context[CloudBlueAnswers]


def path_in(a: CloudBlueAnswers, name: str) -> str:
    return f"{a.config_dir}/{name}"


def local(ctx: Ctx, name: str) -> Any:
    """Where a file of the connector directory is on disk for this run (--root aware)."""
    return host_path(path_in(ctx.answers, name), ctx.root)


def canonical_key(value: str) -> str:
    """The Connect API key in its one canonical form, `ApiKey SU-…:…` (accepted with or
    without the prefix): what CloudRig's own calls send and what the password manager
    stores, so the connector sends Connect the same value (connect-openapi-client puts
    the stored key verbatim into `Authorization`)."""
    try:
        return authorization(value)
    except ValueError as exc:
        raise UsageError(f"{TOKEN}: {exc}") from None


def connect_key(ctx: Ctx) -> str:
    return canonical_key(ctx.secret(TOKEN))


CONNECT: Remote[CloudBlueAnswers, ConnectClient] = Remote(
    key="connect", name="Connect", secret=TOKEN,
    client=lambda a, key: ConnectClient(a.api_endpoint, canonical_key(key)),
    base_url=lambda a: a.api_endpoint, unread=f"Connect not read now: no {TOKEN} at hand")
"""CloudBlue Connect's public API, with the API key in its canonical form."""


class CanonicalSecrets:
    """The run's secrets as the password manager is given them: the Connect key in its
    canonical form (`connect_key`), every other secret as it is."""

    def __init__(self, ctx: Ctx) -> None:
        self._ctx = ctx

    def get(self, name: str) -> str:
        return connect_key(self._ctx) if name == TOKEN else self._ctx.secret(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx.secrets, name)


def fingerprint(path: Any) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------- 1. preflight


class Preflight(Step[CloudBlueAnswers]):
    id = "preflight"
    title = "Preflight"
    summary = ("The connector is installed (examples, cloudblue-password-manager), the OS "
               "release, and the Connect API answers with the key")

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN}

    def findings(self, ctx: Ctx) -> tuple[list[str], list[str]]:
        """(problems, warnings) about this host."""
        problems, warnings = [], []
        for name in ("config.json.example", "config-logging.json.example"):
            if not local(ctx, name).exists():
                problems.append(f"{path_in(ctx.answers, name)} is missing")
        if not shutil.which(PASSWORD_MANAGER):
            problems.append(f"{PASSWORD_MANAGER} is not on PATH")
        release = self.os_release(ctx)
        if release is None:
            warnings.append("OS release unknown (no /etc/os-release)")
        elif not (release.get("ID") == "almalinux"
                  and release.get("VERSION_ID", "").split(".")[0] == "9"):
            warnings.append(f"this is {release.get('PRETTY_NAME', 'an unknown OS')}, not "
                            "AlmaLinux 9 as the connector's documentation requires")
        return problems, warnings

    def os_release(self, ctx: Ctx) -> dict[str, str] | None:
        try:
            text = host_path("/etc/os-release", ctx.root).read_text(errors="replace")
        except OSError:
            return None
        values = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip('"')
        return values

    def _reach(self, ctx: Ctx) -> str:
        accounts = ctx.client(CONNECT).accounts()
        who = ", ".join(f"{a.get('id')} ({a.get('name')})" for a in accounts) or "no account"
        return f"Connect answers at {ctx.answers.api_endpoint} for {who}"

    def _installed(self, ctx: Ctx) -> None:
        problems, warnings = self.findings(ctx)
        for warning in warnings:
            ctx.emit(warning, "warning")
        if problems:
            raise OperatorError("the CloudBlue connector is not installed here: "
                                + "; ".join(problems)
                                + "; install the connector package first")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        self._installed(ctx)
        if not ctx.reads(CONNECT):
            return [CONNECT.placeholder(ctx, "GET", "/accounts", "check the API key",
                                       changes_remote=False)]
        said = self._reach(ctx)
        return [ApiCall(method="GET", url=CONNECT.url(ctx.answers, "/accounts"),
                        changes_remote=False, description=said,
                        execute=lambda: ctx.emit(self._reach(ctx)))]

    def apply(self, ctx: Ctx) -> None:
        self._installed(ctx)
        ctx.emit(self._reach(ctx))

    def check(self, ctx: Ctx) -> CheckResult:
        problems, warnings = self.findings(ctx)
        if problems:
            return CheckResult(status=Status.FAILED, detail="; ".join(problems))
        said = self._reach(ctx)
        return CheckResult(status=Status.DONE, detail="; ".join([said, *warnings]))


# ---------------------------------------------------------------- 2. validate


class Validate(Step[CloudBlueAnswers]):
    id = "validate"
    title = "Validate against CloudBlue Connect"
    summary = ("Every product is readable (pay-as-you-go when in report_usage), every "
               "grant/revoke template is an asset fulfillment template of its product, the "
               "test marketplace exists (read-only calls)")

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN}

    def problems(self, ctx: Ctx) -> tuple[list[str], list[str]]:
        """(problems, what was found), read once per run."""
        return ctx.shared("connect-validation", lambda: self._read_problems(ctx))

    def _read_problems(self, ctx: Ctx) -> tuple[list[str], list[str]]:
        a = ctx.answers
        client = ctx.client(CONNECT)
        problems, found = [], []
        for product_id in a.products:
            product = client.product(product_id)
            if product is None:
                problems.append(f"product {product_id}: Connect answered 404 (no such "
                                "product, or the API key's account cannot read it)")
                continue
            found.append(f"{product_id} ({product.get('name')}, {product.get('status')})")
            if product_id in a.report_usage and not _pay_as_you_go(product):
                problems.append(f"product {product_id} (in report_usage): pay-as-you-go is "
                                "not enabled in its capabilities (capabilities.ppu is null), "
                                "so it has no usage to report; enable it in Connect or take "
                                "it out of report_usage")
            listed = {t.get("id"): t for t in client.templates(product_id) or []}
            pair = a.templates[product_id]
            wanted = [("grant", pair.grant)]
            if pair.revoke_is_template():
                wanted.append(("revoke", pair.revoke))
            for role, template_id in wanted:
                template = listed.get(template_id)
                if template is None:
                    problems.append(f"template {template_id} ({role} for {product_id}): not "
                                    f"among the product's {len(listed)} templates in Connect")
                elif kind := _not_fulfillment(template):
                    problems.append(f"template {template_id} ({role} for {product_id}): is "
                                    f"{kind}, not an asset-scope fulfillment template (the "
                                    "kind Connect sends when a request is approved or "
                                    "cancelled)")
        if a.test_marketplace_id:
            if client.marketplace(a.test_marketplace_id) is None:
                problems.append(f"marketplace {a.test_marketplace_id}: Connect answered 404 "
                                "(no such marketplace, or the key cannot read it)")
            else:
                found.append(f"marketplace {a.test_marketplace_id}")
        return problems, found

    def _raise(self, problems: list[str]) -> NoReturn:
        raise OperatorError("Connect does not have what the answers name: "
                            + "; ".join(problems) + "; fix the answers file or Connect")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        if not ctx.reads(CONNECT):
            return [CONNECT.placeholder(ctx, "GET", "/products/…",
                                        "read each product and its templates",
                                        changes_remote=False)]
        problems, _found = self.problems(ctx)
        if problems:
            self._raise(problems)
        items: list[PlanItem] = []
        for product_id in a.products:
            items.append(ApiCall(method="GET", url=f"{a.api_endpoint}/products/{product_id}"
                                 "/templates", changes_remote=False,
                                 description=f"{product_id} and its templates found",
                                 execute=lambda: None))
        if a.test_marketplace_id:
            items.append(ApiCall(method="GET",
                                 url=f"{a.api_endpoint}/marketplaces/{a.test_marketplace_id}",
                                 changes_remote=False, description="test marketplace found",
                                 execute=lambda: None))
        return items

    def apply(self, ctx: Ctx) -> None:
        problems, found = self.problems(ctx)
        if problems:
            self._raise(problems)
        ctx.emit("found in Connect: " + ", ".join(found))

    def check(self, ctx: Ctx) -> CheckResult:
        problems, found = self.problems(ctx)
        if problems:
            return CheckResult(status=Status.FAILED, detail="; ".join(problems))
        return CheckResult(status=Status.DONE, detail="found in Connect: " + ", ".join(found))


def _pay_as_you_go(product: dict[str, Any]) -> bool:
    """Whether the product's pay-as-you-go capability is on: Connect shows
    `capabilities.ppu` as null when it is off, an object with its `schema` when on
    (connect-cli connect/cli/plugins/product/sync/capabilities.py)."""
    capabilities = product.get("capabilities")
    return isinstance(capabilities, dict) and bool(capabilities.get("ppu"))


def _not_fulfillment(template: dict[str, Any]) -> str | None:
    """What a template is when it is not an asset-scope fulfillment template (Connect's
    Templates API: `scope` asset/tier1/tier2; asset templates have `type`
    fulfillment/pending/inquire), else None."""
    scope, kind = template.get("scope"), template.get("type")
    if scope == "asset" and kind == "fulfillment":
        return None
    if scope != "asset":
        return f"a {scope or 'scope-less'}-scope template"
    return f"an asset {kind or 'untyped'} template"


# ---------------------------------------------------------------- 3. config-logging.json


class LoggingConfig(Step[CloudBlueAnswers]):
    id = "config-logging"
    title = "config-logging.json"
    summary = "Copied from config-logging.json.example when absent; an existing one is kept"

    def files(self, ctx: Ctx) -> list[FileWrite]:
        a = ctx.answers
        example = current(path_in(a, "config-logging.json.example"), ctx.root)
        if exists(path_in(a, "config-logging.json"), ctx.root) or example is None:
            return []
        return [FileWrite(path=path_in(a, "config-logging.json"),
                          content=example.data.decode("utf-8"), mode=example.mode,
                          description="copy of config-logging.json.example")]

    def _differs(self, ctx: Ctx) -> bool:
        a = ctx.answers
        target = read_path(path_in(a, "config-logging.json"), ctx.root)
        example = read_path(path_in(a, "config-logging.json.example"), ctx.root)
        return target is not None and example is not None and target != example

    def apply(self, ctx: Ctx) -> None:
        if self._differs(ctx):
            ctx.emit(f"{path_in(ctx.answers, 'config-logging.json')} differs from the "
                     "example: left alone (it is the operator's)", "warning")
        ctx.execute(self.plan(ctx))

    def restorable(self, ctx: Ctx) -> list[str]:
        return [path_in(ctx.answers, "config-logging.json")]

    def check(self, ctx: Ctx) -> CheckResult:
        path = path_in(ctx.answers, "config-logging.json")
        if not local(ctx, "config-logging.json").exists():
            return CheckResult(status=Status.PENDING, detail=f"{path} missing")
        note = " (differs from the example; left alone)" if self._differs(ctx) else ""
        return CheckResult(status=Status.DONE, detail=f"{path} in place{note}")


# ---------------------------------------------------------------- 4. config.json


MISC_MANAGED = ("hidePasswordsInLog", "testMarketplaceId", "testMode", "billingStatDelayInHours")


def _read_json(ctx: Ctx, name: str) -> dict[str, Any] | None:
    raw = read_path(path_in(ctx.answers, name), ctx.root)  # never through a link
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise OperatorError(
            f"{path_in(ctx.answers, name)} is not valid JSON ({exc}); fix it or move it "
            "away: CloudRig keeps the keys it does not manage, so it must read it") from None
    if not isinstance(data, dict):
        raise OperatorError(f"{path_in(ctx.answers, name)} is not a JSON object; fix it or "
                            "move it away")
    return data


def merged_config(ctx: Ctx) -> dict[str, Any]:
    """The managed keys rendered from the template, laid over the existing config.json
    (or, on the first write, config.json.example): other keys and their order stay."""
    managed = json.loads(render("cloudblue/config.json.j2", **template_values(ctx.answers)))
    base = _read_json(ctx, "config.json")
    if base is None:
        base = _read_json(ctx, "config.json.example") or {}
    result = dict(base)
    for key, value in managed.items():
        if key == "misc":
            misc = dict(base.get("misc") or {}) if isinstance(base.get("misc"), dict) else {}
            for name in MISC_MANAGED:
                if name not in value:  # e.g. testMarketplaceId when not answered
                    misc.pop(name, None)
            misc.update(value)
            result["misc"] = misc
        else:
            result[key] = value
    return result


class MainConfig(Step[CloudBlueAnswers]):
    id = "config"
    renders = ("cloudblue/config.json.j2",)
    title = "config.json"
    summary = ("Rendered from the answers; keys CloudRig does not manage are kept; the "
               "previous file is backed up")

    def files(self, ctx: Ctx) -> list[FileWrite]:
        found = current(path_in(ctx.answers, "config.json"), ctx.root)
        mode = found.mode if found is not None else 0o644
        content = json.dumps(merged_config(ctx), indent=4, ensure_ascii=False) + "\n"
        return [FileWrite(path=path_in(ctx.answers, "config.json"), content=content,
                          mode=mode, description="the connector's configuration")]

    def check(self, ctx: Ctx) -> CheckResult:
        return check_files(self.files(ctx), ctx.root)

    def restorable(self, ctx: Ctx) -> list[str]:
        return [path_in(ctx.answers, "config.json")]

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        backups = backups_of(local(ctx, "config.json"))
        if not backups or ctx.restore:  # with --restore the engine puts it back
            return []
        first = path_in(ctx.answers, backups[0].name)
        return [Manual(text=f"config.json stays (it is the operator's). The version from "
                            f"before CloudRig's first write is {first}; to restore it: "
                            "rerun teardown with --restore")]


# ---------------------------------------------------------------- 5. tokens


TOKEN_FLAGS = {"--set-cloudblue-token": (TOKEN, "the Connect API key"),
               "--set-vap-token": (VAP_TOKEN, "the Application Management admin token")}


def token_commands() -> list[Command]:
    """The password manager run once per token, the token typed at its prompt."""
    return [
        Command(argv=[PASSWORD_MANAGER, flag], pty_answers=[(PROMPT, name), (REPEAT, name)],
                timeout=60, description=f"{what}, typed at its prompt (never in argv)")
        for flag, (name, what) in TOKEN_FLAGS.items()]


def set_token(ctx: Ctx, command: Command) -> None:
    """Run one password-manager command with the token in its canonical form, and say
    what it did. A store the tool left as it was is not a failure: it already held that
    value (the tool need not rewrite it); a store that is not there afterwards is."""
    store = local(ctx, STORE)
    path = path_in(ctx.answers, STORE)
    what = TOKEN_FLAGS[command.argv[1]][1]
    before = fingerprint(store)
    result = ctx.runner.run(command, CanonicalSecrets(ctx), emit=ctx.emit)
    if result.skipped:
        return
    after = fingerprint(store)
    if after is None:
        raise OperatorError(
            f"`{' '.join(command.argv)}` exited 0 but {path} does not exist; run it by "
            "hand to see what it asks")
    if after == before:
        ctx.emit(f"{what}: typed in; {path} unchanged (it already held this value)")
    else:
        ctx.emit(f"{what}: typed in and stored in {path}")


class Tokens(Step[CloudBlueAnswers]):
    id = "tokens"
    title = "Tokens into the password store"
    summary = ("cloudblue-password-manager --set-cloudblue-token / --set-vap-token, answered "
               "at their prompts on a pseudo-terminal")

    def _store(self, ctx: Ctx) -> Any:
        return local(ctx, STORE)

    def _wanted(self, ctx: Ctx) -> bool:
        return not self._store(ctx).exists() or self.id in ctx.only

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {TOKEN, VAP_TOKEN} if self._wanted(ctx) else set()

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        if not self._wanted(ctx):
            return []
        return list(token_commands())

    def apply(self, ctx: Ctx) -> None:
        if not self._wanted(ctx):
            ctx.emit(f"{path_in(ctx.answers, STORE)} exists: tokens kept (`cloudrig apply "
                     "cloudblue --step tokens` sets them again)")
            return
        for command in token_commands():
            set_token(ctx, command)

    def check(self, ctx: Ctx) -> CheckResult:
        store = self._store(ctx)
        path = path_in(ctx.answers, STORE)
        if not store.exists():
            return CheckResult(status=Status.PENDING, detail=f"{path} missing: tokens not set")
        changed = datetime.fromtimestamp(store.stat().st_mtime, UTC)
        return CheckResult(status=Status.DONE, detail=f"{path} present (changed {stamp(changed)})")


# ---------------------------------------------------------------- 6/7. programs and services


def systemctl(*args: str, changes_host: bool = True, ok: tuple[int, ...] = (0,)) -> Command:
    return Command(argv=["systemctl", *args], changes_host=changes_host, ok_returncodes=ok,
                   timeout=60)


def unit_state(ctx: Ctx, program: str) -> tuple[str, str] | None:
    """(is-enabled, is-active) of a program's unit on this host; None under --root."""
    if ctx.root is not None or not shutil.which("systemctl"):
        return None
    unit = f"{program}.service"
    states = []
    for verb in ("is-enabled", "is-active"):
        result = ctx.runner.run(systemctl(verb, unit, changes_host=False, ok=tuple(range(256))))
        states.append(result.stdout.strip() or "unknown")
    return states[0], states[1]


def running(state: tuple[str, str] | None) -> bool:
    return state == ("enabled", "active")


def journal(ctx: Ctx, program: str) -> str:
    if not shutil.which("journalctl"):
        return "no journal on this host"
    result = ctx.runner.run(Command(
        argv=["journalctl", "-u", f"{program}.service", "-n", "5", "--no-pager", "-o", "cat"],
        changes_host=False, ok_returncodes=tuple(range(256))))
    return " | ".join(result.stdout.strip().splitlines()[-5:]) or "no journal lines"


class SmokeRuns(Step[CloudBlueAnswers]):
    id = "smoke"
    title = "Smoke runs"
    summary = ("cloudblue-fulfillments, cloudblue-usage and cloudblue-usage-files run once "
               "by hand, output shown, before their services start")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        if all(running(unit_state(ctx, p)) for p in PROGRAMS) and self.id not in ctx.only:
            return []  # the services run them already
        return [Command(argv=[program], timeout=SMOKE_TIMEOUT,
                        description=f"run {program} once; a failure stops here")
                for program in PROGRAMS]

    def apply(self, ctx: Ctx) -> None:
        for item in self.plan(ctx):
            assert isinstance(item, Command)
            result = ctx.run(item)
            for line in result.tail(lines=20).splitlines():
                ctx.emit(f"{item.argv[0]}: {line}")

    def check(self, ctx: Ctx) -> CheckResult:
        record = ctx.previous.get(self.id)
        if ctx.root is not None:
            return CheckResult(status=Status.STAGED, detail="not run (staged under --root)")
        if all(running(unit_state(ctx, p)) for p in PROGRAMS):
            return CheckResult(status=Status.DONE, detail="the three services run them")
        if record is not None and record.status is Status.DONE:
            return CheckResult(status=Status.DONE, detail=f"ran {stamp(record.at)}")
        return CheckResult(status=Status.PENDING, detail="not run yet")


class Services(Step[CloudBlueAnswers]):
    id = "services"
    title = "Services"
    summary = "systemctl enable --now for the three connector units"

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        return [systemctl("enable", "--now", f"{p}.service") for p in PROGRAMS
                if not running(unit_state(ctx, p))]

    def check(self, ctx: Ctx) -> CheckResult:
        results = []
        for program in PROGRAMS:
            state = unit_state(ctx, program)
            unit = f"{program}.service"
            if state is None:
                results.append(CheckResult(status=Status.STAGED,
                                           detail=f"{unit} not checked (staged under --root)"))
            elif running(state):
                results.append(CheckResult(status=Status.DONE, detail=f"{unit} enabled, active"))
            elif state[1] == "failed":
                results.append(CheckResult(status=Status.FAILED,
                                           detail=f"{unit} failed: {journal(ctx, program)}"))
            else:
                results.append(CheckResult(status=Status.PENDING,
                                           detail=f"{unit} is {state[0]}, {state[1]}"))
        return CheckResult.worst(results)

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        items: list[PlanItem] = []
        for program in PROGRAMS:
            state = unit_state(ctx, program)
            if state is not None and state[0] != "enabled" and state[1] not in (
                    "active", "activating", "failed", "reloading"):
                continue
            unit = f"{program}.service"
            items += [systemctl("stop", unit, ok=(0, 5)), systemctl("disable", unit, ok=(0, 1))]
        return items


# ---------------------------------------------------------------- 8. quotas


class Quotas(ManualStep[CloudBlueAnswers]):
    id = "quotas"
    title = "Admin-panel group quotas"
    summary = ("The user group's quotas in the Application Management admin panel: by hand "
               "(no documented API), confirmed with `cloudrig confirm cloudblue quotas`")

    def text(self, ctx: Ctx) -> str:
        group = ctx.answers.vap_user_group
        values = "; ".join(f"{k} = {v} ({QUOTA_WHY[k]})" for k, v in QUOTAS.items())
        return (f"In the Application Management admin panel, for user group {group!r} set: "
                f"{values}. Optionally make {group!r} the default group for signups. Then "
                f"run {self.confirm_hint(ctx)}.")


# ---------------------------------------------------------------- actions


class RotateVapToken(Action[CloudBlueAnswers]):
    id = "rotate-vap-token"
    title = "Rotate the Application Management token"
    help = ("The runbook's note: delete connector.pem, so that the connector generates a "
            "new API key and Application Management admin token, then set the admin token "
            "(vap_token from the secret store or CLOUDRIG_SECRET_VAP_TOKEN) again with "
            "cloudblue-password-manager --set-vap-token, typed at its prompt.")

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {VAP_TOKEN}

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        command = next(c for c in token_commands() if VAP_TOKEN in dict(c.pty_answers).values())
        return [FileRemove(path=path_in(ctx.answers, KEY_FILE), recorded_only=False,
                           description="the connector's key: a new key and token follow"),
                command]

    def confirmation(self, ctx: Ctx) -> str:
        return (f"Delete {path_in(ctx.answers, KEY_FILE)} (the connector generates a new key "
                "and token) and set the Application Management token again?")

    def execute(self, ctx: Ctx) -> None:
        for item in self.plan(ctx):
            if isinstance(item, Command):
                set_token(ctx, item)
            else:
                ctx.execute([item])


ACTIONS: tuple[Action, ...] = (RotateVapToken(),)

STEPS: tuple[Step, ...] = (
    Preflight(), Validate(), LoggingConfig(), MainConfig(), Tokens(), SmokeRuns(), Services(),
    Quotas(),
)
