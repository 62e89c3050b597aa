"""AWS CloudFormation through boto3 (the optional extra `cloudrig[aws]`).

boto3 is imported only when a stack is really handled, so CloudRig runs without it
(the browser path needs no AWS SDK). Credentials and region come from the
operator's usual AWS configuration (environment, profile, instance role), as the
runbook's boto3 example assumes; `AWS_ENDPOINT_URL` is honoured by boto3 itself.
Requests go out through CloudRig's HTTP client (a deadline and a size cap; `_Sender`).
Every AWS failure becomes one sentence.

What CloudFormation does, from its API reference (docs.aws.amazon.com/AWSCloudFormation/
latest/APIReference): CreateStack and UpdateStack refuse a parameter the template does
not declare ("Parameters: [X] do not exist in the template", ValidationError), so the
parameters to send come from GetTemplateSummary first; UpdateStack with nothing to
change is a ValidationError "No updates are to be performed."; a stack whose change
set was created but never executed stays REVIEW_IN_PROGRESS (CreateChangeSet with
ChangeSetType CREATE, what the console's launch URL does); the cause of a rollback is
in DescribeStackEvents (newest first: the oldest *_FAILED resource event is the cause,
later ones say "Resource creation cancelled"), StackStatusReason only says that
resources failed; DeleteStack ends in DELETE_COMPLETE (DescribeStacks by name then
answers "does not exist").
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from tui.clients.wire import Request
from tui.errors import OperatorError
from tui.http import (
    DeadlineExceeded,
    RemoteError,
    ResponseTooLarge,
    default_timeout,
    describe_failure,
    http_transport,
    make_client,
    tls_context,
)

# Stack states that will not reach CREATE_COMPLETE without the operator (delete and retry).
FAILED_STATES = {"CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
                 "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE"}
READY_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}
# An update that failed and was rolled back: the stack works, with its old parameters.
UPDATE_FAILED_STATES = {"UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE",
                        "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"}
# A change set created (e.g. from the console's launch URL) but never executed.
REVIEW = "REVIEW_IN_PROGRESS"
# Tags CloudRig puts on the stacks it creates: teardown --purge deletes only those.
OWNER_TAG = "cloudrig:procedure"


class Stack(BaseModel):
    name: str
    stack_id: str
    status: str
    reason: str = ""
    parameters: dict[str, str] = {}
    tags: dict[str, str] = {}


class StackEvent(BaseModel):
    resource: str
    resource_type: str = ""
    status: str
    reason: str = ""

    @property
    def sentence(self) -> str:
        kind = f" ({self.resource_type})" if self.resource_type else ""
        return f"{self.resource}{kind} {self.status}: {self.reason or 'no reason given'}"


class CloudFormation:
    def __init__(self, region: str | None = None) -> None:
        try:
            import boto3  # deferred: start-up (boto3)
            from botocore.config import Config  # deferred: start-up (boto3)
        except ImportError:
            raise OperatorError(
                "creating the CloudFormation stack needs boto3: install the extra with "
                "`pip install 'cloudrig[aws]'`, or answer `cloudformation: browser` to "
                "launch the stack from the AWS console instead") from None
        import botocore.session  # deferred: start-up (boto3)

        # 30 s per read (5 s to connect), or CLOUDRIG_HTTP_TIMEOUT as for every other API.
        timeout = default_timeout(httpx.Timeout(30.0, connect=5.0))
        config = Config(retries={"max_attempts": 5, "mode": "standard"},
                        connect_timeout=timeout.connect, read_timeout=timeout.read)
        core = botocore.session.get_session()
        try:
            session = boto3.session.Session(botocore_session=core, region_name=region)
            self.client = session.client("cloudformation", config=config)
        except Exception as exc:  # botocore.exceptions.NoRegionError and friends
            raise _sentence(exc, "connect to CloudFormation") from None
        # AWS_CA_BUNDLE, or the profile's ca_bundle: what botocore itself would trust.
        self.sender = _Sender(core.get_config_variable("ca_bundle"), timeout)
        self.client.meta.events.register("before-send.cloudformation", self.sender)
        self.region = self.client.meta.region_name

    # A change is built as a Request first (method: the API action, path: the stack,
    # json: the action's parameters as boto3 sends them): the plan shows it, `send`
    # makes that very call.

    def url_of(self, req: Request) -> str:
        return f"cloudformation://{self.region}/{req.path}"

    def send(self, req: Request) -> Any:
        """Make the action REQ describes (raising botocore's errors as they are)."""
        action = {"CreateStack": self.client.create_stack,
                  "UpdateStack": self.client.update_stack,
                  "DeleteStack": self.client.delete_stack}[req.method]
        return action(**req.json)

    def stack(self, name: str) -> Stack | None:
        """The live stack called `name`, or None (deleted stacks do not count)."""
        try:
            found = self.client.describe_stacks(StackName=name)["Stacks"]
        except Exception as exc:
            if "does not exist" in str(exc):
                return None
            raise _sentence(exc, f"describe stack {name}") from None
        for raw in found:
            if raw.get("StackStatus") != "DELETE_COMPLETE":
                return _stack(raw)
        return None

    def template_parameters(self, template_url: str) -> list[str]:
        """The parameters the template declares (GetTemplateSummary)."""
        try:
            summary = self.client.get_template_summary(TemplateURL=template_url)
        except Exception as exc:
            raise _sentence(exc, f"read the template {template_url}") from None
        return [str(p["ParameterKey"]) for p in summary.get("Parameters") or []]

    @staticmethod
    def create_request(name: str, template_url: str, parameters: dict[str, str],
                       capabilities: list[str], tags: dict[str, str] | None = None) -> Request:
        return Request("CreateStack", f"stacks/{name}", changes=True, json={
            "StackName": name, "TemplateURL": template_url,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                           for k, v in parameters.items()],
            "Capabilities": capabilities,
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]})

    def create(self, name: str, template_url: str, parameters: dict[str, str],
               capabilities: list[str], tags: dict[str, str] | None = None) -> str:
        return self.send_create(self.create_request(name, template_url, parameters,
                                                    capabilities, tags))

    def send_create(self, req: Request) -> str:
        """CreateStack; the new StackId."""
        try:
            response = self.send(req)
        except Exception as exc:
            raise _sentence(exc, f"create stack {req.json['StackName']}") from None
        return str(response["StackId"])

    @staticmethod
    def update_request(name: str, template_url: str, parameters: dict[str, str],
                       capabilities: list[str]) -> Request:
        return Request("UpdateStack", f"stacks/{name}", changes=True, json={
            "StackName": name, "TemplateURL": template_url,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                           for k, v in parameters.items()],
            "Capabilities": capabilities})

    def update(self, name: str, template_url: str, parameters: dict[str, str],
               capabilities: list[str]) -> bool:
        return self.send_update(self.update_request(name, template_url, parameters,
                                                    capabilities))

    def send_update(self, req: Request) -> bool:
        """UpdateStack; False when CloudFormation says there is nothing to update."""
        try:
            self.send(req)
        except Exception as exc:
            if "No updates are to be performed" in str(exc):
                return False
            raise _sentence(exc, f"update stack {req.json['StackName']}") from None
        return True

    def first_failure(self, name: str) -> StackEvent | None:
        """The event that caused a rollback: the oldest *_FAILED event of a resource
        (DescribeStackEvents lists newest first)."""
        try:
            events = self.client.describe_stack_events(StackName=name).get("StackEvents") or []
        except Exception as exc:
            raise _sentence(exc, f"read the events of stack {name}") from None
        for raw in reversed(events):
            status = str(raw.get("ResourceStatus", ""))
            if status.endswith("_FAILED") and raw.get("LogicalResourceId") != name:
                return StackEvent(resource=str(raw.get("LogicalResourceId", "")),
                                  resource_type=str(raw.get("ResourceType", "")),
                                  status=status,
                                  reason=str(raw.get("ResourceStatusReason") or ""))
        return None

    @staticmethod
    def delete_request(name: str) -> Request:
        return Request("DeleteStack", f"stacks/{name}", changes=True,
                       json={"StackName": name})

    def delete(self, name: str) -> None:
        try:
            self.send(self.delete_request(name))
        except Exception as exc:
            raise _sentence(exc, f"delete stack {name}") from None

    def close(self) -> None:
        self.client.close()
        self.sender.close()


