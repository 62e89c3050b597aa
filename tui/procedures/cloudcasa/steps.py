"""The cloudcasa steps, in runbook order: each plans, applies, checks and undoes.

Nothing is remembered between runs but CloudRig's state file; every step finds
the account by its name (and the stack by its name) in CloudCasa and AWS, so a
rerun after a crash, a timeout or a kill picks up the wait where it was instead
of creating anything a second time.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from tui.clients.cloudcasa import CloudCasaClient, CloudCasaError, Document, agent_url
from tui.errors import OperatorError
from tui.poll import poll
from tui.procedure import (
    ApiCall,
    CheckResult,
    Command,
    Context,
    Manual,
    PlanItem,
    Status,
    Step,
)

from .answers import FEATURES, CloudCasaAnswers

KEY = "api_key"
PENDING, ACTIVE = "PENDING", "ACTIVE"
REGISTERED = {PENDING, ACTIVE}
CAPABILITIES = ["CAPABILITY_IAM"]


def answers(ctx: Context) -> CloudCasaAnswers:
    assert isinstance(ctx.answers, CloudCasaAnswers)
    return ctx.answers


def casa(ctx: Context) -> CloudCasaClient:
    """One CloudCasa client per run, authenticated with the API key."""
    a = answers(ctx)
    return ctx.shared("cloudcasa", lambda: CloudCasaClient(a.api_url, ctx.secret(KEY),
                                                           ca_file=a.api_ca_file))


def readable(ctx: Context) -> bool:
    """Whether plan may read CloudCasa now (the key is at hand without asking)."""
    return ctx.secrets.available(KEY)


def url(ctx: Context, path: str) -> str:
    return f"{answers(ctx).api_url}/{path}"


def find_account(ctx: Context) -> Document | None:
    return casa(ctx).cloudaccount_named(answers(ctx).account_name)


def need_account(ctx: Context) -> Document:
    found = find_account(ctx)
    if found is None:
        raise OperatorError(f"CloudCasa has no cloud account named "
                            f"{answers(ctx).account_name!r}; apply the `account` step first")
    return found


def shown_json(value: dict[str, Any]) -> str:
    """A `where=`/`embedded=` value as the runbook writes it (the client URL-encodes)."""
    return json.dumps(value, separators=(",", ":"))


def state_of(doc: Document | None) -> str:
    if doc is None:
        return "not created"
    return doc.state or "no status yet"


def wait(ctx: Context, what: str, fetch: Any, done: Any, **kwargs: Any) -> Any:
    a = answers(ctx)
    return poll(fetch, done, what=what, ctx=ctx, timeout=a.poll_timeout,
                interval=a.poll_interval, hint="poll_timeout sets how long one wait lasts",
                **kwargs)


def launch_parameters(doc: Document) -> dict[str, str] | None:
    """templateURL and stackName from aws.awsaccount.status.cfLaunchURL, as the runbook
    reads them: the console URL keeps its query after a '#', so '#' is dropped first."""
    launch = doc.field("aws.awsaccount.status.cfLaunchURL")
    if not launch:
        return None
    query = parse_qs(urlparse(str(launch).replace("#", "")).query)
    template = (query.get("templateURL") or [""])[0]
    if not template:
        raise OperatorError(f"the launch URL CloudCasa gave for account {doc.name!r} has no "
                            "templateURL; open it in a browser instead (cloudformation: "
                            "browser)")
    return {"launch_url": str(launch), "template_url": template,
            "stack_name": (query.get("stackName") or [""])[0]}


class CasaStep(Step):
    """A step that talks to CloudCasa: it needs the API key."""

    def needs_secrets(self, ctx: Context) -> set[str]:
        return {KEY}


# ---------------------------------------------------------------- 1. account


class Account(CasaStep):
    id = "account"
    title = "Cloud account"
    summary = "POST /cloudaccounts unless an account with this name exists (then kept up to date)"

    def body(self, ctx: Context) -> dict[str, Any]:
        a = answers(ctx)
        return {"name": a.account_name, "description": a.description, "tags": a.tags,
                "provider_type": a.provider_type}

    def plan(self, ctx: Context) -> list[PlanItem]:
        body = self.body(ctx)
        create = ApiCall(method="POST", url=url(ctx, "cloudaccounts"), body=body,
                         description=f"create cloud account {body['name']}",
                         execute=lambda: self._create(ctx, body))
        if not readable(ctx):
            return [create.model_copy(update={
                "description": f"create cloud account {body['name']} unless it exists "
                               f"(CloudCasa not read: no {KEY} at hand)"})]
        existing = find_account(ctx)
        if existing is None:
            return [create]
        if existing.field("provider_type") not in (None, body["provider_type"]):
            raise OperatorError(
                f"CloudCasa already has an account named {body['name']!r} for provider "
                f"{existing.field('provider_type')}; choose another account_name")
        changes = {k: body[k] for k in ("description", "tags")
                   if (existing.field(k) or type(body[k])()) != body[k]}
        if not changes:
            return []
        return [ApiCall(
            method="PATCH", url=url(ctx, f"cloudaccounts/{existing.id}"), body=changes,
            description=f"update {', '.join(changes)} of cloud account {body['name']} "
                        "(If-Match: its etag)",
            execute=lambda: casa(ctx).patch("cloudaccounts", existing, changes))]

    def _create(self, ctx: Context, body: dict[str, Any]) -> Document:
        # A create that timed out may have happened: look again before posting.
        existing = find_account(ctx)
        if existing is not None:
            ctx.emit(f"cloud account {existing.name} exists ({existing.id}); not created again")
            return existing
        doc = casa(ctx).create("cloudaccounts", body)
        ctx.emit(f"created cloud account {body['name']} with id {doc.id}")
        return doc

    def check(self, ctx: Context) -> CheckResult:
        doc = find_account(ctx)
        name = answers(ctx).account_name
        if doc is None:
            return CheckResult(status=Status.PENDING, detail=f"no cloud account named {name}")
        return CheckResult(status=Status.DONE,
                           detail=f"account {name} ({doc.id}) is {state_of(doc)}")

    def undo_plan(self, ctx: Context) -> list[PlanItem]:
        doc = find_account(ctx)
        if doc is None:
            return []
        return [ApiCall(method="DELETE", url=url(ctx, f"cloudaccounts/{doc.id}"),
                        description=f"delete cloud account {doc.name} (If-Match: a fresh etag)",
                        execute=lambda: self._delete(ctx, doc))]

    def _delete(self, ctx: Context, doc: Document) -> None:
        try:
            casa(ctx).delete_cloudaccount(doc.id)
        except CloudCasaError as exc:
            # The runbook says only that the delete "would fail if it is in use": the
            # status is not documented, so any client error that says so is read as such.
            said = (exc.message or exc.body).lower()
            client_error = exc.status is not None and 400 <= exc.status < 500
            if client_error and exc.status not in (401, 403, 404, 412, 428) and (
                    "in use" in said or "in-use" in said):
                raise OperatorError(in_use_sentence(ctx, doc, exc)) from None
            raise
        ctx.emit(f"deleted cloud account {doc.name} ({doc.id})")


def in_use_sentence(ctx: Context, doc: Document, exc: CloudCasaError) -> str:
    """What uses the account: its clusters that CloudCasa manages (agent installed)."""
    users = [c for c in casa(ctx).clusters_of(doc.id) if c.state != "DISCOVERED"]
    said = exc.message or f"HTTP {exc.status}"
    if users:
        names = ", ".join(f"{c.name} ({c.state or 'no state'})" for c in users)
        noun = "kubecluster" if len(users) == 1 else "kubeclusters"
        what = (f"it is used by {noun} {names}; remove their backups and delete "
                "them in CloudCasa (or uninstall their agents) first")
    else:
        what = ("CloudCasa did not say by what; look for backups, policies or clusters that "
                "use it in the CloudCasa UI")
    return (f"cannot delete cloud account {doc.name!r}: CloudCasa says it is in use "
            f"({exc.status}: {said}); {what}, then rerun teardown")


# ---------------------------------------------------------------- 2. registration started


class Registered(CasaStep):
    id = "registered"
    title = "Registration started (PENDING)"
    summary = ('GET the account with embedded={"aws.awsaccount":1} until status.state is '
               "PENDING")

    def applies(self, a: Any) -> bool:
        return bool(a.provider_type == "aws")  # the runbook documents this wait for AWS

    def plan(self, ctx: Context) -> list[PlanItem]:
        a = answers(ctx)
        doc = find_account(ctx) if readable(ctx) else None
        if doc is not None and doc.state in REGISTERED:
            return []
        target = doc.id if doc else "<new account id>"
        embedded = shown_json({"aws.awsaccount": 1})
        return [ApiCall(method="GET", changes_remote=False,
                        url=url(ctx, f"cloudaccounts/{target}?embedded={embedded}"),
                        description=f"poll every {a.poll_interval:g}s (up to {a.poll_timeout}s)"
                                    " until status.state is PENDING")]

    def apply(self, ctx: Context) -> None:
        if ctx.dry_run:
            ctx.emit("skipped (dry run): wait for the account to reach PENDING", "item")
            return
        doc = need_account(ctx)
        wait(ctx, f"cloud account {doc.name} to reach PENDING",
             lambda: casa(ctx).cloudaccount(doc.id), lambda d: d.state in REGISTERED,
             describe=state_of)

    def check(self, ctx: Context) -> CheckResult:
        doc = find_account(ctx)
        if doc is not None and doc.state in REGISTERED:
            return CheckResult(status=Status.DONE, detail=f"account is {doc.state}")
        return CheckResult(status=Status.PENDING, detail=f"account: {state_of(doc)}")


# ---------------------------------------------------------------- 3. CloudFormation


def stack_parameters(a: CloudCasaAnswers, account_id: str) -> dict[str, str]:
    """CCAccountId plus every feature, explicitly true or false (the runbook's example)."""
    params = {"CCAccountId": account_id}
    params.update({f: "true" if f in a.features else "false" for f in FEATURES})
    return params


def cloudformation(ctx: Context) -> Any:
    from tui.clients.cloudformation import CloudFormation  # boto3: only on the AWS path

    return ctx.shared("cloudformation", lambda: CloudFormation(answers(ctx).aws_region))


class Stack(CasaStep):
    id = "cloudformation"
    title = "CloudFormation stack"
    summary = ("Create the stack from the launch URL's template (boto3, CCAccountId + "
               "features, CAPABILITY_IAM), or show the URL to open in a browser")

    def applies(self, a: Any) -> bool:
        return bool(a.provider_type == "aws")

    def plan(self, ctx: Context) -> list[PlanItem]:
        a = answers(ctx)
        doc = find_account(ctx) if readable(ctx) else None
        if doc is not None and doc.state == ACTIVE:
            return []
        launch = launch_parameters(doc) if doc is not None else None
        if a.cloudformation == "browser":
            shown = launch["launch_url"] if launch else "(CloudCasa gives it once PENDING)"
            return [Manual(text=f"Open this link where you are signed in to AWS and create "
                                f"the stack (CloudRig waits for ACTIVE): {shown}")]
        target = f"cloudformation://{a.aws_region or 'default-region'}/stacks/{a.stack_name}"
        body: dict[str, Any] = {
            "StackName": a.stack_name,
            "TemplateURL": launch["template_url"] if launch else "<templateURL from cfLaunchURL>",
            "Parameters": stack_parameters(a, doc.id if doc else "<account id>"),
            "Capabilities": CAPABILITIES}
        if launch is not None:
            existing = cloudformation(ctx).stack(a.stack_name)
            if existing is not None:
                self._same_account(existing, doc)
                return [ApiCall(method="GET", url=target, changes_remote=False,
                                description=f"stack {a.stack_name} exists "
                                            f"({existing.status}); wait for CREATE_COMPLETE",
                                execute=lambda: self._wait_stack(ctx))]
        return [ApiCall(method="CreateStack", url=target, body=body,
                        description=f"create stack {a.stack_name} and wait for "
                                    "CREATE_COMPLETE",
                        execute=lambda: self._create(ctx))]

    def _same_account(self, stack: Any, doc: Document | None) -> None:
        wanted = doc.id if doc else None
        if wanted and stack.parameters.get("CCAccountId") not in (None, wanted):
            raise OperatorError(
                f"stack {stack.name} exists for another CloudCasa account "
                f"({stack.parameters.get('CCAccountId')}); delete it in AWS or choose another "
                "stack_name")

    def apply(self, ctx: Context) -> None:
        if answers(ctx).cloudformation == "browser" and not ctx.dry_run:
            doc = need_account(ctx)
            launch = launch_parameters(doc)
            if doc.state != ACTIVE and launch:
                ctx.emit(f"open in a browser signed in to AWS: {launch['launch_url']}")
                qr = terminal_qr(launch["launch_url"])
                if qr:
                    ctx.emit("or scan it:\n" + qr)
        ctx.execute(self.plan(ctx))

    def _create(self, ctx: Context) -> None:
        a = answers(ctx)
        doc = need_account(ctx)
        launch = launch_parameters(doc)
        if launch is None:
            raise OperatorError(f"CloudCasa has not given a CloudFormation launch URL for "
                                f"account {doc.name} yet; rerun to wait for it")
        client = cloudformation(ctx)
        existing = client.stack(a.stack_name)  # never two stacks, even on a racing rerun
        if existing is None:
            stack_id = client.create(a.stack_name, launch["template_url"],
                                     stack_parameters(a, doc.id), CAPABILITIES)
            ctx.emit(f"created stack {a.stack_name} ({stack_id})")
        else:
            self._same_account(existing, doc)
        self._wait_stack(ctx)

    def _wait_stack(self, ctx: Context) -> None:
        from tui.clients.cloudformation import FAILED_STATES, READY_STATES

        name = answers(ctx).stack_name

        def failed(stack: Any) -> str | None:
            if stack is None:
                return "the stack disappeared; rerun to create it again"
            if stack.status in FAILED_STATES:
                return (f"stack is {stack.status} ({stack.reason or 'no reason given'}); "
                        "delete it in AWS and rerun")
            return None

        wait(ctx, f"stack {name} to be created", lambda: cloudformation(ctx).stack(name),
             lambda s: s is not None and s.status in READY_STATES,
             describe=lambda s: s.status if s else "absent", failed=failed)

    def check(self, ctx: Context) -> CheckResult:
        a = answers(ctx)
        doc = find_account(ctx)
        if doc is not None and doc.state == ACTIVE:
            return CheckResult(status=Status.DONE, detail="account ACTIVE: the stack did its work")
        if a.cloudformation == "browser":
            return CheckResult(status=Status.MANUAL,
                               detail="create the stack from the launch URL (apply shows it)")
        stack = cloudformation(ctx).stack(a.stack_name)
        if stack is None:
            return CheckResult(status=Status.PENDING, detail=f"no stack {a.stack_name}")
        from tui.clients.cloudformation import FAILED_STATES

        status = Status.FAILED if stack.status in FAILED_STATES else (
            Status.DONE if stack.status.endswith("_COMPLETE") else Status.PENDING)
        return CheckResult(status=status, detail=f"stack {a.stack_name} is {stack.status}")


def terminal_qr(text: str) -> str | None:
    """The launch URL as a QR code of text blocks (handy over SSH: scan it with a phone
    signed in to AWS). None when segno is not installed."""
    try:
        import io

        import segno
    except ImportError:
        return None
    out = io.StringIO()
    segno.make(text, error="l").terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n")


# ---------------------------------------------------------------- 4. ACTIVE


class Active(CasaStep):
    id = "active"
    title = "Account ACTIVE"
    summary = "GET the account until status.state is ACTIVE"

    def plan(self, ctx: Context) -> list[PlanItem]:
        a = answers(ctx)
        doc = find_account(ctx) if readable(ctx) else None
        if doc is not None and doc.state == ACTIVE:
            return []
        target = doc.id if doc else "<new account id>"
        return [ApiCall(method="GET", url=url(ctx, f"cloudaccounts/{target}"),
                        changes_remote=False,
                        description=f"poll every {a.poll_interval:g}s (up to "
                                    f"{a.poll_timeout}s) until status.state is ACTIVE")]

    def apply(self, ctx: Context) -> None:
        if ctx.dry_run:
            ctx.emit("skipped (dry run): wait for the account to become ACTIVE", "item")
            return
        doc = need_account(ctx)
        if answers(ctx).provider_type == "azure" and doc.state != ACTIVE:
            ctx.emit("finish the Azure registration of this account in CloudCasa (the "
                     "runbook documents only AWS's steps); CloudRig waits for ACTIVE",
                     "warning")
        wait(ctx, f"cloud account {doc.name} to become ACTIVE",
             lambda: casa(ctx).cloudaccount(doc.id), lambda d: d.state == ACTIVE,
             describe=state_of)

    def check(self, ctx: Context) -> CheckResult:
        doc = find_account(ctx)
        if doc is not None and doc.state == ACTIVE:
            return CheckResult(status=Status.DONE, detail="account ACTIVE")
        return CheckResult(status=Status.PENDING, detail=f"account: {state_of(doc)}")


# ---------------------------------------------------------------- 5. clusters


def chosen(ctx: Context, clusters: list[Document]) -> list[Document]:
    wanted = answers(ctx).clusters
    return [c for c in clusters if not wanted or c.name in wanted]


def cluster_line(cluster: Document) -> str:
    agent = "agent running" if cluster.state == ACTIVE else (
        "agent applied, registering" if cluster.state not in (None, "DISCOVERED")
        else "no agent")
    return f"{cluster.name} {cluster.state or 'no state'} ({agent})"


class Clusters(CasaStep):
    id = "clusters"
    title = "Discovered clusters"
    summary = 'GET /kubeclusters?where={"status.cloudaccount": <id>} (waits for named ones)'

    def plan(self, ctx: Context) -> list[PlanItem]:
        doc = find_account(ctx) if readable(ctx) else None
        where = shown_json({"status.cloudaccount": doc.id if doc else "<account id>"})
        wanted = answers(ctx).clusters
        waits = f", waiting for {', '.join(wanted)}" if wanted else ""
        return [ApiCall(method="GET", url=url(ctx, f"kubeclusters?where={where}"),
                        changes_remote=False, description=f"list discovered clusters{waits}")]

    def apply(self, ctx: Context) -> None:
        if ctx.dry_run:
            ctx.emit("skipped (dry run): list the discovered clusters", "item")
            return
        doc = need_account(ctx)
        wanted = answers(ctx).clusters

        def missing(found: list[Document]) -> list[str]:
            names = {c.name for c in found}
            return [n for n in wanted if n not in names]

        found = wait(ctx, "the inventory to discover " + ", ".join(wanted or ["clusters"]),
                     lambda: casa(ctx).clusters_of(doc.id), lambda f: not missing(f),
                     describe=lambda f: (f"missing {', '.join(missing(f))}" if missing(f)
                                         else f"{len(f)} found"))
        if not found:
            ctx.emit("no clusters discovered in this account yet; the inventory runs every "
                     "12 hours (the inventory step triggers one now)", "warning")
        for cluster in found:
            ctx.emit(cluster_line(cluster))

    def check(self, ctx: Context) -> CheckResult:
        doc = find_account(ctx)
        if doc is None:
            return CheckResult(status=Status.PENDING, detail="no account")
        found = casa(ctx).clusters_of(doc.id)
        missing = [n for n in answers(ctx).clusters if n not in {c.name for c in found}]
        listing = "; ".join(cluster_line(c) for c in found) or "none discovered yet"
        if missing:
            return CheckResult(status=Status.PENDING,
                               detail=f"not discovered: {', '.join(missing)}; {listing}")
        return CheckResult(status=Status.DONE, detail=listing)


# ---------------------------------------------------------------- 6. agents


class Agents(CasaStep):
    id = "agents"
    title = "Cluster agents"
    summary = "kubectl apply -f <agentURL> for each chosen cluster, then wait for ACTIVE"

    def applies(self, a: Any) -> bool:
        return bool(a.install_agents)

    def kubectl(self, ctx: Context, cluster: Document) -> Command:
        context = answers(ctx).kube_context
        argv = ["kubectl", *(["--context", context] if context else []), "apply", "-f",
                agent_url(cluster) or ""]
        return Command(argv=argv, timeout=300,
                       description=f"install the CloudCasa agent on {cluster.name}")

    def _todo(self, ctx: Context) -> list[Document] | None:
        doc = find_account(ctx) if readable(ctx) else None
        if doc is None:
            return None
        return [c for c in chosen(ctx, casa(ctx).clusters_of(doc.id)) if c.state != ACTIVE]

    def plan(self, ctx: Context) -> list[PlanItem]:
        todo = self._todo(ctx)
        if todo is None:
            return [Manual(text="once clusters are discovered: `kubectl apply -f <agentURL>` "
                                "for each, then wait for ACTIVE")]
        items: list[PlanItem] = []
        for cluster in todo:
            if not agent_url(cluster):
                raise OperatorError(f"cluster {cluster.name} has no status.agentURL in "
                                    "CloudCasa yet; rerun in a minute")
            items.append(self.kubectl(ctx, cluster))
            items.append(ApiCall(method="GET", url=url(ctx, f"kubeclusters/{cluster.id}"),
                                 changes_remote=False,
                                 description=f"poll until {cluster.name} is ACTIVE"))
        return items

    def apply(self, ctx: Context) -> None:
        todo = self._todo(ctx) or []
        if ctx.dry_run:
            for cluster in todo:
                ctx.run(self.kubectl(ctx, cluster))
            return
        for cluster in todo:
            result = ctx.run(self.kubectl(ctx, cluster))
            if result.skipped:
                ctx.manual.append(f"install the agent on {cluster.name}: "
                                  f"kubectl apply -f <agentURL> ({result.skipped})")
                continue
            wait(ctx, f"cluster {cluster.name} to become ACTIVE",
                 lambda c=cluster: casa(ctx).kubecluster(c.id), lambda c: c.state == ACTIVE,
                 describe=lambda c: c.state or "no state")

    def check(self, ctx: Context) -> CheckResult:
        doc = find_account(ctx)
        if doc is None:
            return CheckResult(status=Status.PENDING, detail="no account")
        clusters = chosen(ctx, casa(ctx).clusters_of(doc.id))
        if not clusters:
            return CheckResult(status=Status.PENDING, detail="no chosen cluster discovered yet")
        waiting = [c for c in clusters if c.state != ACTIVE]
        if waiting:
            return CheckResult(status=Status.PENDING,
                               detail="; ".join(cluster_line(c) for c in waiting))
        return CheckResult(status=Status.DONE,
                           detail="agents ACTIVE on " + ", ".join(c.name for c in clusters))


# ---------------------------------------------------------------- 7. inventory


class Inventory(CasaStep):
    id = "inventory"
    title = "Cloud inventory"
    summary = "POST /cloudaccounts/<id>/action/inventory (a job, unless one is running)"

    def plan(self, ctx: Context) -> list[PlanItem]:
        doc = find_account(ctx) if readable(ctx) else None
        target = doc.id if doc else "<account id>"
        return [ApiCall(method="POST", url=url(ctx, f"cloudaccounts/{target}/action/inventory"),
                        body={}, description="run the cloud inventory now",
                        execute=lambda: self._trigger(ctx))]

    def _trigger(self, ctx: Context) -> None:
        casa(ctx).inventory(need_account(ctx).id)
        ctx.emit("inventory job requested")

    def check(self, ctx: Context) -> CheckResult:
        record = ctx.previous.get(self.id)
        if record is not None and record.status is Status.DONE:
            return CheckResult(status=Status.DONE,
                               detail=f"last inventory requested {record.at:%Y-%m-%d %H:%M} UTC")
        return CheckResult(status=Status.PENDING,
                           detail="not requested by CloudRig yet (CloudCasa runs one every 12 h)")


STEPS: tuple[Step, ...] = (
    Account(), Registered(), Stack(), Active(), Clusters(), Agents(), Inventory(),
)
