"""Preview equals the wire, one procedure at a time (issue 19 part 4; see wire_rig).

Each test applies a procedure in this process against its fakes and asserts that
every request that changed something remote was previewed by the plan item that
sent it, with the same method, path and body (secrets masked in the plan).
"""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes.cloudstack import CHANGES as CS_CHANGES
from fakes.cloudstack import FakeCloudStack
from fakes.consul import FakeConsul
from fakes.server import Request
from wire_rig import Shape, parsed, plan_json, record_apply, session_for, wire_json

from tui.redact import redact

CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def consul():
    fake = FakeConsul().start()
    yield fake
    fake.stop()


def test_carbonio_apply_sends_what_its_plan_shows(consul, tmp_path, monkeypatch,
                                                  clean_redact):
    """The policy exists with other rules (another team's, in two datacenters): the
    update is a full replace carrying its ID and Datacenters — the preview shows that
    body, not a shorter one. Then every other call: token, catalog, config entry, KV
    (the password masked in the plan)."""
    password = "pa'ss \"$word\\ ${x}"
    pid = "5e1f0c3a-8d55-4a5c-9a8e-2f7c1b1a0001"
    consul.policies[pid] = consul._policy_record(
        pid, "carbonio-gateway-policy", "an older description",
        'key_prefix "old/" { policy = "read" }', ["dc1", "dc2"])
    session = session_for("carbonio", {
        "consul_url": consul.url, "external_address": "127.0.0.1",
        "external_port": _closed_port(), "create_database": False,
        "db_name": "carbonio-files-adm", "db_username": "carbonio-files-adm",
    }, {"consul_token": consul.management_token, "db_password": password}, tmp_path)
    record = record_apply(monkeypatch, session, [consul])
    sent = record.check(lambda r: r.method in CHANGING, wire_json, plan_json,
                        [password, consul.management_token])
    paths = [(method, path) for method, path, _body in sent]
    assert paths == [("PUT", f"/v1/acl/policy/{pid}"), ("PUT", "/v1/acl/token"),
                     ("PUT", "/v1/catalog/register"), ("PUT", "/v1/config"),
                     ("PUT", "/v1/kv/carbonio-files/db-name"),
                     ("PUT", "/v1/kv/carbonio-files/db-username"),
                     ("PUT", "/v1/kv/carbonio-files/db-password")]
    assert sent[0][2]["Datacenters"] == ["dc1", "dc2"] and sent[0][2]["ID"] == pid
    assert sent[-1][2] == "••••••"
    assert consul.policies[pid]["Datacenters"] == ["dc1", "dc2"]


SIGNING = {"apiKey", "signature", "signatureVersion", "expires", "response"}


def cloudstack_wire(request: Request) -> Shape:
    """A CloudStack command: its parameters (query or form body), without the signing
    ones the client adds when it sends (they change with the clock)."""
    params = FakeCloudStack._params(request)
    return (request.method, request.path,
            parsed(redact(json.dumps({k: v for k, v in params.items()
                                      if k not in SIGNING}))))


def cloudstack_plan(view: dict[str, Any]) -> Shape:
    """The previewed command: parameters in the URL's query and in the body alike."""
    url = urlsplit(view["url"])
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    return (view["method"], url.path, params | (parsed(view.get("body")) or {}))


def test_cloudstack_apply_sends_what_its_plan_shows(tmp_path, monkeypatch, clean_redact):
    """A running instance with restart on: stop (a state-changing GET), the user data
    (POST: over the GET limit, as base64), start — each as its plan item showed it."""
    fake = FakeCloudStack(job_polls=2).start()
    try:
        vm = fake.vm = fake.add_vm("web-1", [fake.add_network("guest-net", "VirtualRouter")])
        user_data = "#cloud-config\nruncmd:\n" + "".join(
            f"- echo line {i} >> /var/log/boot.txt\n" for i in range(160))
        session = session_for("cloudstack", {
            "api_url": fake.url + "/client/api", "api_key": fake.api_key, "vm": "web-1",
            "user_data": user_data, "restart": True,
        }, {"secret_key": fake.secret_key}, tmp_path, root=False)
        record = record_apply(monkeypatch, session, [fake])
        changing = lambda r: FakeCloudStack._params(r).get("command") in CS_CHANGES  # noqa: E731
        sent = record.check(changing, cloudstack_wire, cloudstack_plan, [fake.secret_key])
    finally:
        fake.stop()
    assert [(m, b["command"]) for m, _p, b in sent] == [
        ("GET", "stopVirtualMachine"), ("POST", "updateVirtualMachine"),
        ("GET", "startVirtualMachine")]
    assert sent[1][2]["userdata"] == base64.b64encode(user_data.encode()).decode()
    assert sent[1][2]["id"] == vm["id"]


def test_cloudblue_apply_reads_what_its_plan_shows_and_changes_nothing_remote(tmp_path):
    """Connect is only read (the connector changes it, not CloudRig): no changing
    request reaches it, and every call the plan shows is a request the apply makes."""
    from cloudblue_rig import CLOUDBLUE_TOKEN, VAP_TOKEN, started_rig

    with started_rig(tmp_path) as blue:
        answers = str(blue.write_answers())
        plan = blue.cli("plan", "cloudblue", "--answers", answers, "--root", str(blue.root),
                       "--json")
        assert plan.returncode == 0, plan.stderr
        shown = {(i["method"], urlsplit(i["url"]).path)
                 for s in json.loads(plan.stdout)["steps"] for i in s["items"]
                 if i["kind"] == "api"}
        before = len(blue.connect.log)
        result = blue.apply()
        assert result.returncode == 0, result.stderr
        sent = blue.connect.log[before:]
    assert [f"{r.method} {r.path}" for r in sent if r.method in CHANGING] == []
    assert shown and shown <= {(r.method, r.path) for r in sent}, (shown, sent)
    for secret in (CLOUDBLUE_TOKEN, VAP_TOKEN, CLOUDBLUE_TOKEN.split(":")[-1]):
        assert secret not in plan.stdout


