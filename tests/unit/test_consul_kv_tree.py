"""Consul's recursive KV read (`GET /v1/kv/<prefix>?recurse`), in the fake as Consul
answers it and in the client, whose `kv_values` must read exactly what one `kv_get`
per key reads (it is what the carbonio KV check asks, once per refresh)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from fakes.consul import FakeConsul

from tui.clients.consul import ConsulClient
from tui.http import RemoteError

KEYS = ["app/db-name", "app/db-username", "app/db-password"]


@pytest.fixture
def client(consul: FakeConsul):
    with ConsulClient(consul.url, consul.management_token, backoff=0.01) as c:
        yield c


def _token(consul: FakeConsul, client: ConsulClient, rules: dict) -> str:
    client.create_policy("kv-reader", "reads some keys", json.dumps(rules))
    return client.create_token("kv reader", ["kv-reader"])["SecretID"]


def _get(consul: FakeConsul, path: str, token: str | None = None) -> httpx.Response:
    return httpx.get(consul.url + path,
                     headers={"X-Consul-Token": token or consul.management_token})


def test_a_recursive_read_answers_every_key_under_the_prefix_as_consul_does(consul, client):
    """api-docs/kv.mdx "Read Key" with `recurse`: a JSON array of the entries under the
    prefix in key order, values base64 (null when empty), `raw` ignored; 404 with an
    empty body when no key is there."""
    client.kv_put("app/b", b"2")
    client.kv_put("app/a", b"\x00one")
    client.kv_put("app/empty", b"")
    client.kv_put("apple", b"not under app/")
    for query in ("?recurse", "?recurse&raw"):
        response = _get(consul, "/v1/kv/app/" + query)
        assert response.status_code == 200
        entries = response.json()
        assert [e["Key"] for e in entries] == ["app/a", "app/b", "app/empty"]
        assert base64.b64decode(entries[0]["Value"]) == b"\x00one"
        assert entries[2]["Value"] is None
        assert set(entries[0]) == {"Key", "Value", "Flags", "LockIndex", "CreateIndex",
                                   "ModifyIndex"}
    missing = _get(consul, "/v1/kv/nothing/?recurse")
    assert (missing.status_code, missing.content) == (404, b"")


def test_a_recursive_read_leaves_out_what_the_token_may_not_read(consul, client):
    """Consul filters the answer (agent/consul/kvs_endpoint.go KVS.List, FilterDirEnt)
    instead of refusing it: nothing readable is a 404, not a 403; the single-key read
    of a denied key is the 403."""
    for key in KEYS:
        client.kv_put(key, b"v")
    token = _token(consul, client, {"key_prefix": [{"app/": {"policy": "read"}}],
                                    "key": [{"app/db-password": {"policy": "deny"}}]})
    entries = _get(consul, "/v1/kv/app/?recurse", token).json()
    assert [e["Key"] for e in entries] == ["app/db-name", "app/db-username"]
    assert _get(consul, "/v1/kv/app/db-password?recurse", token).status_code == 404
    denied = _get(consul, "/v1/kv/app/db-password", token)
    assert denied.status_code == 403 and "key:read" in denied.text


def test_under_the_key_list_policy_a_recursive_read_needs_list(consul, client):
    """`acl.enable_key_list_policy`: a recursive read needs `list` on the prefix."""
    client.kv_put("app/x", b"v")
    consul.key_list_policy = True
    reader = _token(consul, client, {"key_prefix": [{"app/": {"policy": "read"}}]})
    refused = _get(consul, "/v1/kv/app/?recurse", reader)
    assert refused.status_code == 403 and "'key:list'" in refused.text
    assert _get(consul, "/v1/kv/app/x", reader).status_code == 200  # a single key: read
    client.update_policy(consul.policy_named("kv-reader"), "lists",
                         json.dumps({"key_prefix": [{"app/": {"policy": "list"}}]}))
    assert _get(consul, "/v1/kv/app/?recurse", reader).status_code == 200


def _reads(consul: FakeConsul, since: int) -> list[str]:
    return [r.path + ("?recurse" if "recurse" in r.query else "")
            for r in consul.log[since:]]


def test_kv_values_reads_all_keys_in_one_request_when_they_are_there(consul, client):
    for key in KEYS:
        client.kv_put(key, key.encode())
    client.kv_put("app/db-other", b"not asked for")
    before = len(consul.log)
    values = client.kv_values(KEYS)
    assert _reads(consul, before) == ["/v1/kv/app/db-?recurse"]
    assert values == {key: client.kv_get(key) for key in KEYS}


def test_kv_values_reads_a_key_it_did_not_see_alone(consul, client):
    """A missing key is None, as kv_get says; nothing under the prefix at all (404)
    reads each key alone."""
    client.kv_put("app/db-name", b"n")
    before = len(consul.log)
    values = client.kv_values(KEYS)
    assert values == {"app/db-name": b"n", "app/db-username": None, "app/db-password": None}
    assert _reads(consul, before) == ["/v1/kv/app/db-?recurse", "/v1/kv/app/db-username",
                                      "/v1/kv/app/db-password"]
    assert client.kv_values(["other/a", "other/b"]) == {"other/a": None, "other/b": None}


@pytest.mark.parametrize("key_list_policy", [False, True])
def test_kv_values_says_what_kv_get_says_for_a_denied_key(consul, client, key_list_policy):
    """Filtered out of the tree (or the tree refused, under the key-list policy), a
    denied key is read alone: the same 403 sentence as kv_get's, not "missing"."""
    for key in KEYS:
        client.kv_put(key, b"v")
    consul.key_list_policy = key_list_policy
    token = _token(consul, client, {"key_prefix": [{"app/": {"policy": "read"}}],
                                    "key": [{"app/db-password": {"policy": "deny"}}]})
    with ConsulClient(consul.url, token, backoff=0.01) as reader:
        with pytest.raises(RemoteError) as alone:
            reader.kv_get("app/db-password")
        with pytest.raises(RemoteError) as together:
            reader.kv_values(KEYS)
    assert str(together.value) == str(alone.value)
    assert together.value.status == 403 and "denied GET /v1/kv/app/db-password" in str(
        together.value)


def test_kv_values_with_an_unknown_token_says_what_kv_get_says(consul):
    with ConsulClient(consul.url, "not-a-token", backoff=0.01) as bad:
        with pytest.raises(RemoteError) as alone:
            bad.kv_get(KEYS[0])
        with pytest.raises(RemoteError) as together:
            bad.kv_values(KEYS)
    assert str(together.value) == str(alone.value)
    assert "ACL not found" in str(together.value)


@pytest.mark.parametrize("body", ['{"truncated": [1, 2', '{"Key": "app/db-name"}',
                                  '[{"Key": "app/db-name", "Value": "not base64!"}]'])
def test_kv_values_refuses_an_answer_that_is_not_kv_entries(consul, client, body):
    consul.fail(200, body, path_prefix="/v1/kv/app/db-", content_type="application/json")
    with pytest.raises(RemoteError) as err:
        client.kv_values(KEYS)
    assert "/v1/kv/app/db-?recurse" in str(err.value)
    assert "\n" not in str(err.value)
