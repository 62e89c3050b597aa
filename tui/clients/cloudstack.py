"""Apache CloudStack API client: signed requests, error sentences, pages, async jobs.

Written from CloudStack's own server code (ApiServer.verifyRequest, ApiServlet,
ApiErrorCode, UserDataManagerImpl) and the API guide. Quirks kept in mind:
- the signed string is every parameter but `signature`, sorted by name as sent,
  values encoded like Java's `URLEncoder` with spaces as `%20` (so `*` stays
  literal and `~` becomes `%7E`: Python's `quote` differs there), then the whole
  string lower-cased, HMAC-SHA1 with the secret key, base64;
- `signatureVersion=3` with `expires` (`yyyy-MM-dd'T'HH:mm:ssZ`) on every request,
  so a captured URL stops working after ten minutes;
- the HTTP status *is* CloudStack's error code (401, 431, 530, …) and the body is
  `{"<command>response": {"errorcode", "errortext"}}`: the sentence is built from
  `errortext`, never from a generic "4xx";
- user data larger than the GET limit goes as a form-encoded POST body;
- async commands answer a `jobid`; `queryAsyncJobResult` (`job_result`) is polled,
  by the procedure through the shared `tui.poll.poll`, until `jobstatus` is 1
  (success) or 2 (failure). A timeout or a cancel leaves the job running on the
  server, and the sentence says its id.

Every command is built as a `Request` first (`command`): the plan shows it, `send`
signs and sends it unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from tui.clients.wire import Request
from tui.http import ApiClient, RemoteError, json_body, make_client, request

EXPIRES_FORMAT = "%Y-%m-%dT%H:%M:%S+0000"
EXPIRATION = timedelta(minutes=10)
PAGE_SIZE = 500
GET_LIMIT = 4096
"""UserDataManagerImpl.MAX_HTTP_GET_LENGTH: base64 user data at least this long needs POST."""
POST_LIMIT = 1048576
"""UserDataManagerImpl.MAX_HTTP_POST_LENGTH: the hard cap on base64 user data."""
FIRST_POLL = 0.25
"""Seconds before the second queryAsyncJobResult; doubled up to `poll_interval`."""

ERROR_ADVICE = {
    401: "check api_key and the secret key (CLOUDRIG_SECRET_SECRET_KEY), that the user is "
         "enabled, and that this host's clock is right (signed requests expire)",
    405: "the API does not allow this method for the command",
    429: "the API rate limit was reached; wait and rerun",
    430: "a parameter is malformed",
    431: "a parameter was refused",
    432: "this CloudStack does not support the action",
    530: "CloudStack failed internally; check the management server log",
    531: "the account cannot do this",
    532: "an account resource limit was reached",
    533: "there is not enough capacity",
    534: "a resource is unavailable",
    536: "the resource is in use",
}


def java_encode(value: str) -> str:
    """`URLEncoder.encode(value, "UTF-8").replaceAll("\\\\+", "%20")`, as the server
    does when it rebuilds the string it verifies."""
    return quote(value, safe="*").replace("~", "%7E")


def string_to_sign(params: dict[str, str]) -> str:
    """What CloudStack signs: sorted `name=encoded` pairs, the whole string lower-cased."""
    pairs = (f"{key}={java_encode(value)}" for key, value in sorted(params.items())
             if key != "signature")
    return "&".join(pairs).lower()


def sign(params: dict[str, str], secret_key: str) -> str:
    """The `signature` parameter for `params` (HMAC-SHA1, standard base64)."""
    digest = hmac.new(secret_key.encode(), string_to_sign(params).encode(),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def flatten(params: dict[str, Any]) -> dict[str, str]:
    """CloudStack's parameter forms: booleans lower-case, lists comma-joined, maps as
    `name[0].key=value`; None is left out."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            flat[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            flat[key] = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            for index, (sub, subvalue) in enumerate(value.items()):
                flat[f"{key}[{index}].{sub}"] = str(subvalue)
        else:
            flat[key] = str(value)
    return flat