class _Raw:
    """What botocore's AWSResponse reads a body from (`stream()`), already read."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Any:
        yield self.content


class _Sender:
    """botocore's `before-send` hook: the signed request goes out through CloudRig's
    HTTP client (tui/http.py: a total deadline per exchange, a size cap) instead of
    botocore's urllib3 session, whose read timeout applies per socket read and which
    reads a body of any size: AWS_ENDPOINT_URL (or a proxy) pointing at a server that
    trickles or floods would hang an apply or exhaust memory.

    botocore/endpoint.py (`_do_get_response`) emits `before-send.<service>.<operation>`
    and uses the first response a handler returns (how botocore's Stubber and moto
    answer too). Failures botocore retries become its own exceptions (so its retry
    policy and the sentences below stay); a deadline or an oversized answer is
    CloudRig's RemoteError and is not retried."""

    def __init__(self, ca_bundle: str | None, timeout: Any) -> None:
        self.ca_bundle = ca_bundle or None
        self.timeout = timeout
        self.clients: dict[str | None, Any] = {}

    def _client(self, url: str) -> Any:
        from botocore.utils import get_environ_proxies  # deferred: start-up (boto3)

        proxy = get_environ_proxies(url).get(url.split(":", 1)[0])
        if proxy not in self.clients:
            transport = http_transport(tls_context(self.ca_bundle), proxy)
            self.clients[proxy] = make_client("", retries=0, timeout=self.timeout,
                                              transport=transport)
        return self.clients[proxy]

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore import exceptions as aws  # deferred: start-up (boto3)
        from botocore.awsrequest import AWSResponse  # deferred: start-up (boto3)

        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        headers = {k: v.decode() if isinstance(v, bytes) else v
                   for k, v in request.headers.items()}
        url = request.url
        try:
            response = self._client(url).request(request.method, url, headers=headers,
                                                 content=body or b"")
        except (DeadlineExceeded, ResponseTooLarge) as exc:
            raise describe_failure(exc, request.method, url) from None
        except httpx.ConnectTimeout as exc:
            raise aws.ConnectTimeoutError(endpoint_url=url, error=exc) from None
        except httpx.TimeoutException as exc:
            raise aws.ReadTimeoutError(endpoint_url=url, error=exc) from None
        except httpx.ConnectError as exc:
            if "CERTIFICATE" in str(exc).upper() or "[SSL" in str(exc):
                raise aws.SSLError(endpoint_url=url, error=exc) from None
            raise aws.EndpointConnectionError(endpoint_url=url, error=exc) from None
        except httpx.TransportError as exc:
            raise aws.ConnectionClosedError(endpoint_url=url, error=exc) from None
        return AWSResponse(url, response.status_code, dict(response.headers.items()),
                           _Raw(response.content))

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _stack(raw: dict[str, Any]) -> Stack:
    return Stack(name=raw["StackName"], stack_id=raw["StackId"], status=raw["StackStatus"],
                 reason=raw.get("StackStatusReason") or "",
                 parameters={p["ParameterKey"]: p.get("ParameterValue", "")
                             for p in raw.get("Parameters") or []},
                 tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags") or []})


def _sentence(exc: Exception, doing: str) -> RemoteError:
    """botocore's exceptions as one sentence, without importing botocore at module load."""
    if isinstance(exc, RemoteError):  # CloudRig's own HTTP client: deadline, size cap
        return RemoteError(f"AWS CloudFormation could not {doing}: {exc.sentence}")
    kind = type(exc).__name__
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = response["Error"].get("Code", kind)
        message = response["Error"].get("Message", "")
        advice = {
            "AlreadyExistsException": "a stack with that name exists; choose another "
                                      "stack_name or delete it",
            "InsufficientCapabilitiesException": "the template needs more capabilities",
            "AccessDenied": "the AWS credentials may not create stacks and IAM roles",
            "ExpiredToken": "the AWS session expired; sign in again",
            "Throttling": "AWS is throttling; rerun in a minute",
        }.get(code, "check the AWS credentials, region and the template URL")
        return RemoteError(f"AWS CloudFormation could not {doing} ({code}: {message}); {advice}")
    if kind in ("NoCredentialsError", "PartialCredentialsError"):
        return RemoteError(f"AWS CloudFormation could not {doing}: no AWS credentials found; "
                           "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or "
                           "answer `cloudformation: browser`")
    if kind == "NoRegionError":
        return RemoteError(f"AWS CloudFormation could not {doing}: no AWS region configured; "
                           "answer aws_region (for example us-east-1) or set AWS_REGION")
    if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                "ConnectionClosedError"):
        return RemoteError(f"AWS CloudFormation could not {doing}: cannot reach AWS ({exc}); "
                           "check the network and proxy settings, then rerun")
    if kind == "SSLError":
        return RemoteError(f"AWS CloudFormation could not {doing}: the endpoint's TLS "
                           f"certificate is not trusted ({exc}); set AWS_CA_BUNDLE to the CA "
                           "bundle that signed it")
    if kind == "ResponseParserError":
        return RemoteError(f"AWS CloudFormation could not {doing}: the answer was not AWS's "
                           "(unreadable XML); check AWS_ENDPOINT_URL and any proxy in between")
    return RemoteError(f"AWS CloudFormation could not {doing}: {kind}: {exc}")
