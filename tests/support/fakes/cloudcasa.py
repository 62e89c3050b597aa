"""A CloudCasa API on 127.0.0.1 (an Eve application), written from CloudCasa's API
guide and Eve's conventions.

- auth `Authorization: Bearer <key>`; anything else → 401 with Eve's error body;
- documents have `_id` (24 hex), `_etag` (changes on every write), `_created`,
  `_updated` (RFC 1123), `_links`; POST answers 201 with `Location`;
- PATCH/DELETE need `If-Match`: missing → 428, stale → 412 (Eve's messages);
- lists take `where=` / `embedded=` as JSON, `max_results` / `page`, and answer
  `_items` + `_meta`; a `where` that is not JSON → 400;
- errors are `{"_status": "ERR", "_error": {"code", "message"}}`, 422 has `_issues`;
- a new cloud account shows no `status` for `pending_after` reads, then
  `status.state` PENDING and `aws.awsaccount.status.cfLaunchURL` (when embedded);
  it becomes ACTIVE once a CloudFormation stack with its id as CCAccountId is
  CREATE_COMPLETE (or UPDATE_COMPLETE, updated to trust it) in AWS (moto here, asked
  through boto3 like the real service's callback would learn it) and `hold_active` is
  not set;
- becoming ACTIVE starts an inventory job, and so does `POST …/action/inventory`
  unless one is running (the runbook: "This will create a cloud inventory job if it
  is not already running"); the job runs asynchronously — the runbook lists clusters
  only "after the cloud inventory job is complete" — and ends after `discover_after`
  reads of the account's kubeclusters, when the `discoverable` clusters appear as
  DISCOVERED kubeclusters with their `awsekscluster_arn` and an `agentURL` served by
  this fake (`…/kubeclusteragents/<token>.yaml`, a manifest labelled with the
  cluster's name);
- a cluster's agent runs when its manifest was applied in that very cluster:
  `agents()` says which agent each (physical) cluster runs (the stand-in kubectl's
  state; one cloudcasa-io namespace per cluster, so the last manifest applied wins).
  Without `agents`, fetching the URL counts as installing it. A read of a cluster
  whose agent runs moves DISCOVERED to PENDING and, `agent_after` reads later, to
  ACTIVE; a cluster whose agent is gone reads DISCOVERED again (CloudCasa's state for
  that is not documented; "no agent" is what the fake says);
- DELETE of an account used by a cluster with an agent answers 409 "in use" (the
  runbook says only that it "would fail"; 409 is Eve's status for a conflict).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

from fakes.server import FakeService, Reply, Request

PREFIX = "/api/v1"
TEMPLATE_URL = "https://s3.amazonaws.com/cloudcasa-cf/cloudcasa_015.yml"
RESOURCES = ("cloudaccounts", "kubeclusters")


def eve_error(code: int, message: str, **extra: Any) -> Reply:
    return Reply.json({"_status": "ERR", "_error": {"code": code, "message": message},
                       **extra}, code)


def _now() -> str:
    return format_datetime(datetime.now(UTC), usegmt=True)


def _dotted(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class FakeCloudCasa(FakeService):
    def __init__(self, api_key: str | None = None,
                 stack_params: Callable[[], list[dict[str, str]]] | None = None,
                 agents: Callable[[], dict[str, str]] | None = None) -> None:
        super().__init__()
        self.agents = agents
        self.template_url = TEMPLATE_URL
        self.discover_after = 2
        self.jobs: dict[str, int] = {}  # account id → kubeclusters reads until its job ends
        self.api_key = api_key or "cc-" + secrets.token_urlsafe(24)
        # Returns [{"status": ..., "params": {...}}, ...] for the stacks in AWS.
        self.stack_params = stack_params or (lambda: [])
        self.docs: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self.reads: dict[str, int] = {}
        self.inventories: dict[str, int] = {}
        self.agents_fetched: list[str] = []
        self.pending_after = 2
        self.agent_after = 2
        self.hold_active = False
        self.discoverable = ["prod-eks", "dev-eks"]
        self._ids = itertools.count(0x5FE91B64570CCD792017ED1E)

    # ------------------------------------------------------------ documents

    def _new_id(self) -> str:
        return f"{next(self._ids):024x}"

    def _stamp(self, doc: dict[str, Any]) -> None:
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        doc["_etag"] = hashlib.sha1(
            (json.dumps(body, sort_keys=True) + secrets.token_hex(4)).encode()).hexdigest()
        doc["_updated"] = _now()

    def insert(self, resource: str, fields: dict[str, Any]) -> dict[str, Any]:
        doc_id = self._new_id()
        doc = {"_id": doc_id, "_created": _now(),
               "_links": {"self": {"href": f"/v1/{resource}/{doc_id}",
                                   "title": resource[:-1].capitalize()}}, **fields}
        self._stamp(doc)
        self.docs[resource][doc_id] = doc
        return doc

    def touch(self, resource: str, doc_id: str) -> None:
        """Someone else edits the document: its etag changes."""
        self._stamp(self.docs[resource][doc_id])

    def account_named(self, name: str) -> dict[str, Any] | None:
        return next((d for d in self.docs["cloudaccounts"].values() if d["name"] == name), None)

    def clusters_of(self, account_id: str) -> list[dict[str, Any]]:
        return [c for c in self.docs["kubeclusters"].values()
                if c["status"].get("cloudaccount") == account_id]

    # ------------------------------------------------------------ behaviour

    def _advance_account(self, doc: dict[str, Any]) -> None:
        doc_id = doc["_id"]
        self.reads[doc_id] = self.reads.get(doc_id, 0) + 1
        state = doc.get("status", {}).get("state")
        if state is None and self.reads[doc_id] > self.pending_after:
            doc["status"] = {"state": "PENDING"}
            doc["_aws"]["status"] = {"cfLaunchURL": (
                "https://console.aws.amazon.com/cloudformation/home#/stacks/create/review?"
                f"templateURL={self.template_url}&stackName=cloudcasa-v015"
                f"&param_CCAccountId={doc_id}")}
            self._stamp(doc)
        elif state == "PENDING" and not self.hold_active and self._stack_complete(doc_id):
            doc["status"]["state"] = "ACTIVE"
            self._stamp(doc)
            self.start_inventory(doc_id)

    def _stack_complete(self, account_id: str) -> bool:
        return any(s["status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
                   and s["params"].get("CCAccountId") == account_id for s in self.stack_params())

    def start_inventory(self, account_id: str) -> bool:
        """A new inventory job, unless one is running for the account."""
        if account_id in self.jobs:
            return False
        self.jobs[account_id] = self.discover_after
        self.inventories[account_id] = self.inventories.get(account_id, 0) + 1
        return True

    def _inventory_read(self, account_id: str) -> None:
        """A read of the account's kubeclusters: its running job gets closer to done."""
        if account_id not in self.jobs:
            return
        self.jobs[account_id] -= 1
        if self.jobs[account_id] <= 0:
            del self.jobs[account_id]
            self._discover(account_id)

    def _discover(self, account_id: str) -> None:
        known = {c["name"] for c in self.clusters_of(account_id)}
        for name in self.discoverable:
            if name in known:
                continue
            token = secrets.token_urlsafe(24)
            self.insert("kubeclusters", {"name": name, "status": {
                "state": "DISCOVERED", "deployment_platform": "awseks",
                "awsekscluster_arn": f"arn:aws:eks:us-east-1:727923484692:cluster/{name}",
                "cloudaccount": account_id, "version": "1.21",
                "agentURL": f"{self.url}/kubeclusteragents/{token}=.yaml"}})

    def agent_running(self, cluster: dict[str, Any]) -> bool:
        if self.agents is None:
            return bool(cluster.get("_fetched"))
        return self.agents().get(cluster["name"]) == cluster["name"]

    def _sync_cluster(self, doc: dict[str, Any]) -> None:
        """A cluster whose agent is gone has no agent any more."""
        if doc["status"].get("state") not in (None, "DISCOVERED") \
                and not self.agent_running(doc):
            doc["status"]["state"] = "DISCOVERED"
            doc.pop("_agent_reads", None)
            doc.pop("_fetched", None)
            self._stamp(doc)

    def _advance_cluster(self, doc: dict[str, Any]) -> None:
        self._sync_cluster(doc)
        if not self.agent_running(doc):
            return
        if doc["status"].get("state") == "DISCOVERED":
            doc["status"]["state"] = "PENDING"
            self._stamp(doc)
        elif doc["status"].get("state") == "PENDING":
            doc["_agent_reads"] = doc.get("_agent_reads", 0) + 1
            if doc["_agent_reads"] > self.agent_after:
                doc["status"]["state"] = "ACTIVE"
                self._stamp(doc)

    def _public(self, resource: str, doc: dict[str, Any],
                embedded: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in doc.items() if k not in ("_aws", "_agent_reads", "_fetched")}
        if resource == "cloudaccounts" and embedded.get("aws.awsaccount"):
            out["aws"] = {"awsaccount": doc["_aws"]}
        elif resource == "cloudaccounts":
            out["aws"] = {"awsaccount": doc["_aws"]["_id"]}
        return out

    # ------------------------------------------------------------ HTTP

    def handle(self, request: Request) -> Reply:
        if request.path.startswith("/kubeclusteragents/"):
            return self._agent_yaml(request)
        if not request.path.startswith(PREFIX + "/"):
            return eve_error(404, "The requested URL was not found on the server.")
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return eve_error(401, "Please provide proper credentials")
        parts = [unquote(p) for p in request.path[len(PREFIX) + 1:].split("/") if p]
        if not parts or parts[0] not in RESOURCES:
            return eve_error(404, "The requested URL was not found on the server.")
        resource = parts[0]
        try:
            embedded = json.loads(request.arg("embedded") or "{}")
        except json.JSONDecodeError:
            return eve_error(400, "Unable to parse `embedded` clause")
        if len(parts) == 1:
            if request.method == "GET":
                return self._list(resource, request, embedded)
            if request.method == "POST":
                return self._create(resource, request)
            return eve_error(405, "The method is not allowed for the requested URL.")
        doc = self.docs[resource].get(parts[1])
        if doc is None:
            return eve_error(404, "The requested URL was not found on the server.")
        if len(parts) == 4 and parts[2] == "action" and request.method == "POST":
            if parts[3] != "inventory" or resource != "cloudaccounts":
                return eve_error(404, "The requested URL was not found on the server.")
            self.start_inventory(doc["_id"])
            return Reply.json({"_status": "OK"})
        if len(parts) != 2:
            return eve_error(404, "The requested URL was not found on the server.")
        if request.method == "GET":
            if resource == "cloudaccounts":
                self._advance_account(doc)
            else:
                self._advance_cluster(doc)
            public = self._public(resource, doc, embedded)
            return Reply(200, json.dumps(public).encode(),
                         headers={"ETag": f'"{doc["_etag"]}"', "Last-Modified": doc["_updated"]})
        if request.method in ("PATCH", "PUT", "DELETE"):
            match = request.headers.get("if-match")
            if not match:
                return eve_error(428, "To edit a document its etag must be provided using "
                                      "the If-Match header")
            if match.strip('"') != doc["_etag"]:
                return eve_error(412, "Client and server etags don't match")
            if request.method == "DELETE":
                return self._delete(resource, doc)
            return self._patch(resource, doc, request)
        return eve_error(405, "The method is not allowed for the requested URL.")

    def _list(self, resource: str, request: Request, embedded: dict[str, Any]) -> Reply:
        try:
            where = json.loads(request.arg("where") or "{}")
        except json.JSONDecodeError:
            return eve_error(400, "Unable to parse `where` clause")
        if not isinstance(where, dict):
            return eve_error(400, "Unable to parse `where` clause")
        page = int(request.arg("page") or 1)
        size = int(request.arg("max_results") or 25)
        if resource == "kubeclusters" and "status.cloudaccount" in where:
            self._inventory_read(str(where["status.cloudaccount"]))
            for cluster in self.clusters_of(str(where["status.cloudaccount"])):
                self._sync_cluster(cluster)
        matching = [d for d in self.docs[resource].values()
                    if all(_dotted(d, k) == v for k, v in where.items())]
        chunk = matching[(page - 1) * size: page * size]
        return Reply.json({
            "_items": [self._public(resource, d, embedded) for d in chunk],
            "_links": {"parent": {"href": "/", "title": "home"},
                       "self": {"href": f"v1/{resource}", "title": f"/v1/{resource}"}},
            "_meta": {"page": page, "max_results": size, "total": len(matching)}})

    def _create(self, resource: str, request: Request) -> Reply:
        try:
            body = request.json()
        except json.JSONDecodeError:
            return eve_error(400, "The browser (or proxy) sent a request that this server "
                                  "could not understand.")
        issues: dict[str, str] = {}
        for required in ("name", "provider_type") if resource == "cloudaccounts" else ("name",):
            if not body.get(required):
                issues[required] = "required field"
        if resource == "cloudaccounts" and body.get("provider_type") not in (None, "aws",
                                                                             "azure"):
            issues["provider_type"] = f"unallowed value {body['provider_type']}"
        for forbidden in ("_id", "status"):
            if forbidden in body:
                issues[forbidden] = "field is read-only"
        if resource == "cloudaccounts" and body.get("name") and self.account_named(body["name"]):
            issues["name"] = f"value '{body['name']}' is not unique"
        if issues:
            return eve_error(422, "Insertion failure: 1 document(s) contain(s) error(s)",
                             _issues=issues)
        doc = self.insert(resource, body)
        if resource == "cloudaccounts":
            doc["_aws"] = {"_id": self._new_id(), "name": f"cloudaccount-{doc['_id'][-6:]}",
                           "opt_out": [], "_deleted": False, "status": {}}
        reply = Reply.json({**self._public(resource, doc, {}), "_status": "OK"}, 201)
        reply.headers["Location"] = f"{self.url}{PREFIX}/{resource}/{doc['_id']}"
        return reply

    def _patch(self, resource: str, doc: dict[str, Any], request: Request) -> Reply:
        body = request.json()
        bad = [k for k in body if k.startswith("_") or k in ("status", "provider_type")]
        if bad:
            return eve_error(422, "Update failure", _issues={k: "field is read-only"
                                                             for k in bad})
        doc.update(body)
        self._stamp(doc)
        return Reply.json({**self._public(resource, doc, {}), "_status": "OK"})

    def _delete(self, resource: str, doc: dict[str, Any]) -> Reply:
        if resource == "cloudaccounts":
            users = [c for c in self.clusters_of(doc["_id"]) if self.agent_running(c)]
            if users:
                return eve_error(409, f"Cloud account is in use by {len(users)} cluster(s)")
            for cluster in self.clusters_of(doc["_id"]):
                del self.docs["kubeclusters"][cluster["_id"]]
        del self.docs[resource][doc["_id"]]
        return Reply(204, b"")

    def _agent_yaml(self, request: Request) -> Reply:
        wanted = self.url + request.path
        for cluster in self.docs["kubeclusters"].values():
            if cluster["status"].get("agentURL") == wanted:
                self.agents_fetched.append(cluster["name"])
                if self.agents is None and not cluster.get("_fetched"):
                    cluster["_fetched"] = True  # no cluster to run it in: fetched = installed
                    cluster["status"]["state"] = "PENDING"
                    self._stamp(cluster)
                manifest = (f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cloudcasa-io\n"
                            f"  labels:\n    cluster: {cluster['name']}\n")
                return Reply(200, manifest.encode(), "application/yaml")
        return Reply.text("no such agent", 404)


