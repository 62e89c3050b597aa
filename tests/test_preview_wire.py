"""Preview equals the wire, one procedure at a time (issue 19 part 4; see wire_rig).

Each test applies a procedure in this process against its fakes and asserts that
every request that changed something remote was previewed by the plan item that
sent it, with the same method, path and body (secrets masked in the plan).
"""

from __future__ import annotations

import socket

import pytest
from fakes.consul import FakeConsul
from wire_rig import plan_json, record_apply, session_for, wire_json

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
