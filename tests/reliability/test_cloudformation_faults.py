"""The CloudFormation client (boto3) under the same faults as the HTTP clients.

boto3 is pointed with AWS_ENDPOINT_URL at a fake that speaks CloudFormation's Query
API (`Action=DescribeStacks`, XML answers, AWS's error body) through the shared
fault-injecting server, including one that trickles its answer a byte at a time and
one whose answer never ends (AWS_ENDPOINT_URL at a broken or hostile server).
botocore retries 5xx, throttling and broken connections itself; its back-off sleeps
are skipped here so the test stays fast. Each fault must end in one `RemoteError`
sentence without a credential in it, and the same client must work once the fault
clears.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
import trustme
from fakes.server import FakeService, Reply, Request

from tui.http import RemoteError

pytest.importorskip("boto3")

SECRET_KEY = "fake-aws-secret-key-for-reliability"
XMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


class FakeCloudFormation(FakeService):
    """DescribeStacks for one stack, AWS's ValidationError for any other."""

    def handle(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
            return self._error(403, "IncompleteSignature", "the request is not signed")
        if form.get("Action") != "DescribeStacks":
            return self._error(400, "InvalidAction", f"{form.get('Action')} is not valid")
        if form.get("StackName") != "cloudcasa":
            return self._error(400, "ValidationError",
                               f"Stack with id {form.get('StackName')} does not exist")
        body = (f'<DescribeStacksResponse xmlns="{XMLNS}"><DescribeStacksResult><Stacks>'
                "<member><StackName>cloudcasa</StackName>"
                "<StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/cloudcasa/1</StackId>"
                "<StackStatus>CREATE_COMPLETE</StackStatus>"
                "<CreationTime>2026-11-23T08:00:00Z</CreationTime></member>"
                "</Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r-1</RequestId>"
                "</ResponseMetadata></DescribeStacksResponse>")
        return Reply(200, body.encode(), "text/xml")

    def _error(self, status: int, code: str, message: str) -> Reply:
        body = (f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
                f"<Message>{message}</Message></Error><RequestId>r-2</RequestId></ErrorResponse>")
        return Reply(status, body.encode(), "text/xml")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeCloudFormation]]:
    """Start the fake (optionally with TLS) and point boto3 at it, with no back-off."""
    import botocore.endpoint

    started: list[FakeCloudFormation] = []
    monkeypatch.setattr(botocore.endpoint, "time",
                        SimpleNamespace(**{**vars(time), "sleep": lambda seconds: None}))
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIARELIABILITY0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "0.5")

    def start(tls: ssl.SSLContext | None = None) -> FakeCloudFormation:
        fake = FakeCloudFormation()
        fake.start(tls=tls)
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


def _client():  # type: ignore[no-untyped-def]
    from tui.clients.cloudformation import CloudFormation

    return CloudFormation("us-east-1")


def _one_sentence(exc: RemoteError, *words: str) -> None:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text and SECRET_KEY not in text, text
    assert text.startswith("AWS CloudFormation could not describe stack cloudcasa"), text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"


HANG_GUARD = 60  # s: only so that a regression fails instead of hanging the suite

FAULTS: dict[str, tuple[Callable[[FakeService], None], tuple[str, ...]]] = {
    "5xx persisting": (lambda f: f.fail(
        503, f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Receiver</Type><Code>ServiceUnavailable'
             "</Code><Message>try later</Message></Error></ErrorResponse>", times=20,
        content_type="text/xml"), ("ServiceUnavailable",)),
    "throttled": (lambda f: f.fail(
        400, f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>Throttling</Code>'
             "<Message>Rate exceeded</Message></Error></ErrorResponse>", times=20,
        content_type="text/xml"), ("Throttling", "rerun")),
    # The exchange's deadline (CLOUDRIG_HTTP_TIMEOUT), not botocore's per-read timeout.
    "timeout": (lambda f: f.slow(1.5, times=20), ("timed out: no complete answer within",)),
    "trickle": (lambda f: f.trickle(0.05, times=20), ("timed out: no complete answer within",)),
    "flood": (lambda f: f.flood(64 << 20, times=20),
              ("the answer is larger than the 16 MiB CloudRig reads",)),
    "connection reset": (lambda f: f.reset(times=20), ("cannot reach AWS",)),
    "malformed XML": (lambda f: f.fail(200, "<DescribeStacksResponse><oops", times=20,
                                       content_type="text/xml"), ("not AWS's",)),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_is_one_sentence_and_the_client_recovers(aws, fault: str,
                                                          monkeypatch) -> None:
    inject, words = FAULTS[fault]
    # The answers before and after the fault get a deadline no loaded machine misses;
    # only a call meant to end at the deadline gets the short one.
    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "60")
    fake = aws()
    client = _client()
    assert client.stack("cloudcasa").status == "CREATE_COMPLETE"  # the fake answers as AWS
    assert client.stack("other") is None  # AWS's "does not exist" is no stack, not an error
    if fault in ("timeout", "trickle"):
        monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "0.5")
    faulted = _client()
    inject(fake)
    with pytest.raises(RemoteError) as caught:
        faulted.stack("cloudcasa")
    faulted.close()
    _one_sentence(caught.value, *words)
    if fault in ("timeout", "trickle", "flood"):  # ended at once: botocore did not retry
        assert len(fake.log) == 3
    if fault == "flood":  # the server counts what it sent once the client has hung up
        for _ in range(HANG_GUARD * 100):
            if fake.flooded:
                break
            time.sleep(0.01)
        assert fake.flooded and fake.flooded[0] < 64 << 20
    fake.faults.clear()
    assert client.stack("cloudcasa").status == "CREATE_COMPLETE"
    client.close()


def test_an_untrusted_certificate_then_its_ca(aws, tmp_path, monkeypatch) -> None:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    aws(tls=context)
    with pytest.raises(RemoteError) as caught:
        _client().stack("cloudcasa")
    _one_sentence(caught.value, "not trusted", "AWS_CA_BUNDLE")
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    assert _client().stack("cloudcasa").status == "CREATE_COMPLETE"
