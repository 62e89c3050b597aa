"""The Consul client against the fake Consul: Consul's quirks and its failures."""

from __future__ import annotations

import socket

import pytest

from tui.clients.consul import ConsulClient
from tui.http import RemoteError


@pytest.fixture
def client(consul):
    with ConsulClient(consul.url, consul.management_token, backoff=0.01) as c:
        yield c


def test_unknown_token_is_one_sentence_about_the_token(consul):
    with ConsulClient(consul.url, "not-a-token", backoff=0.01) as bad, \
            pytest.raises(RemoteError) as err:
        bad.token_self()
    assert err.value.status == 403
    assert "ACL not found" in str(err.value)
    assert "CLOUDRIG_SECRET_CONSUL_TOKEN" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_policy_is_none_only_with_a_valid_token(consul, client):
    assert client.policy_by_name("nope-policy") is None
    # The same 403 "ACL not found" must not be read as "no such policy".
    with ConsulClient(consul.url, "not-a-token", backoff=0.01) as bad, \
            pytest.raises(RemoteError):
        bad.policy_by_name("nope-policy")


def test_policy_create_update_and_duplicate(consul, client):
    created = client.create_policy("gw-policy", "Policy for gw", '{"node_prefix": []}')
    assert client.policy_by_name("gw-policy")["ID"] == created["ID"]
    updated = client.update_policy(created, "Policy for gw", '{"service": []}')
    assert updated["Rules"] == '{"service": []}'
    assert updated["Name"] == "gw-policy"
    with pytest.raises(RemoteError) as err:
        client.create_policy("gw-policy", "again", "{}")
    assert err.value.status == 500
    assert "already exists" in str(err.value)


def test_create_is_never_retried_but_reads_are(consul, client):
    consul.fail(500, "rpc error", times=2, path_prefix="/v1/acl/token/self")
    assert client.token_self()["SecretID"] == consul.management_token
    consul.fail(500, "rpc error", times=1, path_prefix="/v1/acl/token", method="PUT")
    before = len(consul.log)
    with pytest.raises(RemoteError):
        client.create_token("gw token", ["global-management"])
    assert len(consul.log) - before == 1
    assert len([t for t in consul.tokens.values() if t["Description"] == "gw token"]) == 0


def test_token_links_policy_and_validates(consul, client):
    policy = client.create_policy("gw-policy", "d", "{}")
    token = client.create_token("Token for gw", ["gw-policy"])
    assert token["Policies"] == [{"ID": policy["ID"], "Name": "gw-policy"}]
    assert client.token_valid(token["SecretID"])["AccessorID"] == token["AccessorID"]
    assert client.token_valid("00000000-dead-beef-0000-000000000000") is None
    assert [t["AccessorID"] for t in client.tokens_for_policy(policy["ID"])] == [
        token["AccessorID"]]


def test_kv_is_byte_exact(consul, client):
    value = "pa'ss\"wo$rd ${x}\n%s ü".encode() + b"\xff"
    client.kv_put("carbonio-files/db-password", value)
    assert consul.kv["carbonio-files/db-password"] == value
    assert client.kv_get("carbonio-files/db-password") == value
    assert client.kv_get("carbonio-files/missing") is None


def test_catalog_deregister_keeps_the_node(consul, client):
    client.catalog_register({"Node": "ext", "Address": "db.example.com",
                             "Service": {"ID": "files-db", "Service": "files-db", "Port": 5432}})
    client.catalog_register({"Node": "ext", "Address": "db.example.com",
                             "Service": {"ID": "other", "Service": "other", "Port": 1}})
    assert client.catalog_service("files-db")[0]["ServicePort"] == 5432
    client.catalog_deregister("ext", "files-db")
    assert client.catalog_service("files-db") == []
    assert "other" in consul.nodes["ext"]["services"]


def test_config_entry_round_trip(client):
    entry = {"Kind": "terminating-gateway", "Name": "gw", "Services": [{"Name": "db"}]}
    assert client.config_get("terminating-gateway", "gw") is None
    client.config_put(entry)
    assert client.config_get("terminating-gateway", "gw")["Services"] == [{"Name": "db"}]
    client.config_delete("terminating-gateway", "gw")
    client.config_delete("terminating-gateway", "gw")
    assert client.config_get("terminating-gateway", "gw") is None


def test_connection_refused_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ConsulClient(f"http://127.0.0.1:{port}", "t", backoff=0.01) as c, \
            pytest.raises(RemoteError) as err:
        c.token_self()
    assert f"127.0.0.1:{port}" in str(err.value)
    assert "cannot connect" in str(err.value)


def test_reset_then_success(consul, client):
    consul.reset(times=1, path_prefix="/v1/kv/")
    client.kv_put("k", b"v")
    assert client.kv_get("k") == b"v"


def test_the_token_is_read_once_per_client_and_a_refusal_is_not_kept(consul, client):
    """A dashboard refresh's checks share one client: the management-token check and
    the policy check (which must prove the token before it reads a 403) ask Consul for
    the token once between them; a refused read is asked again next time."""
    consul.fail(403, "ACL not found", path_prefix="/v1/acl/token/self")
    with pytest.raises(RemoteError):
        client.token_self()
    assert client.token_self()["SecretID"] == consul.management_token
    assert client.policy_by_name("nope-policy") is None
    assert client.token_self()["SecretID"] == consul.management_token
    reads = [r for r in consul.log if r.path == "/v1/acl/token/self"]
    assert len(reads) == 2  # the refused one, then one for everything after it
