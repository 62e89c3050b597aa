"""CloudCasa REST API client (an Eve application), for cloud accounts and clusters.

Written from CloudCasa's API guide (overview, cloudaccounts, clusters) and the Eve
conventions it follows:
- `Authorization: Bearer <API key>`; a bad key answers 401;
- documents carry `_id` and `_etag`; PATCH/PUT/DELETE must send `If-Match: <_etag>`
  (missing → 428, stale → 412) and the etag changes after every write, so a write
  always starts from a fresh GET;
- `where=` and `embedded=` are JSON in the query string; lists are `_items` with
  `_meta` {page, max_results, total} and are read to the last page;
- failures are `{"_status": "ERR", "_error": {"code", "message"}}`, 422 adds
  `_issues` per field.
POST creates, so it is never retried: a create that timed out may have happened,
and the caller finds the document by name before creating again.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from tui.clients.wire import Request
from tui.http import ApiClient, RemoteError, default_timeout, json_body, make_client, request
from tui.redact import redact, register

PAGE_SIZE = 50
MAX_PAGES = 200  # 10,000 documents: a runaway `_meta` must not loop forever


class Document(BaseModel):
    """An Eve document: the fields CloudRig relies on, everything else kept as is."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(alias="_id")
    etag: str = Field(default="", alias="_etag")
    name: str = ""
    status: dict[str, Any] = Field(default_factory=dict)

    @property
    def state(self) -> str | None:
        value = self.status.get("state")
        return str(value) if value is not None else None

    def field(self, dotted: str) -> Any:
        """A nested field by Eve's dotted path (`aws.awsaccount.status.cfLaunchURL`)."""
        value: Any = self.model_dump(by_alias=True)
        for part in dotted.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value


class CloudCasaError(RemoteError):
    """A CloudCasa failure in one sentence, with Eve's own message kept for callers."""

    def __init__(self, sentence: str, status: int | None = None, body: str = "",
                 message: str = "") -> None:
        super().__init__(sentence, status=status, body=body)
        self.message = message


