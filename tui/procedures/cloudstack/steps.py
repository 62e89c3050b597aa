"""The cloudstack steps: preflight, the instance's UserData provider, its user data,
and (mode iso) the config drive. Every remote change is planned from a fresh read,
so a second apply makes no change call."""

from __future__ import annotations

from typing import Any

from tui.clients.cloudstack import FIRST_POLL, GET_LIMIT, CloudStackClient, Job
from tui.context import Context
from tui.errors import Interrupted, OperatorError
from tui.model import ApiCall, CheckResult, FileWrite, PlanItem, Remote, Status, Step
from tui.poll import poll
from tui.procedures.wire import api_call

from . import guest
from .answers import CloudStackAnswers
from .configdrive import ConfigDriveData, build_iso

SECRET = "secret_key"
PASSWORD = "vm_password"
DEFAULT_LIMIT = 32768
"""vm.userdata.max.length's default, used when the setting cannot be read."""
LIMIT_SETTING = "vm.userdata.max.length"
Ctx = Context[CloudStackAnswers]


def _signed(a: CloudStackAnswers, secret: str) -> CloudStackClient:
    assert a.api_url and a.api_key  # mode update requires both (CloudStackAnswers)
    return CloudStackClient(a.api_url, a.api_key, secret, ca_file=a.ca_file,
                            job_timeout=float(a.job_timeout))


CLOUDSTACK: Remote[CloudStackAnswers, CloudStackClient] = Remote(
    key="cloudstack", name="CloudStack", secret=SECRET, client=_signed,
    base_url=lambda a: f"{a.api_url}?command=", unread=f"API not read: no {SECRET} at hand")
"""The signed CloudStack API (mode update)."""


def _is_update(a: Any) -> bool:
    return isinstance(a, CloudStackAnswers) and a.mode == "update"


class ApiStep(Step[CloudStackAnswers]):
    """A step of mode update: it talks to the API with the secret key."""

    def applies(self, answers: Any) -> bool:
        return _is_update(answers)

    def needs_secrets(self, ctx: Ctx) -> set[str]:
        return {SECRET}


# ---------------------------------------------------------------- 1. preflight


def limits(ctx: Ctx) -> dict[str, Any]:
    """Version and user-data limit, read once per run."""
    return ctx.shared("limits", lambda: _read_limits(ctx.client(CLOUDSTACK)))


def _read_limits(api: CloudStackClient) -> dict[str, Any]:
    version = api.capabilities().get("cloudstackversion", "unknown")
    value = api.configuration(LIMIT_SETTING)
    limit = int(value) if value and value.isdigit() else DEFAULT_LIMIT
    source = LIMIT_SETTING if value and value.isdigit() else "the default (setting unreadable)"
    return {"version": version, "limit": limit, "source": source}


def size_problem(ctx: Ctx) -> str | None:
    wanted = ctx.answers.user_data_b64() or ""
    info = limits(ctx)
    if len(wanted) > info["limit"]:
        where = "user_data_file" if ctx.answers.user_data_file else "user_data"
        return (f"{where} is {len(wanted)} bytes after base64, over this cloud's limit of "
                f"{info['limit']} ({info['source']}); shorten it, or ask the cloud admin to "
                f"raise {LIMIT_SETTING}")
    return None


class Preflight(ApiStep):
    id = "preflight"
    title = "Credentials, version and user-data limit"
    summary = "Signed listCapabilities, vm.userdata.max.length, and the user data's size"

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        return [ApiCall(method="GET", url=CLOUDSTACK.url(ctx.answers, "listCapabilities"),
                        changes_remote=False,
                        description="check the keys and read the version and user-data limit",
                        execute=lambda: self._verify(ctx))]

    def _verify(self, ctx: Ctx) -> None:
        info = limits(ctx)
        ctx.emit(f"CloudStack {info['version']}; user data limit {info['limit']} bytes "
                 f"after base64 ({info['source']})")
        if problem := size_problem(ctx):
            raise OperatorError(problem)

    def check(self, ctx: Ctx) -> CheckResult:
        info = limits(ctx)
        if problem := size_problem(ctx):
            return CheckResult(status=Status.FAILED, detail=problem)
        return CheckResult(status=Status.DONE, detail=f"CloudStack {info['version']}, limit "
                           f"{info['limit']} bytes")


# ---------------------------------------------------------------- 2. instance


def instance(ctx: Ctx) -> dict[str, Any]:
    """The one instance the answers name (read once per run)."""
    return ctx.shared("instance", lambda: _find_instance(ctx.answers, ctx.client(CLOUDSTACK)))


def _find_instance(a: CloudStackAnswers, api: CloudStackClient) -> dict[str, Any]:
    assert a.vm
    zone_id = _zone_id(api, a.zone) if a.zone else None
    matches = api.find_vm(a.vm, zone_id)
    if not matches:
        where = f" in zone {a.zone}" if a.zone else ""
        raise OperatorError(f"no instance named or with id {a.vm!r}{where} is visible to "
                            "this API key; check vm (and zone)")
    if len(matches) > 1:
        zones = ", ".join(sorted({m.get("zonename", "?") for m in matches}))
        raise OperatorError(f"{len(matches)} instances are named {a.vm!r} (zones: {zones});"
                            " give zone, or the instance's id as vm")
    return matches[0]


