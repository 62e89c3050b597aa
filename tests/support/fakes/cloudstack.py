"""A CloudStack API on 127.0.0.1, written from CloudStack's server behaviour.

- every request is verified as ApiServer.verifyRequest does: parameters sorted
  by name, values encoded like Java's URLEncoder (+ → %20), lower-cased,
  HMAC-SHA1; `signatureVersion=3` needs an `expires` in the future. Any failure
  answers HTTP 401 with ApiServlet's body "unable to verify user credentials
  and/or request signature";
- errors carry the HTTP status = CloudStack error code and
  `{"<command>response": {"uuidList": [], "errorcode", "cserrorcode", "errortext"}}`;
- user data (apache/cloudstack engine/userdata/.../UserDataManagerImpl.java
  `validateUserData` @42ef7c07): must be base64, GET requests refuse base64 of 4096
  characters or more, `vm.userdata.max.length` caps it, and nothing (decoded length
  0) is "User data is too short";
- networks name the provider of each service; a VPC tier's are `VpcVirtualRouter`;
- stop/start are async: they answer a jobid whose `queryAsyncJobResult` stays
  pending (jobstatus 0) for `job_polls` polls, then succeeds (1) or fails (2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

from fakes.server import FakeService, Reply, Request

USERDATA_PROVIDERS = {"VirtualRouter", "VpcVirtualRouter", "ConfigDrive", "Tungsten"}
"""Providers whose network element implements UserDataServiceProvider in
apache/cloudstack (VirtualRouterElement, VpcVirtualRouterElement, ConfigDriveNetworkElement,
TungstenElement); `Network.Provider` in api/src/main/java/com/cloud/network/Network.java
names them. An offering cannot give UserData to any other provider."""
AUTH_ERROR = "unable to verify user credentials and/or request signature"
ASYNC = {"stopVirtualMachine", "startVirtualMachine"}
CHANGES = {"updateVirtualMachine", *ASYNC}


def _server_string(params: dict[str, str]) -> str:
    # java.net.URLEncoder leaves A-Za-z0-9 . - * _ and turns space into '+'.
    pairs = []
    for name in sorted(params):
        if name == "signature":
            continue
        encoded = quote(params[name], safe="*-._").replace("~", "%7E")
        pairs.append(f"{name}={encoded}")
    return "&".join(pairs).lower()


def error_body(command: str, code: int, text: str) -> dict[str, Any]:
    return {f"{command.lower()}response": {"uuidList": [], "errorcode": code,
                                            "cserrorcode": 4350 if code == 431 else 9999,
                                            "errortext": text}}


class FakeCloudStack(FakeService):
    def __init__(self, api_key: str = "fake-api-key", secret_key: str = "s3cret/Key+=~",
                 job_polls: int = 2, max_length: int = 32768) -> None:
        super().__init__()
        self.api_key = api_key
        self.secret_key = secret_key
        self.job_polls = job_polls
        self.config = {"vm.userdata.max.length": str(max_length)}
        self.config_readable = True
        self.jobs: dict[str, dict[str, Any]] = {}
        self.fail_jobs: list[str] = []
        """Commands whose next job fails (consumed in order)."""
        self.zone = {"id": str(uuid.uuid4()), "name": "zone-1"}
        self.networks: dict[str, dict[str, Any]] = {}
        self.vms: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1)
        self.version = "4.20.1.0"

    # ------------------------------------------------------------ fixtures

    def add_network(self, name: str, provider: str | None,
                    vpc: str | None = None) -> dict[str, Any]:
        """A guest network as listNetworks shows it. `provider` serves its UserData
        service (None: the offering has no UserData). `vpc` makes it a tier of that
        VPC: every service of a VPC tier is the VPC router's, `VpcVirtualRouter`."""
        if provider is not None and provider not in USERDATA_PROVIDERS:
            raise ValueError(f"Provider {provider} doesn't support service UserData "
                             "(createNetworkOffering refuses it)")
        router = "VpcVirtualRouter" if vpc else "VirtualRouter"
        if vpc and provider == "VirtualRouter":
            raise ValueError("a VPC tier's services are provided by VpcVirtualRouter")
        services = [{"name": "Dhcp", "provider": [{"name": router}]},
                    {"name": "Dns", "provider": [{"name": router}]}]
        if provider:
            services.append({"name": "UserData", "provider": [{"name": provider}]})
        net = {"id": str(uuid.uuid4()), "name": name, "zoneid": self.zone["id"],
               "service": services}
        if vpc:
            net.update(vpcid=str(uuid.uuid5(uuid.NAMESPACE_DNS, vpc)), vpcname=vpc)
        self.networks[net["id"]] = net
        return net

    def add_vm(self, name: str, networks: list[dict[str, Any]], state: str = "Running",
               userdata: str = "") -> dict[str, Any]:
        vm = {"id": str(uuid.uuid4()), "name": name, "displayname": name,
              "instancename": f"i-2-{next(self.ids)}-VM", "state": state,
              "zoneid": self.zone["id"], "zonename": self.zone["name"],
              "serviceofferingname": "Small Instance",
              "nic": [{"id": str(uuid.uuid4()), "networkid": n["id"], "networkname": n["name"],
                       "ipaddress": f"10.1.1.{10 + i}"} for i, n in enumerate(networks)],
              "_userdata": userdata}
        self.vms[vm["id"]] = vm
        return vm

    def changes(self, since: int = 0) -> list[str]:
        """Commands that change something, in order, from log entry `since`."""
        found = []
        for req in self.log[since:]:
            command = self._params(req).get("command", "")
            if command in CHANGES:
                found.append(command)
        return found

    # ------------------------------------------------------------ protocol

    @staticmethod
    def _params(req: Request) -> dict[str, str]:
        params = {k: v[0] for k, v in req.query.items()}
        if req.method == "POST" and req.body:
            form = parse_qs(req.body.decode(), keep_blank_values=True)
            params.update({k: v[0] for k, v in form.items()})
        return params

    def _verify(self, params: dict[str, str]) -> bool:
        if params.get("apiKey") != self.api_key or "signature" not in params:
            return False
        if params.get("signatureVersion") == "3":
            try:
                expires = datetime.strptime(params.get("expires", ""), "%Y-%m-%dT%H:%M:%S%z")
            except ValueError:
                return False
            if expires < datetime.now(UTC):
                return False
        digest = hmac.new(self.secret_key.encode(), _server_string(params).encode(),
                          hashlib.sha1).digest()
        return hmac.compare_digest(base64.b64encode(digest).decode(), params["signature"])

    def handle(self, req: Request) -> Reply:
        params = self._params(req)
        command = params.get("command", "")
        if not self._verify(params):
            return Reply.json(error_body(command, 401, AUTH_ERROR), 401)
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            return Reply.json(error_body(command, 401, "The given command does not exist or "
                                         "it is not available for user"), 401)
        try:
            body = handler(params, req)
        except ApiError as exc:
            return Reply.json(error_body(command, exc.code, exc.text), exc.code)
        return Reply.json({f"{command.lower()}response": body})

    # ------------------------------------------------------------ commands

    def cmd_listCapabilities(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        return {"capability": {"cloudstackversion": self.version, "apilimitmax": 25}}

    def cmd_listConfigurations(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        if not self.config_readable:
            raise ApiError(401, "The user is not allowed to request the API command or the "
                           "API command does not exist")
        items = [{"name": k, "value": v, "category": "Advanced"} for k, v in self.config.items()
                 if p.get("name") in (None, k)]
        return {"count": len(items), "configuration": items} if items else {}

    def cmd_listZones(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        return {"count": 1, "zone": [self.zone]}

    def cmd_listVirtualMachines(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        vms = [v for v in self.vms.values()
               if p.get("id") in (None, v["id"]) and p.get("name") in (None, v["name"])
               and p.get("zoneid") in (None, v["zoneid"])]
        page, size = int(p.get("page", 1)), int(p.get("pagesize", 500))
        chunk = vms[(page - 1) * size: page * size]
        if not chunk:
            return {}
        return {"count": len(vms), "virtualmachine": [_public(v) for v in chunk]}

    def cmd_listNetworks(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        nets = [n for n in self.networks.values() if p.get("id") in (None, n["id"])]
        return {"count": len(nets), "network": nets} if nets else {}

    def cmd_getVirtualMachineUserData(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        vm = self._vm(p.get("virtualmachineid"))
        return {"virtualmachineuserdata": {"virtualmachineid": vm["id"],
                                           "userdata": vm["_userdata"]}}

    def cmd_updateVirtualMachine(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        vm = self._vm(p.get("id"))
        if "userdata" in p:
            vm["_userdata"] = self._validate_userdata(p["userdata"], req.method)
        return {"virtualmachine": _public(vm)}

    def cmd_stopVirtualMachine(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        vm = self._vm(p.get("id"))
        return self._job("stopVirtualMachine", vm, "Stopped")

    def cmd_startVirtualMachine(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        vm = self._vm(p.get("id"))
        return self._job("startVirtualMachine", vm, "Running")

    def cmd_listAsyncJobs(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        jobs = [self._job_view(j) for j in self.jobs.values()]
        return {"count": len(jobs), "asyncjobs": jobs} if jobs else {}

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        done = job["polls"] >= self.job_polls
        status = (2 if job["fail"] else 1) if done else 0
        return {"jobid": job["id"], "created": job["created"], "jobstatus": status,
                "cmd": f"org.apache.cloudstack.api.command.user.vm."
                       f"{job['command'][0].upper()}{job['command'][1:]}Cmd",
                "jobinstancetype": "VirtualMachine", "jobinstanceid": job["vm"]["id"]}

    def cmd_queryAsyncJobResult(self, p: dict[str, str], req: Request) -> dict[str, Any]:
        job = self.jobs.get(p.get("jobid", ""))
        if job is None:
            raise ApiError(431, f"Unable to find a job by id {p.get('jobid')}")
        job["polls"] += 1
        base = {"jobid": job["id"], "cmd": f"org.apache.cloudstack.api.command.user.vm."
                f"{job['command'][0].upper()}{job['command'][1:]}Cmd",
                "jobinstancetype": "VirtualMachine", "jobinstanceid": job["vm"]["id"]}
        if job["polls"] < self.job_polls:
            return {**base, "jobstatus": 0, "jobprocstatus": 0, "jobresultcode": 0}
        if job["fail"]:
            return {**base, "jobstatus": 2, "jobprocstatus": 0, "jobresultcode": 530,
                    "jobresulttype": "object",
                    "jobresult": {"errorcode": 530, "errortext": "Unable to start a VM due to "
                                  "insufficient capacity"}}
        job["vm"]["state"] = job["target"]
        return {**base, "jobstatus": 1, "jobprocstatus": 0, "jobresultcode": 0,
                "jobresulttype": "object", "jobresult": {"virtualmachine": _public(job["vm"])}}

    # ------------------------------------------------------------ helpers

    def _vm(self, vm_id: str | None) -> dict[str, Any]:
        vm = self.vms.get(vm_id or "")
        if vm is None:
            raise ApiError(431, f"Unable to find virtual machine by id={vm_id}")
        return vm

    def _job(self, command: str, vm: dict[str, Any], target: str) -> dict[str, Any]:
        fail = command in self.fail_jobs
        if fail:
            self.fail_jobs.remove(command)
        job = {"id": str(uuid.uuid4()), "command": command, "vm": vm, "target": target,
               "polls": 0, "fail": fail,
               "created": f"2026-11-23T00:{len(self.jobs):02d}:00+0000"}
        self.jobs[job["id"]] = job
        return {"jobid": job["id"], "id": vm["id"]}

    def _validate_userdata(self, value: str, method: str) -> str:
        """UserDataManagerImpl.validateUserData, in its order: base64 first, then the
        per-method and configured lengths, then at least one decoded byte."""
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(431, "User data is not base64 encoded") from None
        if method == "GET" and len(value) >= 4096:
            raise ApiError(431, "User data is too long for an http GET request")
        if len(value) >= 1048576:
            raise ApiError(431, "User data is too long for http POST request")
        limit = int(self.config["vm.userdata.max.length"])
        if len(value) > limit:
            raise ApiError(431, f"User data has exceeded configurable max length : {limit}")
        if len(decoded) < 1:
            raise ApiError(431, "User data is too short")
        return base64.b64encode(decoded).decode()


class ApiError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _public(vm: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in vm.items() if not k.startswith("_")}