def eve_message(body: str) -> tuple[str, dict[str, Any]]:
    """Eve's `_error.message` and `_issues` from an error body (plain text tolerated)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return body.strip()[:200], {}
    if not isinstance(data, dict):
        return body.strip()[:200], {}
    error = data.get("_error")
    message = error.get("message", "") if isinstance(error, dict) else str(error or "")
    issues = data.get("_issues") if isinstance(data.get("_issues"), dict) else {}
    return str(message), issues or {}


class CloudCasaClient(ApiClient):
    def __init__(self, base_url: str, api_key: str, *, ca_file: str | None = None,
                 transport: httpx.BaseTransport | None = None, backoff: float = 0.5,
                 timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = make_client(
            self.base_url + "/", ca_file=ca_file, transport=transport, backoff=backoff,
            timeout=default_timeout(httpx.Timeout(timeout, connect=5.0)),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json",
                     "Content-Type": "application/json"})

    # ------------------------------------------------------------ errors

    def _explain(self, exc: RemoteError, method: str, path: str) -> RemoteError:
        if exc.status is None:
            return exc  # a transport failure: http.describe_failure already said it
        message, issues = eve_message(exc.body)
        message = redact(message)  # a server may echo a request's secrets back
        issues = {k: redact(str(v)) for k, v in issues.items()}
        said = f" ({message})" if message else ""
        where = f"{method} {self.base_url}/{path}"
        code = exc.status
        if code == 401:
            sentence = (f"CloudCasa at {self.base_url} refused the API key (401{said}): it is "
                        "wrong, expired or revoked; create one under Settings → API Keys in "
                        "CloudCasa and give it to CloudRig")
        elif code == 403:
            sentence = (f"CloudCasa denied {where} (403{said}): the API key's role lacks this "
                        "permission; use a key with read-write rights on this resource")
        elif code == 404 and "/" not in path.strip("/"):
            sentence = (f"CloudCasa at {self.base_url} has no /{path} endpoint (404): check "
                        "the API URL (it normally ends in /api/v1)")
        elif code == 404:
            sentence = (f"{where} answered 404{said}: it no longer exists in CloudCasa "
                        "(deleted meanwhile, or in another organisation); rerun to look it "
                        "up again")
        elif code == 412:
            sentence = (f"{where} was refused because the document changed since CloudRig "
                        f"read it (412 stale etag{said}); someone else edited it: rerun to "
                        "read it again and reapply")
        elif code == 428:
            sentence = (f"{where} was refused without an etag (428{said}): CloudCasa needs "
                        "If-Match on every change; this is a CloudRig bug, please report it")
        elif code == 422 and issues:
            fields = "; ".join(f"{k}: {v}" for k, v in issues.items())
            sentence = f"CloudCasa rejected {where} (422): {fields}"
        elif code == 429:
            sentence = (f"CloudCasa is rate limiting {where} (429{said}) even after retries; "
                        "wait a minute and rerun")
        elif code >= 500:
            sentence = (f"CloudCasa failed on {where} ({code}{said}) even after retries; "
                        "check status.cloudcasa.io and rerun later")
        else:
            sentence = f"CloudCasa answered {code} to {where}{said}"
        return CloudCasaError(sentence, status=code, body=exc.body, message=message)

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200,),
              **kwargs: Any) -> httpx.Response:
        try:
            return request(self.http, method, path, ok=ok, **kwargs)
        except RemoteError as exc:
            raise self._explain(exc, method, path) from None

    def _object(self, response: httpx.Response) -> dict[str, Any]:
        data = json_body(response)
        if not isinstance(data, dict):
            raise CloudCasaError(f"CloudCasa answered {response.request.method} "
                                 f"{response.request.url.path} with JSON that is not an object")
        return data

    # ------------------------------------------------------------ generic Eve

    def get(self, resource: str, doc_id: str,
            embedded: dict[str, int] | None = None) -> Document:
        params = {"embedded": json.dumps(embedded)} if embedded else None
        path = f"{resource}/{quote(doc_id, safe='')}"
        return Document.model_validate(self._object(self._call("GET", path, params=params)))

    def find(self, resource: str, where: dict[str, Any],
             embedded: dict[str, int] | None = None) -> list[Document]:
        """Every document matching `where`, reading `_meta` pages to the end."""
        items: list[Document] = []
        for page in range(1, MAX_PAGES + 1):
            params: dict[str, Any] = {"where": json.dumps(where), "max_results": PAGE_SIZE,
                                      "page": page}
            if embedded:
                params["embedded"] = json.dumps(embedded)
            data = self._object(self._call("GET", resource, params=params))
            batch = data.get("_items")
            if not isinstance(batch, list):
                raise CloudCasaError(f"CloudCasa answered GET /{resource} without an _items "
                                     "list; check the API URL")
            items += [Document.model_validate(item) for item in batch]
            meta = data.get("_meta") or {}
            total = meta.get("total")
            if not batch or total is None or len(items) >= int(total):
                break
        return items

    # Every change is built as a Request first: the plan shows it, `send` sends it.

    def url_of(self, req: Request) -> str:
        return f"{self.base_url}/{req.target()}"

    def send(self, req: Request) -> httpx.Response:
        return self._call(req.method, req.path, **req.httpx_kwargs())

    def send_document(self, req: Request) -> Document:
        return Document.model_validate(self._object(self.send(req)))

    @staticmethod
    def create_request(resource: str, body: dict[str, Any]) -> Request:
        return Request("POST", resource, json=body, ok=(200, 201), retry=False)

    def create(self, resource: str, body: dict[str, Any]) -> Document:
        return self.send_document(self.create_request(resource, body))

    @staticmethod
    def patch_request(resource: str, doc: Document, changes: dict[str, Any]) -> Request:
        """Change fields of `doc` as read (its etag guards against a concurrent edit)."""
        return Request("PATCH", f"{resource}/{quote(doc.id, safe='')}", json=changes,
                       headers={"If-Match": doc.etag}, retry=False)

    def patch(self, resource: str, doc: Document, changes: dict[str, Any]) -> Document:
        return self.send_document(self.patch_request(resource, doc, changes))

    @staticmethod
    def delete_request(resource: str, doc: Document) -> Request:
        return Request("DELETE", f"{resource}/{quote(doc.id, safe='')}", ok=(200, 204),
                       headers={"If-Match": doc.etag})

    def delete(self, resource: str, doc: Document) -> None:
        self.send(self.delete_request(resource, doc))

    @staticmethod
    def action_request(resource: str, doc_id: str, name: str,
                       body: dict[str, Any] | None = None) -> Request:
        return Request("POST", f"{resource}/{quote(doc_id, safe='')}/action/{name}",
                       json=body or {}, ok=(200, 201, 202, 204), retry=False)

    def action(self, resource: str, doc_id: str, name: str,
               body: dict[str, Any] | None = None) -> None:
        self.send(self.action_request(resource, doc_id, name, body))

    # ------------------------------------------------------------ cloud accounts

    AWS_EMBEDDED = {"aws.awsaccount": 1}

    def cloudaccount_named(self, name: str) -> Document | None:
        found = self.find("cloudaccounts", {"name": name}, embedded=self.AWS_EMBEDDED)
        return found[0] if found else None

    def cloudaccount(self, doc_id: str) -> Document:
        return self.get("cloudaccounts", doc_id, embedded=self.AWS_EMBEDDED)

    def clusters_of(self, account_id: str) -> list[Document]:
        return self.find("kubeclusters", {"status.cloudaccount": account_id})

    def kubecluster(self, doc_id: str) -> Document:
        return self.get("kubeclusters", doc_id)

    @classmethod
    def inventory_request(cls, account_id: str) -> Request:
        """A cloud inventory job for the account (CloudCasa starts one unless one runs)."""
        return cls.action_request("cloudaccounts", account_id, "inventory", {})

    def inventory(self, account_id: str) -> None:
        self.send(self.inventory_request(account_id))

    def delete_cloudaccount(self, account_id: str) -> None:
        """DELETE with the etag of a fresh read (never a remembered one)."""
        self.delete("cloudaccounts", self.get("cloudaccounts", account_id))


def agent_url(cluster: Document) -> str | None:
    """`status.agentURL` (docs) or `status.agentUrl` (the Terraform provider's spelling).
    Its last path segment is a token (`…/kubeclusteragents/<token>.yaml`, the runbook):
    whoever has the URL can register an agent as this cluster, so the token is masked
    wherever CloudRig would show or log it."""
    value = cluster.status.get("agentURL") or cluster.status.get("agentUrl")
    if value:
        token = str(value).rstrip("/").rsplit("/", 1)[-1].removesuffix(".yaml")
        if len(token) >= 16:
            register(token)
    return value
