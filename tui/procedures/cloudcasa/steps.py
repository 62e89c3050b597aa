"""The cloudcasa steps, in runbook order: each plans, applies, checks and undoes.

Nothing is remembered between runs but CloudRig's state file; every step finds
the account by its name (and the stack by its name) in CloudCasa and AWS, so a
rerun after a crash, a timeout or a kill picks up the wait where it was instead
of creating anything a second time.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from tui.clients.cloudcasa import CloudCasaClient, CloudCasaError, Document, agent_url
from tui.clients.cloudformation import (
    FAILED_STATES,
    OWNER_TAG,
    READY_STATES,
    REVIEW,
    UPDATE_FAILED_STATES,
    CloudFormation,
)
from tui.context import Context
from tui.errors import OperatorError
from tui.model import ApiCall, CheckResult, Command, Manual, PlanItem, Remote, Status, Step
from tui.poll import poll
from tui.procedures.wire import api_call, preview_call

from .answers import FEATURES, CloudCasaAnswers

KEY = "api_key"
# What CloudRig records creating (Context.create): teardown removes only those.
ACCOUNT, STACK = "cloudcasa-account", "cloudformation-stack"
PENDING, ACTIVE = "PENDING", "ACTIVE"
REGISTERED = {PENDING, ACTIVE}
# The states of a cloud account the runbook describes (no status yet, PENDING, ACTIVE).
# Any other (CloudCasa's vocabulary beyond these is not documented) ends a wait at once.
KNOWN_STATES = {None, PENDING, ACTIVE}
CAPABILITIES = ["CAPABILITY_IAM"]
Ctx = Context[CloudCasaAnswers]

CASA: Remote[CloudCasaAnswers, CloudCasaClient] = Remote(
    key="cloudcasa", name="CloudCasa", secret=KEY,
    client=lambda a, key: CloudCasaClient(a.api_url, key, ca_file=a.api_ca_file),
    base_url=lambda a: f"{a.api_url}/")
"""CloudCasa's API, with the API key."""


def find_account(ctx: Ctx) -> Document | None:
    return ctx.client(CASA).cloudaccount_named(ctx.answers.account_name)


def need_account(ctx: Ctx) -> Document:
    found = find_account(ctx)
    if found is None:
        raise OperatorError(f"CloudCasa has no cloud account named "
                            f"{ctx.answers.account_name!r}; apply the `account` step first")
    return found


def shown_json(value: dict[str, Any]) -> str:
    """A `where=`/`embedded=` value as the runbook writes it (the client URL-encodes)."""
    return json.dumps(value, separators=(",", ":"))


def state_of(doc: Document | None) -> str:
    if doc is None:
        return "not created"
    return doc.state or "no status yet"


def unknown_state(doc: Document) -> str | None:
    """A sentence for an account in a state the runbook does not describe (a wait
    through it would only run into the timeout)."""
    if doc.state in KNOWN_STATES:
        return None
    detail = {k: v for k, v in doc.status.items() if k != "state"}
    said = f" ({json.dumps(detail)[:200]})" if detail else ""
    return (f"cloud account {doc.name} is in state {doc.state}{said}, not one the runbook "
            "waits through (no status yet, PENDING, ACTIVE): check the account in CloudCasa "
            "(and its CloudFormation stack), then rerun")


def wait(ctx: Ctx, what: str, fetch: Any, done: Any, **kwargs: Any) -> Any:
    a = ctx.answers
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


class CasaStep(Step[CloudCasaAnswers]):
    """A step that talks to CloudCasa: it needs the API key."""

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {KEY}


# ---------------------------------------------------------------- 1. account