def _zone_id(api: CloudStackClient, zone: str) -> str:
    for item in api.list_all("listZones", "zone"):
        if zone in (item.get("id"), item.get("name")):
            return str(item["id"])
    raise OperatorError(f"zone {zone!r} is not a zone this API key can see; check zone")


def provider(ctx: Ctx) -> tuple[str, list[str]]:
    """Which provider serves UserData to the instance, and its networks' names: the
    first provider any of its networks lists for the UserData service. Any provider
    named there serves it: an offering can only give UserData to a provider whose
    element implements UserDataServiceProvider (apache/cloudstack
    api/src/main/java/com/cloud/network/Network.java `Provider`: VirtualRouter,
    VpcVirtualRouter — every VPC tier —, ConfigDrive, Tungsten, …)."""
    vm = instance(ctx)
    api = ctx.client(CLOUDSTACK)
    names, providers = [], []
    for nic in vm.get("nic", []):
        names.append(nic.get("networkname") or nic.get("networkid", "?"))
        for net in api.list_all("listNetworks", "network", {"id": nic.get("networkid"),
                                                            "listall": True}):
            for service in net.get("service", []):
                if service.get("name") == "UserData":
                    providers += [p["name"] for p in service.get("provider", [])
                                  if p.get("name")]
    if providers:
        return providers[0], names
    raise OperatorError(
        f"instance {vm.get('name')}'s {'network' if len(names) == 1 else 'networks'} "
        f"{', '.join(names) or '(none)'} {'offers' if len(names) == 1 else 'offer'} no "
        "UserData service (no provider such as VirtualRouter, VpcVirtualRouter or "
        "ConfigDrive), so user data would never reach it; use a network offering with "
        "UserData enabled")


class Instance(ApiStep):
    id = "instance"
    title = "The instance and its UserData provider"
    summary = ("Find the instance and which provider (VirtualRouter, VpcVirtualRouter, "
               "ConfigDrive, …) serves its user data")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        return [ApiCall(method="GET", url=CLOUDSTACK.url(ctx.answers, "listVirtualMachines"),
                        changes_remote=False,
                        description="find the instance and its networks' UserData provider",
                        execute=lambda: self._report(ctx))]

    def _report(self, ctx: Ctx) -> None:
        name, networks = provider(ctx)
        vm = instance(ctx)
        ctx.emit(f"instance {vm['name']} ({vm['id']}, {vm.get('state')}): user data served "
                 f"by {name} on {', '.join(networks)}")

    def check(self, ctx: Ctx) -> CheckResult:
        name, _networks = provider(ctx)
        vm = instance(ctx)
        return CheckResult(status=Status.DONE, detail=f"{vm['name']}: {vm.get('state')}, "
                           f"user data by {name}")


# ---------------------------------------------------------------- 3. user data


class UserData(ApiStep):
    id = "userdata"
    title = "The instance's user data"
    summary = ("Set it with updateVirtualMachine (POST when large); stop and start a running "
               "instance when asked")

    def plan(self, ctx: Ctx) -> list[PlanItem]:
        a = ctx.answers
        wanted = a.user_data_b64() or ""
        post = len(wanted) >= GET_LIMIT
        method = "POST" if post else "GET"
        sent = f"userdata is user_data as {len(wanted)} bytes of base64"
        guest_note = guest.note(a.user_data_text())
        tail = f"; {guest_note}" if guest_note else ""
        if not ctx.reads(CLOUDSTACK):
            return [ApiCall(method=method,
                            url=CLOUDSTACK.url(ctx.answers, "updateVirtualMachine"),
                            body={"id": "(the instance)", "userdata": wanted},
                            description=f"set the user data if it differs ({sent}; "
                            f"{CLOUDSTACK.not_read()}){tail}")]
        api = ctx.client(CLOUDSTACK)
        vm = instance(ctx)
        if api.user_data(vm["id"]) == wanted:
            return []
        # Only a running instance is stopped and started again: one the operator
        # stopped stays stopped (restart would otherwise boot it).
        restart = a.restart and vm.get("state") == "Running"
        items: list[PlanItem] = []
        if restart:
            items.append(self._job(ctx, "stopVirtualMachine", vm, "stop the instance"))
        update = api.command("updateVirtualMachine", {"id": vm["id"], "userdata": wanted},
                             post=post, changes=True)
        items.append(api_call(api, update, f"set the user data of {vm['name']} ({sent}"
                              + ("; POST: over the GET limit)" if post else ")") + tail))
        if restart:
            items.append(self._job(ctx, "startVirtualMachine", vm, "start the instance"))
        return items

    def _job(self, ctx: Ctx, command: str, vm: dict[str, Any], what: str) -> ApiCall:
        api = ctx.client(CLOUDSTACK)
        start = api.command(command, {"id": vm["id"]}, changes=True)
        return api_call(api, start, f"{what} (an async job, followed to its end)",
                        lambda: follow_job(ctx, api, command, api.send(start)))

    def apply(self, ctx: Ctx) -> None:
        a = ctx.answers
        items = self.plan(ctx)
        if not items:
            ctx.emit("user data already as wanted: nothing to change")
            return
        vm = instance(ctx)
        state = vm.get("state")
        ctx.execute(items)
        name, _networks = provider(ctx)
        if state == "Running" and not a.restart:
            where = ("its config drive is rebuilt: remount it" if name == "ConfigDrive"
                     else f"{name} serves the new user data now")
            ctx.emit(f"{vm['name']} is running: {where}; most guests read user data only "
                     "at boot, so it takes effect at its next restart", "warning")
        elif a.restart and state != "Running":
            ctx.emit(f"{vm['name']} is {state or 'not running'}: user data set, and it stays "
                     "that way (restart stops and starts only a running instance); it reads "
                     "the new user data when it is next started", "warning")
        if guest_note := guest.note(a.user_data_text()):
            ctx.emit(guest_note, "warning")

    def check(self, ctx: Ctx) -> CheckResult:
        api = ctx.client(CLOUDSTACK)
        vm = instance(ctx)
        name, _networks = provider(ctx)
        last = _last_job(api, vm["id"])
        tail = f"; provider {name}" + (f"; last job {last}" if last else "")
        if api.user_data(vm["id"]) == (ctx.answers.user_data_b64() or ""):
            return CheckResult(status=Status.DONE, detail=f"user data matches{tail}")
        return CheckResult(status=Status.DRIFTED, detail=f"user data differs{tail}")


