"""The Connect client against the fake Connect API: auth, 404s, paging, failures."""

from __future__ import annotations

import pytest

from tui.clients.connect import ConnectClient, authorization
from tui.http import RemoteError


@pytest.fixture
def client(connect):
    with ConnectClient(connect.endpoint, connect.api_key, backoff=0.01) as c:
        yield c


def test_key_goes_verbatim_with_its_apikey_prefix(connect, client):
    assert client.accounts()[0]["id"] == "VA-392-495"
    assert connect.log[-1].headers["authorization"] == connect.api_key
    assert connect.log[-1].path == "/public/v1/accounts"
    bare = connect.api_key.removeprefix("ApiKey ")
    assert authorization(bare) == connect.api_key
    with pytest.raises(ValueError, match="Integrations > Tokens"):
        authorization("Bearer abc")


def test_wrong_key_is_one_sentence_naming_the_secret(connect):
    with ConnectClient(connect.endpoint, "ApiKey SU-000-000-000:wrong", backoff=0.01) as bad, \
            pytest.raises(RemoteError) as err:
        bad.product("PRD-276-377-545")
    assert err.value.status == 401
    text = str(err.value)
    assert "AUTH_001" in text and "cloudblue_token" in text and "\n" not in text
    assert "wrong" not in text


def test_unknown_ids_are_none_and_known_ones_read(client):
    assert client.product("PRD-276-377-545")["status"] == "published"
    assert client.product("PRD-000-000-000") is None
    assert [t["id"] for t in client.templates("PRD-276-377-545")] == ["TL-551-876-782"]
    assert client.templates("PRD-000-000-000") is None
    assert client.marketplace("MP-05011")["id"] == "MP-05011"
    assert client.marketplace("MP-99999") is None


def test_templates_are_read_page_by_page(connect, client):
    ids = [f"TL-{i:03d}-000-000" for i in range(250)]
    connect.add_product("PRD-111-111-111", *ids)
    assert [t["id"] for t in client.templates("PRD-111-111-111")] == ids
    offsets = [r.arg("offset") for r in connect.log if r.path.endswith("111-111-111/templates")]
    assert offsets == ["0", "100", "200"]


def test_5xx_is_retried_then_succeeds(connect, client):
    connect.fail(503, '{"error_code": "SYS-000", "errors": ["busy"]}', times=2,
                 path_prefix="/public/v1/products/")
    assert client.product("PRD-276-377-545") is not None


@pytest.mark.parametrize("status", [403, 429, 500])
def test_persistent_failures_are_one_sentence(connect, client, status):
    connect.fail(status, '{"error_code": "X", "errors": ["nope"]}', times=10,
                 path_prefix="/public/v1/products/")
    with pytest.raises(RemoteError) as err:
        client.product("PRD-276-377-545")
    assert err.value.status == status
    assert "PRD-276-377-545" in str(err.value) and "\n" not in str(err.value)


def test_malformed_json_and_timeouts_are_sentences(connect):
    connect.fail(200, "<html>login</html>", path_prefix="/public/v1/products/")
    with ConnectClient(connect.endpoint, connect.api_key, backoff=0.01) as client, \
            pytest.raises(RemoteError, match="not JSON"):
        client.product("PRD-276-377-545")
    connect.slow(3, times=5, path_prefix="/public/v1/products/")
    with ConnectClient(connect.endpoint, connect.api_key, backoff=0.01) as client:
        client.http.timeout = 0.3
        client.http._transport.retries = 0  # type: ignore[attr-defined]
        with pytest.raises(RemoteError, match="timed out"):
            client.product("PRD-276-377-545")