class Account(CasaStep):
    id = "account"
    title = "Cloud account"
    summary = "POST /cloudaccounts unless an account with this name exists (then kept up to date)"

    def body(self, ctx: Ctx) -> dict[str, Any]:
        a = ctx.answers
        return {"name": a.account_name, "description": a.description, "tags": a.tags,
                "provider_type": a.provider_type}

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        body = self.body(ctx)
        request = CloudCasaClient.create_request("cloudaccounts", body)
        if not ctx.reads(CASA):
            return [preview_call(CASA.url(ctx.answers, request.target()), request,
                                 f"create cloud account {body['name']} unless it exists "
                                 f"({CASA.not_read()})")]
        client = ctx.client(CASA)
        existing = find_account(ctx)
        if existing is None:
            return [api_call(client, request, f"create cloud account {body['name']}",
                             lambda: self._create(ctx, request))]
        if existing.field("provider_type") not in (None, body["provider_type"]):
            raise OperatorError(
                f"CloudCasa already has an account named {body['name']!r} for provider "
                f"{existing.field('provider_type')}; choose another account_name")
        changes = {k: body[k] for k in ("description", "tags")
                   if (existing.field(k) or type(body[k])()) != body[k]}
        if not changes:
            return []
        return [api_call(client, client.patch_request("cloudaccounts", existing, changes),
                         f"update {', '.join(changes)} of cloud account {body['name']} "
                         "(If-Match: its etag)")]

    def _create(self, ctx: Ctx, request: Any) -> Document:
        # A create that timed out may have happened: look again before posting.
        existing = find_account(ctx)
        if existing is not None:
            ctx.adopt(ACCOUNT, existing.name, existing.id)  # a killed run's own
            ctx.emit(f"cloud account {existing.name} exists ({existing.id}); not created again")
            return existing
        # Recorded first: an account a killed run created is adopted by the next run.
        name = request.json["name"]
        doc = ctx.create(ACCOUNT, name, lambda: ctx.client(CASA).send_document(request),
                         id_of=lambda made: made.id)
        ctx.emit(f"created cloud account {name} with id {doc.id}")
        return doc

    def check(self, ctx: Ctx) -> CheckResult:
        doc = find_account(ctx)
        name = ctx.answers.account_name
        if doc is None:
            return CheckResult(status=Status.PENDING, detail=f"no cloud account named {name}")
        return CheckResult(status=Status.DONE,
                           detail=f"account {name} ({doc.id}) is {state_of(doc)}")

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """The account goes only if CloudRig created it (its id is in the ownership
        record); an account of the same name made otherwise stays, named."""
        doc = find_account(ctx)
        if doc is None:
            return []
        if not ctx.adopt(ACCOUNT, doc.name, doc.id):
            return [Manual(text=f"cloud account {doc.name} ({doc.id}) was not created by "
                                "CloudRig (its ownership record does not name it), so it "
                                "stays; delete it in CloudCasa if it should go")]
        return [ApiCall(method="DELETE", url=CASA.url(ctx.answers, f"cloudaccounts/{doc.id}"),
                        description=f"delete cloud account {doc.name} (If-Match: a fresh etag)",
                        execute=lambda: self._delete(ctx, doc))]

    def _delete(self, ctx: Ctx, doc: Document) -> None:
        try:
            ctx.client(CASA).delete_cloudaccount(doc.id)
        except CloudCasaError as exc:
            # The runbook says only that the delete "would fail if it is in use": the
            # status is not documented, so any client error that says so is read as such.
            said = (exc.message or exc.body).lower()
            client_error = exc.status is not None and 400 <= exc.status < 500
            if client_error and exc.status not in (401, 403, 404, 412, 428) and (
                    "in use" in said or "in-use" in said):
                raise OperatorError(in_use_sentence(ctx, doc, exc)) from None
            raise
        ctx.forget(ACCOUNT, doc.id)
        ctx.emit(f"deleted cloud account {doc.name} ({doc.id})")


def in_use_sentence(ctx: Ctx, doc: Document, exc: CloudCasaError) -> str:
    """What uses the account: its clusters that CloudCasa manages (agent installed)."""
    users = [c for c in ctx.client(CASA).clusters_of(doc.id) if c.state != "DISCOVERED"]
    said = exc.message or f"HTTP {exc.status}"
    if users:
        names = ", ".join(f"{c.name} ({c.state or 'no state'})" for c in users)
        noun = "kubecluster" if len(users) == 1 else "kubeclusters"
        what = (f"it is used by {noun} {names}; uninstall their agents first "
                "(`cloudrig teardown cloudcasa --purge` does for those CloudRig installed) "
                "and remove their backups in CloudCasa")
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

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        doc = find_account(ctx) if ctx.reads(CASA) else None
        if doc is not None and doc.state in REGISTERED:
            return []
        target = doc.id if doc else "<new account id>"
        embedded = shown_json({"aws.awsaccount": 1})
        return [ApiCall(method="GET", changes_remote=False,
                        url=CASA.url(ctx.answers, f"cloudaccounts/{target}?embedded={embedded}"),
                        description=f"poll every {a.poll_interval:g}s (up to {a.poll_timeout}s)"
                                    " until status.state is PENDING")]

    def apply(self, ctx: Ctx) -> None:
        if ctx.dry_run:
            ctx.emit("skipped (dry run): wait for the account to reach PENDING", "item")
            return
        doc = need_account(ctx)
        wait(ctx, f"cloud account {doc.name} to reach PENDING",
             lambda: ctx.client(CASA).cloudaccount(doc.id), lambda d: d.state in REGISTERED,
             describe=state_of, failed=unknown_state)

    def check(self, ctx: Ctx) -> CheckResult:
        doc = find_account(ctx)
        if doc is not None and doc.state in REGISTERED:
            return CheckResult(status=Status.DONE, detail=f"account is {doc.state}")
        return CheckResult(status=Status.PENDING, detail=f"account: {state_of(doc)}")