def follow_job(ctx: Ctx, api: CloudStackClient, command: str,
               started: dict[str, Any]) -> Job:
    """Poll the job an async command started until it ends (the shared `poll`: progress,
    cancel, timeout); a cancel, Ctrl+C or timeout leaves it running and says its id."""
    jobid = api.job_id(command, started)
    ctx.emit(f"{command}: job {jobid} started")
    left = (f"job {jobid} is still running on the server: follow it with "
            f"queryAsyncJobResult jobid={jobid}")
    try:
        job = poll(lambda: api.job_result(jobid, command), lambda job: job.status == 1,
                   what=f"CloudStack job {jobid} ({command})", ctx=ctx,
                   timeout=api.job_timeout, interval=api.poll_interval, first=FIRST_POLL,
                   describe=lambda job: "succeeded" if job.status == 1 else "pending" + (
                       f" (progress {job.progress})" if job.progress else ""),
                   left=left, hint="job_timeout sets how long CloudRig waits")
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while waiting for CloudStack job {jobid} "
                          f"({command}); {left}, then rerun") from None
    return job


def _last_job(api: CloudStackClient, vm_id: str) -> str | None:
    """The newest async job on the instance, as `command id: result` (dashboard)."""
    try:
        jobs = api.list_all("listAsyncJobs", "asyncjobs", {"listall": True})
    except OperatorError:
        return None
    mine = [j for j in jobs if j.get("jobinstanceid") == vm_id]
    if not mine:
        return None
    job = max(mine, key=lambda j: j.get("created", ""))
    result = {0: "pending", 1: "succeeded", 2: "failed"}.get(int(job.get("jobstatus", 0)), "?")
    name = str(job.get("cmd", "")).rsplit(".", 1)[-1].removesuffix("Cmd")
    command = name[:1].lower() + name[1:]  # the API command's own spelling
    return f"{command} {job.get('jobid')}: {result}"


# ---------------------------------------------------------------- 4. config drive


def drive_data(ctx: Ctx) -> ConfigDriveData:
    a = ctx.answers
    text = a.user_data_text()
    metadata = {
        "service-offering": a.service_offering, "availability-zone": a.availability_zone,
        "local-hostname": a.local_hostname, "instance-id": a.instance_id, "vm-id": a.vm_id,
        "public-keys": "\n".join(a.public_keys) or None,
    }
    password = ctx.secret(PASSWORD) if ctx.secrets.available(PASSWORD) else None
    return ConfigDriveData(user_data=text.encode() if text is not None else None,
                           metadata={k: v for k, v in metadata.items() if v},
                           password=password, vendor_data=a.vendor_data)


class ConfigDrive(Step[CloudStackAnswers]):
    id = "configdrive"
    title = "Config drive ISO"
    summary = "An ISO laid out as CloudStack's ConfigDriveBuilder does (label config-2)"

    def applies(self, answers: Any) -> bool:
        return isinstance(answers, CloudStackAnswers) and answers.mode == "iso"

    def files(self, ctx: Ctx) -> list[FileWrite]:
        a = ctx.answers
        assert a.iso_path
        data = drive_data(ctx)
        try:
            image = build_iso(data)
        except ValueError as exc:
            raise OperatorError(str(exc)) from None
        secret = data.password is not None
        return [FileWrite(path=a.iso_path, content="", binary=image, secret=secret,
                          mode=0o600 if secret else 0o644,
                          description="config drive ISO"
                                      + (" (holds the instance password)" if secret else ""))]


STEPS: tuple[Step, ...] = (Preflight(), Instance(), UserData(), ConfigDrive())
