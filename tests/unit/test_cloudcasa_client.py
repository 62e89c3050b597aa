"""The CloudCasa client against the fake: Eve conventions and one sentence per failure."""

from __future__ import annotations

import json

import pytest

from tui.clients.cloudcasa import CloudCasaClient, CloudCasaError, Document
from tui.http import RemoteError


@pytest.fixture
def client(casa):
    with CloudCasaClient(casa.url + "/api/v1", casa.api_key, backoff=0.001,
                         timeout=0.5) as client:
        yield client


def _account(client: CloudCasaClient, name: str = "acct") -> Document:
    return client.create("cloudaccounts", {"name": name, "provider_type": "aws"})


def test_create_find_embedded_and_bearer(client, casa):
    created = _account(client)
    assert len(created.id) == 24 and created.etag
    assert casa.log[-1].headers["authorization"] == f"Bearer {casa.api_key}"
    found = client.cloudaccount_named("acct")
    assert found is not None and found.id == created.id
    query = casa.log[-1].query
    assert json.loads(query["where"][0]) == {"name": "acct"}
    assert json.loads(query["embedded"][0]) == {"aws.awsaccount": 1}
    assert client.cloudaccount_named("other") is None
    for _ in range(casa.pending_after + 1):
        doc = client.cloudaccount(created.id)
    assert doc.state == "PENDING"
    assert "templateURL=" in doc.field("aws.awsaccount.status.cfLaunchURL")


def test_lists_are_read_to_the_last_page(client, casa):
    account = _account(client)
    for i in range(120):
        casa.insert("kubeclusters", {"name": f"c{i}", "status": {"cloudaccount": account.id}})
    casa.insert("kubeclusters", {"name": "elsewhere", "status": {"cloudaccount": "x"}})
    found = client.clusters_of(account.id)
    assert [c.name for c in found] == [f"c{i}" for i in range(120)]
    pages = [r.query["page"][0] for r in casa.log if r.path.endswith("/kubeclusters")]
    assert pages == ["1", "2", "3"]


def test_stale_etag_is_412_with_its_own_sentence(client, casa):
    doc = _account(client)
    casa.touch("cloudaccounts", doc.id)  # someone else edits it meanwhile
    with pytest.raises(CloudCasaError) as caught:
        client.patch("cloudaccounts", doc, {"description": "mine"})
    assert caught.value.status == 412
    assert caught.value.sentence == (
        f"PATCH {casa.url}/api/v1/cloudaccounts/{doc.id} was refused because the document "
        "changed since CloudRig read it (412 stale etag (Client and server etags don't "
        "match)); someone else edited it: rerun to read it again and reapply")
    fresh = client.get("cloudaccounts", doc.id)
    assert client.patch("cloudaccounts", fresh, {"description": "mine"}).etag != fresh.etag


def test_missing_etag_is_428_and_delete_uses_a_fresh_one(client, casa):
    doc = _account(client)
    with pytest.raises(CloudCasaError) as caught:
        client.delete("cloudaccounts", doc.model_copy(update={"etag": ""}))
    assert caught.value.status == 428
    assert "refused without an etag (428" in caught.value.sentence
    casa.touch("cloudaccounts", doc.id)
    client.delete_cloudaccount(doc.id)  # re-reads, so the etag is current
    assert casa.docs["cloudaccounts"] == {}


def test_unknown_id_is_404_with_its_own_sentence(client, casa):
    with pytest.raises(CloudCasaError) as caught:
        client.cloudaccount("5fe91b64570ccd792017ffff")
    assert caught.value.status == 404
    assert "answered 404 (The requested URL was not found on the server.): it no longer " \
           "exists in CloudCasa" in caught.value.sentence


def test_bad_key_is_401_with_its_own_sentence(casa):
    with CloudCasaClient(casa.url + "/api/v1", "cc-wrong-key-0000") as client, \
            pytest.raises(CloudCasaError) as caught:
        client.cloudaccount_named("acct")
    assert caught.value.status == 401
    assert "refused the API key (401 (Please provide proper credentials))" in str(caught.value)
    assert "cc-wrong-key" not in str(caught.value)


def test_validation_issues_are_listed(client):
    with pytest.raises(CloudCasaError) as caught:
        client.create("cloudaccounts", {"name": "x", "provider_type": "gcp"})
    assert caught.value.sentence.endswith("(422): provider_type: unallowed value gcp")


@pytest.mark.parametrize(("status", "words"), [
    (429, "is rate limiting GET"), (500, "CloudCasa failed on GET"),
    (503, "CloudCasa failed on GET")])
def test_429_and_5xx_are_retried_then_one_sentence(client, casa, status, words):
    body = json.dumps({"_status": "ERR", "_error": {"code": status, "message": "busy"}})
    casa.fail(status, body, times=5, path_prefix="/api/v1/cloudaccounts")
    with pytest.raises(CloudCasaError) as caught:
        client.cloudaccount_named("acct")
    assert words in caught.value.sentence and "(busy)" in caught.value.sentence
    assert len(casa.log) == 5  # the first try and four retries


def test_a_transient_500_is_retried_quietly(client, casa):
    casa.fail(500, "", times=2, path_prefix="/api/v1/cloudaccounts")
    assert client.cloudaccount_named("acct") is None


def test_a_create_is_never_retried(client, casa):
    casa.fail(503, "", times=1, path_prefix="/api/v1/cloudaccounts", method="POST")
    with pytest.raises(CloudCasaError):
        _account(client)
    assert [r.method for r in casa.log] == ["POST"]


def test_timeout_and_malformed_json_are_sentences(client, casa):
    casa.slow(2.0, path_prefix="/api/v1/cloudaccounts")
    with pytest.raises(RemoteError) as caught:
        client.cloudaccount_named("acct")
    assert "timed out; check that the service is up" in caught.value.sentence
    casa.fail(200, "<html>login</html>", path_prefix="/api/v1/cloudaccounts")
    with pytest.raises(RemoteError) as caught:
        client.cloudaccount_named("acct")
    assert "with a body that is not JSON ('<html>login</html>')" in caught.value.sentence