def test_atmosphere_apply_sends_what_its_plan_shows(tmp_path, monkeypatch, clean_redact):
    """Keystone: the project, the user in it (its id in the body), the grant (both ids in
    the path) — each sent as the plan showed it when it ran, the password masked; then,
    on a second apply with the password changed, the one login and the PATCH it leads
    to, each its own previewed call."""
    from atmosphere_rig import ADMIN_PASSWORD, ATMO_PASSWORD, PROVIDER_SECRET, base_answers
    from fakes.keystone import FakeKeystone

    fake = FakeKeystone(admin_password=ADMIN_PASSWORD).start()
    secrets = {"os_admin_password": ADMIN_PASSWORD, "atmo_admin_password": ATMO_PASSWORD,
               "provider_secret": PROVIDER_SECRET}
    login = lambda r: r.path == "/v3/auth/tokens"  # noqa: E731  (the admin's token)
    try:
        answers = base_answers(tmp_path, host_role="workstation", auth_url=f"{fake.url}/v3")
        session = session_for("atmosphere", answers, secrets, tmp_path)
        record = record_apply(monkeypatch, session, [fake], only=["keystone"])
        sent = record.check(lambda r: r.method in CHANGING, wire_json, plan_json,
                            [ADMIN_PASSWORD, ATMO_PASSWORD], unplanned_ok=login)
        project, user = fake.project_named("atmoadmin"), fake.user_named("atmoadmin")
        role = fake.role_named("admin")
        assert [(m, p) for m, p, _b in sent] == [
            ("POST", "/v3/projects"), ("POST", "/v3/users"),
            ("PUT", f"/v3/projects/{project['id']}/users/{user['id']}/roles/{role['id']}")]
        assert sent[1][2]["user"]["default_project_id"] == project["id"]
        assert sent[1][2]["user"]["password"] == "••••••"

        fake.passwords[user["id"]] = "changed by someone"
        session = session_for("atmosphere", answers, secrets, tmp_path)
        record = record_apply(monkeypatch, session, [fake], only=["keystone"])
        sent = record.check(lambda r: r.method in CHANGING, wire_json, plan_json,
                            [ADMIN_PASSWORD, ATMO_PASSWORD], unplanned_ok=login)
    finally:
        fake.stop()
    assert [(m, p) for m, p, _b in sent] == [("POST", "/v3/auth/tokens"),
                                             ("PATCH", f"/v3/users/{user['id']}")]
    assert fake.passwords[user["id"]] == ATMO_PASSWORD


def aws_query(request: Request) -> Shape:
    """A CloudFormation action as moto received it (AWS query protocol: `Parameters.
    member.1.ParameterKey=…`), as the keyword arguments boto3 was given."""
    flat = {k: v[0] for k, v in request.query.items() if k not in ("Action", "Version")}
    out: dict[str, Any] = {}
    members: dict[str, dict[int, Any]] = {}
    for key, value in flat.items():
        name, *rest = key.split(".")
        if not rest:
            out[name] = value
        elif rest[0] == "member" and len(rest) == 2:
            members.setdefault(name, {})[int(rest[1])] = value
        elif rest[0] == "member" and len(rest) == 3:
            members.setdefault(name, {}).setdefault(int(rest[1]), {})[rest[2]] = value
    for name, items in members.items():
        out[name] = [items[i] for i in sorted(items)]
    return (request.query["Action"][0], f"/stacks/{flat.get('StackName')}",
            parsed(redact(json.dumps(out))))


def test_cloudcasa_apply_sends_what_its_plan_shows(rig, tmp_path, monkeypatch,
                                                   clean_redact):
    """CloudCasa and CloudFormation: the account, the stack (its parameters with the new
    account's id, as boto3 sends them), the inventory the clusters step asks for — each
    as its plan item showed it, the API key nowhere in the plan."""
    from cloudcasa_rig import aws_env

    for name, value in {**rig.kube_env(), **aws_env(rig.aws)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", f"{rig.tmp / 'bin'}:{os.environ['PATH']}")
    session = session_for("cloudcasa", rig.answers, rig.secrets, tmp_path, root=False)
    record = record_apply(monkeypatch, session, [rig.casa],
                          extra_logs=[lambda: rig.strict.log])
    changing = lambda r: (r.method in CHANGING and "Action" not in r.query) or (  # noqa: E731
        r.query.get("Action", [""])[0] in ("CreateStack", "UpdateStack", "DeleteStack"))

    def wire(request: Request) -> Shape:
        return aws_query(request) if "Action" in request.query else wire_json(request)

    sent = record.check(changing, wire, plan_json, [rig.secrets["api_key"]])
    account = rig.casa.account_named("prod-aws")
    assert [(m, p) for m, p, _b in sent] == [
        ("POST", "/api/v1/cloudaccounts"), ("CreateStack", "/stacks/cloudcasa"),
        ("POST", f"/api/v1/cloudaccounts/{account['_id']}/action/inventory")]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in sent[1][2]["Parameters"]}
    assert parameters["CCAccountId"] == account["_id"]
    assert sent[1][2]["Capabilities"] == ["CAPABILITY_IAM"]