# ---------------------------------------------------------------- 3. CloudFormation


def stack_parameters(a: CloudCasaAnswers, account_id: str,
                     declared: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """CCAccountId plus every feature the template declares, explicitly true or false
    (the runbook's example), and the features turned on that it does not declare:
    CloudFormation refuses a parameter its template lacks (client docstring), and the
    runbook itself shows two template versions (cloudcasa_014, cloudcasa_015)."""
    params = {"CCAccountId": account_id}
    left_out: list[str] = []
    for feature in FEATURES:
        if declared is None or feature in declared:
            params[feature] = "true" if feature in a.features else "false"
        elif feature in a.features:
            left_out.append(feature)
    return params, left_out


def cloudformation(ctx: Ctx) -> Any:
    return ctx.shared("cloudformation", lambda: CloudFormation(ctx.answers.aws_region))


def declared(ctx: Ctx, template_url: str) -> list[str]:
    """The template's parameters (GetTemplateSummary, read once per run)."""
    found: list[str] = ctx.shared(f"template:{template_url}",
                                  lambda: cloudformation(ctx).template_parameters(template_url))
    if "CCAccountId" not in found:
        raise OperatorError(f"the template {template_url} CloudCasa gave has no CCAccountId "
                            f"parameter (it declares {', '.join(found) or 'none'}); it is not "
                            "a CloudCasa template: open the launch URL in a browser instead "
                            "(cloudformation: browser)")
    return found


def stack_tags(a: CloudCasaAnswers) -> dict[str, str]:
    return {OWNER_TAG: "cloudcasa", "cloudrig:account": a.account_name}


def delete_command(a: CloudCasaAnswers) -> str:
    region = f" --region {a.aws_region}" if a.aws_region else ""
    return f"aws cloudformation delete-stack --stack-name {a.stack_name}{region}"


def stack_problem(ctx: Ctx, stack: Any, updating: bool = False) -> str | None:
    """Why `stack` will not get where CloudRig waits for it to go, in a sentence that
    quotes the failed resource's own event; None while it still may."""
    a = ctx.answers
    if stack is None:
        return f"the stack {a.stack_name} disappeared; rerun to create it again"
    if stack.status == REVIEW:
        return (f"stack {stack.name} is REVIEW_IN_PROGRESS: a change set was created (the "
                "launch URL opened in a browser?) but never executed; execute it in the AWS "
                f"console, or delete the stack ({delete_command(a)}), then rerun")
    if stack.status in FAILED_STATES or (updating and stack.status in UPDATE_FAILED_STATES):
        event = cloudformation(ctx).first_failure(stack.name)
        cause = (f"first failure: {event.sentence}" if event else
                 f"{stack.reason or 'no reason given'}")
        if stack.status in UPDATE_FAILED_STATES:
            return (f"the update of stack {stack.name} failed ({stack.status}; {cause}); it "
                    "keeps its previous parameters: fix the cause and rerun")
        return (f"stack {stack.name} is {stack.status} ({cause}); a stack in that state can "
                f"only be deleted: {delete_command(a)}, then rerun")
    return None


class Stack(CasaStep):
    id = "cloudformation"
    title = "CloudFormation stack"
    summary = ("Create the stack from the launch URL's template (boto3, CCAccountId + the "
               "features it declares, CAPABILITY_IAM), update it for a recreated account, or "
               "show the URL to open in a browser")

    def applies(self, a: Any) -> bool:
        return bool(a.provider_type == "aws")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        doc = find_account(ctx) if ctx.reads(CASA) else None
        if doc is not None and doc.state == ACTIVE:
            return []
        launch = launch_parameters(doc) if doc is not None else None
        if a.cloudformation == "browser":
            shown = launch["launch_url"] if launch else "(CloudCasa gives it once PENDING)"
            return [Manual(text=f"Open this link where you are signed in to AWS and create "
                                f"the stack (CloudRig waits for ACTIVE): {shown}")]
        target = f"cloudformation://{a.aws_region or 'default-region'}/stacks/{a.stack_name}"
        items: list[PlanItem] = []
        names = declared(ctx, launch["template_url"]) if launch else None
        params, left_out = stack_parameters(a, doc.id if doc else "<account id>", names)
        for feature in left_out:
            items.append(Manual(text=f"warning: the template {launch and launch['template_url']}"
                                     f" has no {feature} parameter, so it is not sent (the "
                                     "stack does what that template version does)"))
        created = f"create stack {a.stack_name} and wait for CREATE_COMPLETE"
        if launch is None:
            return [*items, preview_call(target, CloudFormation.create_request(
                a.stack_name, "<templateURL from cfLaunchURL>", params, CAPABILITIES,
                stack_tags(a)), created)]
        assert doc is not None
        client = cloudformation(ctx)
        existing = client.stack(a.stack_name)
        if existing is not None:
            problem = stack_problem(ctx, existing)
            if problem:
                raise OperatorError(problem)
            old = existing.parameters.get("CCAccountId")
            if old not in (None, doc.id):
                update = client.update_request(a.stack_name, launch["template_url"], params,
                                               CAPABILITIES)
                return [*items, api_call(
                    client, update, f"update stack {a.stack_name}: CCAccountId {old} → "
                                    f"{doc.id} (the cloud account was recreated), and wait "
                                    "for UPDATE_COMPLETE", lambda: self._update(ctx, update))]
            return [*items, ApiCall(method="GET", url=target, changes_remote=False,
                                    description=f"stack {a.stack_name} exists "
                                                f"({existing.status}); wait for it",
                                    execute=lambda: self._wait_stack(ctx))]
        create = client.create_request(a.stack_name, launch["template_url"], params,
                                       CAPABILITIES, stack_tags(a))
        return [*items, api_call(client, create, created, lambda: self._create(ctx, create))]

    def apply(self, ctx: Ctx) -> None:
        if ctx.answers.cloudformation == "browser" and not ctx.dry_run:
            doc = need_account(ctx)
            launch = launch_parameters(doc)
            if doc.state != ACTIVE and launch:
                ctx.emit(f"open in a browser signed in to AWS: {launch['launch_url']}")
                qr = terminal_qr(launch["launch_url"])
                if qr:
                    ctx.emit("or scan it:\n" + qr)
        ctx.execute(self.plan(ctx))

    def _launch(self, ctx: Ctx) -> tuple[Document, dict[str, str]]:
        doc = need_account(ctx)
        launch = launch_parameters(doc)
        if launch is None:
            raise OperatorError(f"CloudCasa has not given a CloudFormation launch URL for "
                                f"account {doc.name} yet; rerun to wait for it")
        return doc, launch

    def _create(self, ctx: Ctx, create: Any) -> None:
        """CreateStack as planned; a stack of that name that appeared since the plan
        (a racing rerun) is never created twice: waited for when it is for this
        account, else refused with what to do."""
        a = ctx.answers
        doc, _launch = self._launch(ctx)
        client = cloudformation(ctx)
        existing = client.stack(a.stack_name)  # never two stacks, even on a racing rerun
        if existing is not None:
            if existing.parameters.get("CCAccountId") not in (None, doc.id):
                raise OperatorError(f"stack {a.stack_name} appeared meanwhile for another "
                                    "cloud account; rerun apply to plan its update")
        else:
            stack_id = ctx.create(STACK, a.stack_name, lambda: client.send_create(create),
                                  id_of=str)
            ctx.emit(f"created stack {a.stack_name} ({stack_id})")
        self._wait_stack(ctx)

    def _update(self, ctx: Ctx, update: Any) -> None:
        """UpdateStack for an account that was recreated (teardown, then apply): the
        stack's cross-account role must trust the new CCAccountId."""
        a = ctx.answers
        doc, _launch = self._launch(ctx)
        if cloudformation(ctx).send_update(update):
            ctx.emit(f"updating stack {a.stack_name} for cloud account {doc.id}")
            self._wait_stack(ctx, updating=True)

    def _wait_stack(self, ctx: Ctx, updating: bool = False) -> None:
        name = ctx.answers.stack_name
        ready = {"UPDATE_COMPLETE"} if updating else READY_STATES
        wait(ctx, f"stack {name} to be {'updated' if updating else 'created'}",
             lambda: cloudformation(ctx).stack(name),
             lambda s: s is not None and s.status in ready,
             describe=lambda s: s.status if s else "absent",
             failed=lambda s: stack_problem(ctx, s, updating))

    def check(self, ctx: Ctx) -> CheckResult:
        a = ctx.answers
        doc = find_account(ctx)
        if doc is not None and doc.state == ACTIVE:
            return CheckResult(status=Status.DONE, detail="account ACTIVE: the stack did its work")
        if a.cloudformation == "browser":
            return CheckResult(status=Status.MANUAL,
                               detail="create the stack from the launch URL (apply shows it)")
        stack = cloudformation(ctx).stack(a.stack_name)
        if stack is None:
            return CheckResult(status=Status.PENDING, detail=f"no stack {a.stack_name}")
        problem = stack_problem(ctx, stack)
        if problem:
            return CheckResult(status=Status.FAILED, detail=problem)
        status = Status.DONE if stack.status.endswith("_COMPLETE") else Status.PENDING
        return CheckResult(status=status, detail=f"stack {a.stack_name} is {stack.status}")

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """The stack (CloudCasa's cross-account IAM role in the AWS account) is deleted
        only with --purge and only when CloudRig created it (its cloudrig:procedure
        tag, and its StackId in the ownership record); otherwise teardown says that it
        stays and how to delete it."""
        a = ctx.answers
        if a.cloudformation == "browser":
            return [Manual(text=(
                "the CloudFormation stack you created from the launch URL (CloudCasa's IAM "
                "role in your AWS account) stays; delete it in the AWS console, or "
                "`aws cloudformation delete-stack --stack-name <its name>`"))]
        stack = cloudformation(ctx).stack(a.stack_name)
        if stack is None:
            return []
        ours = (stack.tags.get(OWNER_TAG) == "cloudcasa"
                and ctx.adopt(STACK, a.stack_name, stack.stack_id))
        if ctx.purge and ours:
            client = cloudformation(ctx)
            return [api_call(client, client.delete_request(a.stack_name),
                             f"delete stack {a.stack_name} (CloudCasa's IAM role) and wait "
                             "for DELETE_COMPLETE", lambda: self._delete(ctx))]
        why = ("" if ours else ", which CloudRig did not create (no cloudrig:procedure tag, "
                               "or not in its ownership record),")
        how = " or `cloudrig teardown cloudcasa --purge`" if ours else ""
        return [Manual(text=(
            f"the CloudFormation stack {a.stack_name}{why} stays in AWS with CloudCasa's "
            f"cross-account IAM role; delete it with `{delete_command(a)}`{how}"))]

    def _delete(self, ctx: Ctx) -> None:
        name = ctx.answers.stack_name
        client = cloudformation(ctx)
        stack = client.stack(name)
        client.delete(name)
        wait(ctx, f"stack {name} to be deleted", lambda: cloudformation(ctx).stack(name),
             lambda s: s is None, describe=lambda s: s.status if s else "deleted",
             failed=lambda s: (f"stack {name} is DELETE_FAILED ({s.reason}); delete it in "
                               "the AWS console" if s is not None
                               and s.status == "DELETE_FAILED" else None))
        if stack is not None:
            ctx.forget(STACK, stack.stack_id)


def terminal_qr(text: str) -> str | None:
    """The launch URL as a QR code of text blocks (handy over SSH: scan it with a phone
    signed in to AWS). None when segno is not installed."""
    try:
        import segno  # deferred: start-up (segno)
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

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        doc = find_account(ctx) if ctx.reads(CASA) else None
        if doc is not None and doc.state == ACTIVE:
            return []
        target = doc.id if doc else "<new account id>"
        return [ApiCall(method="GET", url=CASA.url(ctx.answers, f"cloudaccounts/{target}"),
                        changes_remote=False,
                        description=f"poll every {a.poll_interval:g}s (up to "
                                    f"{a.poll_timeout}s) until status.state is ACTIVE")]

    def apply(self, ctx: Ctx) -> None:
        if ctx.dry_run:
            ctx.emit("skipped (dry run): wait for the account to become ACTIVE", "item")
            return
        doc = need_account(ctx)
        if ctx.answers.provider_type == "azure" and doc.state != ACTIVE:
            ctx.emit("finish the Azure registration of this account in CloudCasa (the "
                     "runbook documents only AWS's steps); CloudRig waits for ACTIVE",
                     "warning")
        a = ctx.answers
        watch_stack = a.provider_type == "aws" and a.cloudformation == "boto3"

        def failed(d: Document) -> str | None:
            """An unknown state, or (boto3 path) a stack that cannot make it ACTIVE: the
            account would stay PENDING until the timeout."""
            problem = unknown_state(d)
            if problem is None and watch_stack and d.state == PENDING:
                problem = stack_problem(ctx, cloudformation(ctx).stack(a.stack_name))
            return problem

        wait(ctx, f"cloud account {doc.name} to become ACTIVE",
             lambda: ctx.client(CASA).cloudaccount(doc.id), lambda d: d.state == ACTIVE,
             describe=state_of, failed=failed)

    def check(self, ctx: Ctx) -> CheckResult:
        doc = find_account(ctx)
        if doc is not None and doc.state == ACTIVE:
            return CheckResult(status=Status.DONE, detail="account ACTIVE")
        return CheckResult(status=Status.PENDING, detail=f"account: {state_of(doc)}")


# ---------------------------------------------------------------- 5. clusters


def chosen(ctx: Ctx, clusters: list[Document]) -> list[Document]:
    wanted = ctx.answers.clusters
    return [c for c in clusters if not wanted or c.name in wanted]


def cluster_line(cluster: Document) -> str:
    agent = "agent running" if cluster.state == ACTIVE else (
        "agent applied, registering" if cluster.state not in (None, "DISCOVERED")
        else "no agent")
    return f"{cluster.name} {cluster.state or 'no state'} ({agent})"


def discovery_needed(ctx: Ctx, found: list[Document]) -> bool:
    """Whether the clusters step must wait for the inventory: a named cluster is not
    there yet, or (agents wanted, none named) none at all is."""
    a = ctx.answers
    names = {c.name for c in found}
    if a.clusters:
        return any(n not in names for n in a.clusters)
    return a.install_agents and not found


class Clusters(CasaStep):
    id = "clusters"
    title = "Discovered clusters"
    summary = ('GET /kubeclusters?where={"status.cloudaccount": <id>}; when they are not '
               "there yet, run the inventory and wait for its discovery")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        doc = find_account(ctx) if ctx.reads(CASA) else None
        where = shown_json({"status.cloudaccount": doc.id if doc else "<account id>"})
        wanted = ctx.answers.clusters
        waits = (f", waiting for {', '.join(wanted)}" if wanted else
                 ", waiting for the first" if ctx.answers.install_agents else "")
        items: list[PlanItem] = [ApiCall(
            method="GET", url=CASA.url(ctx.answers, f"kubeclusters?where={where}"),
            changes_remote=False,
            description=f"list discovered clusters{waits}")]
        inventory = CloudCasaClient.inventory_request(doc.id if doc else "<account id>")
        why = "run the cloud inventory: the clusters are not discovered yet"
        if doc is None:
            items.append(preview_call(CASA.url(ctx.answers, inventory.target()), inventory,
                                      why.replace(": the", " if the")))
        elif discovery_needed(ctx, ctx.client(CASA).clusters_of(doc.id)):
            items.append(api_call(ctx.client(CASA), inventory, why, lambda: self._inventory(ctx,
                                                                                   inventory)))
        return items

    def _inventory(self, ctx: Ctx, request: Any) -> None:
        ctx.client(CASA).send(request)
        ctx.shared("inventory-requested", lambda: True)
        ctx.emit("inventory job requested: CloudCasa discovers the clusters with it")

    def apply(self, ctx: Ctx) -> None:
        """The inventory runs asynchronously once the account is ACTIVE (the runbook:
        "an inventory job would be automatically run"), so the clusters may not be there
        yet: then CloudRig requests one (it "will create a cloud inventory job if it is
        not already running") and waits, with the poll's timeout, for the discovery."""
        if ctx.dry_run:
            ctx.emit("skipped (dry run): list the discovered clusters", "item")
            return
        doc = need_account(ctx)
        a = ctx.answers
        ctx.execute([i for i in self.plan(ctx) if isinstance(i, ApiCall) and i.changes_remote])
        found = ctx.client(CASA).clusters_of(doc.id)
        if discovery_needed(ctx, found):

            def missing(found: list[Document]) -> str:
                names = {c.name for c in found}
                return ", ".join(n for n in a.clusters if n not in names)

            found = wait(ctx, "the inventory to discover " + (", ".join(a.clusters)
                                                               or "the account's clusters"),
                         lambda: ctx.client(CASA).clusters_of(doc.id),
                         lambda f: not discovery_needed(ctx, f),
                         describe=lambda f: (f"missing {missing(f)}" if missing(f)
                                             else f"{len(f)} found"))
        if not found:
            ctx.emit("no clusters discovered in this account (install_agents is off, so "
                     "CloudRig does not wait for them)", "warning")
        for cluster in found:
            ctx.emit(cluster_line(cluster))

    def check(self, ctx: Ctx) -> CheckResult:
        doc = find_account(ctx)
        if doc is None:
            return CheckResult(status=Status.PENDING, detail="no account")
        found = ctx.client(CASA).clusters_of(doc.id)
        missing = [n for n in ctx.answers.clusters if n not in {c.name for c in found}]
        listing = "; ".join(cluster_line(c) for c in found) or "none discovered yet"
        if missing:
            return CheckResult(status=Status.PENDING,
                               detail=f"not discovered: {', '.join(missing)}; {listing}")
        if discovery_needed(ctx, found):
            return CheckResult(status=Status.PENDING, detail=listing)
        return CheckResult(status=Status.DONE, detail=listing)


# ---------------------------------------------------------------- 6. agents


NO_AGENT = (None, "DISCOVERED")


def contexts(ctx: Ctx, clusters: list[Document]) -> dict[str, str]:
    """cluster name → the kubeconfig context that reaches that cluster: kube_contexts
    names it; else kube_context when it is the only cluster (with several, it is
    refused: it cannot be every cluster's); else its
    `status.awsekscluster_arn`, the context name `aws eks update-kubeconfig` creates
    (AWS CLI reference: --alias "defaults to match cluster ARN"). A cluster with none
    is refused: one context for every cluster put each one's agent into the same
    cluster, where the last one applied replaces the others (one cloudcasa-io
    namespace)."""
    a = ctx.answers
    found: dict[str, str] = {}
    for cluster in clusters:
        arn = cluster.status.get("awsekscluster_arn")
        if cluster.name in a.kube_contexts:
            found[cluster.name] = a.kube_contexts[cluster.name]
        elif a.kube_context and len(clusters) == 1:
            found[cluster.name] = a.kube_context
        elif a.kube_context:
            raise OperatorError(
                f"kube_context names one context but {len(clusters)} clusters get agents "
                f"({', '.join(c.name for c in clusters)}): map each in kube_contexts "
                f"(e.g. kube_contexts: {{{cluster.name}: <its context>}}), leave "
                "kube_context empty to use each EKS cluster's ARN, or name one cluster in "
                "clusters")
        elif arn:
            found[cluster.name] = str(arn)
        else:
            raise OperatorError(
                f"cluster {cluster.name} has no kube context: CloudCasa gives no "
                "status.awsekscluster_arn for it; map it in kube_contexts "
                f"(kube_contexts: {{{cluster.name}: <its kubeconfig context>}})")
    return found


class Agents(CasaStep):
    id = "agents"
    title = "Cluster agents"
    summary = ("kubectl --context <that cluster's> apply -f <agentURL> for each chosen "
               "cluster, then wait for ACTIVE")

    def applies(self, a: Any) -> bool:
        return bool(a.install_agents)

    def kubectl(self, cluster: Document, context: str, verb: str = "apply") -> Command:
        argv = ["kubectl", "--context", context, verb, "-f", agent_url(cluster) or ""]
        if verb == "delete":
            argv.append("--ignore-not-found")
        what = "install" if verb == "apply" else "uninstall"
        return Command(argv=argv, timeout=300,
                       description=f"{what} the CloudCasa agent on {cluster.name} "
                                   f"(context {context})")

    def _todo(self, ctx: Ctx) -> list[Document] | None:
        doc = find_account(ctx) if ctx.reads(CASA) else None
        if doc is None:
            return None
        return [c for c in chosen(ctx, ctx.client(CASA).clusters_of(doc.id)) if c.state != ACTIVE]

    def _commands(self, ctx: Ctx, todo: list[Document]) -> list[tuple[Document, Command]]:
        for cluster in todo:
            if not agent_url(cluster):
                raise OperatorError(f"cluster {cluster.name} has no status.agentURL in "
                                    "CloudCasa yet; rerun in a minute")
        where = contexts(ctx, todo)
        return [(c, self.kubectl(c, where[c.name])) for c in todo]

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        todo = self._todo(ctx)
        if todo is None:
            return [Manual(text="once clusters are discovered: `kubectl --context <its "
                                "context> apply -f <agentURL>` for each, then wait for ACTIVE")]
        items: list[PlanItem] = []
        for cluster, command in self._commands(ctx, todo):
            items.append(command)
            items.append(ApiCall(method="GET",
                                 url=CASA.url(ctx.answers, f"kubeclusters/{cluster.id}"),
                                 changes_remote=False,
                                 description=f"poll until {cluster.name} is ACTIVE"))
        return items

    def apply(self, ctx: Ctx) -> None:
        todo = self._todo(ctx) or []
        commands = self._commands(ctx, todo)
        if ctx.dry_run:
            for _cluster, command in commands:
                ctx.run(command)
            return
        for cluster, command in commands:
            result = ctx.run(command)
            if result.skipped:
                ctx.manual.append(f"install the agent on {cluster.name}: "
                                  f"kubectl --context {command.argv[2]} apply -f <agentURL> "
                                  f"({result.skipped})")
                continue
            wait(ctx, f"cluster {cluster.name} to become ACTIVE",
                 lambda c=cluster: ctx.client(CASA).kubecluster(c.id), lambda c: c.state == ACTIVE,
                 describe=lambda c: c.state or "no state")

    def check(self, ctx: Ctx) -> CheckResult:
        doc = find_account(ctx)
        if doc is None:
            return CheckResult(status=Status.PENDING, detail="no account")
        clusters = chosen(ctx, ctx.client(CASA).clusters_of(doc.id))
        if not clusters:
            return CheckResult(status=Status.PENDING, detail="no chosen cluster discovered yet")
        waiting = [c for c in clusters if c.state != ACTIVE]
        if waiting:
            return CheckResult(status=Status.PENDING,
                               detail="; ".join(cluster_line(c) for c in waiting))
        return CheckResult(status=Status.DONE,
                           detail="agents ACTIVE on " + ", ".join(c.name for c in clusters))

    def undo_plan(self, ctx: Ctx) -> list[PlanItem]:
        """The agents CloudRig installed (the step has a record) are uninstalled with
        --purge: `kubectl delete -f <agentURL>` through each cluster's own context
        removes what `apply -f` created; without --purge teardown says they stay."""
        doc = find_account(ctx)
        if doc is None:
            return []
        installed = [c for c in chosen(ctx, ctx.client(CASA).clusters_of(doc.id))
                     if c.state not in NO_AGENT and agent_url(c)]
        if not installed:
            return []
        where = contexts(ctx, installed)
        if ctx.purge and self.id in ctx.previous:
            return [self.kubectl(c, where[c.name], "delete") for c in installed]
        listing = ", ".join(f"{c.name} (context {where[c.name]})" for c in installed)
        how = ("`cloudrig teardown cloudcasa --purge` uninstalls them"
               if self.id in ctx.previous else "CloudRig did not install them")
        return [Manual(text=(
            f"the CloudCasa agents stay on {listing}; uninstall one with `kubectl --context "
            f"<context> delete -f <its agentURL>` ({how}); CloudCasa keeps the account in "
            "use while they run"))]


# ---------------------------------------------------------------- 7. inventory


class Inventory(CasaStep):
    id = "inventory"
    title = "Cloud inventory"
    summary = "POST /cloudaccounts/<id>/action/inventory (a job, unless one is running)"

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        doc = find_account(ctx) if ctx.reads(CASA) else None
        request = CloudCasaClient.inventory_request(doc.id if doc else "<account id>")
        if doc is None:
            return [preview_call(CASA.url(ctx.answers, request.target()), request,
                                 "run the cloud inventory now")]
        if "inventory-requested" in ctx.resources:
            return []  # the clusters step requested one in this run: not again
        return [api_call(ctx.client(CASA), request, "run the cloud inventory now",
                         lambda: self._trigger(ctx, request))]

    def _trigger(self, ctx: Ctx, request: Any) -> None:
        ctx.client(CASA).send(request)
        ctx.emit("inventory job requested")

    def check(self, ctx: Ctx) -> CheckResult:
        record = ctx.previous.get(self.id)
        if record is not None and record.status is Status.DONE:
            return CheckResult(status=Status.DONE,
                               detail=f"last inventory requested {record.at:%Y-%m-%d %H:%M} UTC")
        return CheckResult(status=Status.PENDING,
                           detail="not requested by CloudRig yet (CloudCasa runs one every 12 h)")


STEPS: tuple[Step, ...] = (
    Account(), Registered(), Stack(), Active(), Clusters(), Agents(), Inventory(),
)