class Job(BaseModel):
    """An async job as one `queryAsyncJobResult` reported it (status 0 pending, 1
    succeeded, 2 failed)."""

    jobid: str
    command: str
    status: int
    result: dict[str, Any] = {}
    progress: str = ""
    """`jobprocstatus` while pending, when the command reports one."""


class JobFailed(RemoteError):
    """An async job ended with jobstatus 2."""

    def __init__(self, sentence: str, job: Job) -> None:
        super().__init__(sentence)
        self.job = job


class CloudStackClient(ApiClient):
    """One CloudStack endpoint with one API key pair."""

    def __init__(self, api_url: str, api_key: str, secret_key: str, *,
                 ca_file: str | None = None, transport: httpx.BaseTransport | None = None,
                 backoff: float = 0.25, poll_interval: float = 2.0,
                 job_timeout: float = 600.0,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self._secret = secret_key
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.clock = clock or (lambda: datetime.now(UTC))
        url = httpx.URL(self.api_url)
        # httpx appends "/" to a base URL; the API path is requested exactly as given.
        self.path = url.raw_path.decode() or "/"
        self.http = make_client(str(url.copy_with(raw_path=b"/", query=None)),
                                ca_file=ca_file, transport=transport, backoff=backoff)

    # ------------------------------------------------------------ requests

    def command(self, command: str, params: dict[str, Any] | None = None, *,
                post: bool = False, changes: bool = False) -> Request:
        """One API command as it will be sent, before signing. A change is never
        retried (it may have happened); a read is."""
        return Request("POST" if post else "GET", self.path,
                       params={"command": command, **flatten(params or {})}, form=post,
                       listed=True, changes=changes, retry=not changes)

    def url_of(self, req: Request) -> str:
        return f"{self.api_url}?command={req.params['command']}"

    def signed(self, command: str, params: dict[str, Any] | None = None) -> dict[str, str]:
        """The full parameter set of one request, signature included."""
        return self._sign(self.command(command, params).params)

    def _sign(self, params: Any) -> dict[str, str]:
        flat = dict(params)
        flat.update(response="json", apiKey=self.api_key, signatureVersion="3",
                    expires=(self.clock() + EXPIRATION).strftime(EXPIRES_FORMAT))
        flat["signature"] = sign(flat, self._secret)
        return flat

    def send(self, req: Request) -> dict[str, Any]:
        """Sign and send a built command; returns the inside of `<command>response`."""
        command = req.params["command"]
        signed = Request(req.method, req.path, params=self._sign(req.params), form=req.form,
                         changes=req.changes, retry=req.retry)
        try:
            response = request(self.http, signed.method, signed.path, **signed.httpx_kwargs())
        except RemoteError as exc:
            raise self._explain(command, exc) from None
        return self._unwrap(command, json_body(response))

    def call(self, command: str, params: dict[str, Any] | None = None, *,
             post: bool = False, changes: bool = False) -> dict[str, Any]:
        """One API command, built and sent."""
        return self.send(self.command(command, params, post=post, changes=changes))

    def _unwrap(self, command: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or len(data) != 1:
            raise RemoteError(f"CloudStack at {self.api_url} answered {command} with JSON "
                              "that is not a single `<command>response` object; check that "
                              "api_url is the API endpoint (…/client/api)")
        (inner,) = data.values()
        if not isinstance(inner, dict):
            raise RemoteError(f"CloudStack at {self.api_url} answered {command} with "
                              f"{type(inner).__name__} where an object was expected")
        if "errorcode" in inner:
            raise self._error(command, int(inner["errorcode"]), str(inner.get("errortext")))
        return inner

    def _error(self, command: str, code: int, text: str) -> RemoteError:
        advice = ERROR_ADVICE.get(code, "")
        tail = f"; {advice}" if advice else ""
        return RemoteError(f"CloudStack at {self.api_url} refused {command} ({code}: "
                           f"{text}){tail}", status=code, body=text)

    def _explain(self, command: str, exc: RemoteError) -> RemoteError:
        """A non-200 reply: read CloudStack's error body when there is one."""
        if exc.status is None:
            return exc
        try:
            data = json.loads(exc.body)
            (inner,) = data.values()
            return self._error(command, int(inner["errorcode"]), str(inner["errortext"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return exc

    # ------------------------------------------------------------ lists

    def list_all(self, command: str, key: str, params: dict[str, Any] | None = None,
                 page_size: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """Every item of a list command, page by page (`page`/`pagesize`)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self.call(command, {**(params or {}), "page": page, "pagesize": page_size})
            chunk = data.get(key, [])
            items.extend(chunk)
            count = int(data.get("count", len(items)))
            if not chunk or len(items) >= count or len(chunk) < page_size:
                return items
            page += 1

    # ------------------------------------------------------------ async jobs

    def job_id(self, command: str, started: dict[str, Any]) -> str:
        """The `jobid` an async command answered."""
        jobid = started.get("jobid")
        if not jobid:
            raise RemoteError(f"CloudStack at {self.api_url} answered {command} without a "
                              "jobid; is it an asynchronous command on this version?")
        return str(jobid)

    def job_result(self, jobid: str, command: str) -> Job:
        """One `queryAsyncJobResult`: the job pending (status 0) or succeeded (1);
        a failed job raises JobFailed with CloudStack's reason."""
        data = self.call("queryAsyncJobResult", {"jobid": jobid})
        status = int(data.get("jobstatus", 0))
        result = data.get("jobresult") or {}
        job = Job(jobid=jobid, command=command, status=status,
                  result=result if isinstance(result, dict) else {},
                  progress=str(data.get("jobprocstatus") or ""))
        if status == 1 and int(data.get("jobresultcode", 0)) == 0:
            return job
        if status in (1, 2):
            text = job.result.get("errortext") or "no reason given"
            code = job.result.get("errorcode") or data.get("jobresultcode")
            raise JobFailed(f"CloudStack job {jobid} ({command}) failed ({code}: {text})",
                            job.model_copy(update={"status": 2}))
        return job.model_copy(update={"status": 0})

    # ------------------------------------------------------------ calls the procedure uses

    def capabilities(self) -> dict[str, Any]:
        return self.call("listCapabilities").get("capability", {})

    def configuration(self, name: str) -> str | None:
        """A global setting's value, or None when the account may not read settings."""
        try:
            items = self.call("listConfigurations", {"name": name}).get("configuration", [])
        except RemoteError as exc:
            # Callers prove the credentials first (listCapabilities), so a refusal here
            # means "not allowed to read settings" (CloudStack answers 401 for that too).
            if exc.status in (401, 431, 432, 531):
                return None
            raise
        for item in items:
            if item.get("name") == name:
                return item.get("value")
        return None

    def find_vm(self, name_or_id: str, zone_id: str | None = None) -> list[dict[str, Any]]:
        """Instances whose id or name is `name_or_id` (all the caller may see)."""
        base = {"listall": True, "zoneid": zone_id}
        by_id = self.list_all("listVirtualMachines", "virtualmachine",
                              {**base, "id": name_or_id}) if _is_uuid(name_or_id) else []
        if by_id:
            return by_id
        found = self.list_all("listVirtualMachines", "virtualmachine",
                              {**base, "name": name_or_id})
        return [vm for vm in found if name_or_id in (vm.get("name"), vm.get("displayname"))]

    def user_data(self, vm_id: str) -> str:
        """The instance's current user data, base64 (empty when it has none)."""
        data = self.call("getVirtualMachineUserData", {"virtualmachineid": vm_id})
        return (data.get("virtualmachineuserdata") or {}).get("userdata") or ""


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
