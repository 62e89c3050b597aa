"""gateway-config.hcl and the terminating-gateway config entry call come from one
structure (issue 19 part 5): the HCL file, read back by python-hcl2, equals the
JSON body PUT /v1/config sends, whatever the answers — and follows that structure
when it changes."""

from __future__ import annotations

import json
from typing import Any

import hcl2
import pytest
from fakes.consul import FakeConsul
from wire_rig import session_for

from tui.model import ApiCall, FileWrite

HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False,
                                        explicit_blocks=False)


@pytest.fixture
def consul():
    fake = FakeConsul().start()
    yield fake
    fake.stop()


def file_and_call(consul: FakeConsul, tmp_path, **answers: Any) -> tuple[Any, Any]:
    session = session_for("carbonio", {"consul_url": consul.url, "db_name": "files",
                                       "db_username": "files", **answers},
                          {"consul_token": consul.management_token}, tmp_path)
    (plan,) = session.plan(["gateway-config"])
    (written,) = [i for i in plan.items if isinstance(i, FileWrite)]
    (call,) = [i for i in plan.items if isinstance(i, ApiCall)]
    assert (call.method, call.url) == ("PUT", consul.url + "/v1/config")
    body = json.loads(session.item_view(call).body)
    return hcl2.loads(written.content, serialization_options=HCL_OPTIONS), body


@pytest.mark.parametrize("answers", [
    {"external_address": "db.example.com"},
    {"external_address": "10.0.0.7", "ca_file": "/etc/ssl/db ca%.pem",
     "sni": "db.example.com", "gateway_name": "gw-1", "service_name": "files-db"},
    {"external_address": "db.example.com", "sni": "db.example.com"},
])
def test_the_hcl_file_is_the_json_the_call_sends(consul, tmp_path, answers):
    hcl, body = file_and_call(consul, tmp_path, **answers)
    assert hcl == body
    assert body["Kind"] == "terminating-gateway"


def test_the_file_follows_the_structure_the_call_sends(consul, tmp_path, monkeypatch):
    """A field or service added to the entry (as a later runbook might) reaches the
    file too: there is no second description of it to forget."""
    from tui.procedures.carbonio import steps

    original = steps.gateway_entry

    def more(a: Any) -> dict[str, Any]:
        entry = original(a)
        entry["Services"].append({"Name": "billing-db", "SNI": 'db "2"', "CAFile": "/ca.pem"})
        return entry

    monkeypatch.setattr(steps, "gateway_entry", more)
    hcl, body = file_and_call(consul, tmp_path, external_address="db.example.com")
    assert hcl == body
    assert [s["Name"] for s in hcl["Services"]] == ["carbonio-files-db", "billing-db"]
