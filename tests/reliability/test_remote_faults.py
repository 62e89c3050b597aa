"""Every remote client against its fake, with every failure a real service has.

Clients: Consul, CloudBlue Connect, CloudStack, Keystone, CloudCasa. Faults: 5xx that
persists, 429 with Retry-After then success, 429 that persists, a read timeout, a
connection reset, malformed JSON, a body trickled a byte at a time, a body that never
ends and an untrusted TLS certificate. Each must end in
one `RemoteError` sentence (no traceback, no secret, naming the endpoint and what to
do) and leave a consistent state: a failed create created nothing and was not
retried, and once the fault clears the same client works again.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from fakes.cloudcasa import FakeCloudCasa
from fakes.cloudstack import FakeCloudStack
from fakes.connect import FakeConnect
from fakes.consul import FakeConsul
from fakes.keystone import FakeKeystone
from fakes.server import FakeService

from tui.clients.cloudcasa import CloudCasaClient
from tui.clients.cloudstack import CloudStackClient
from tui.clients.connect import ConnectClient
from tui.clients.consul import ConsulClient
from tui.clients.keystone import KeystoneClient
from tui.http import RemoteError

KEYSTONE_PASSWORD = "keystone-admin-pa55-reliability"


@dataclass
class Subject:
    """How to reach one client's fake, read from it, create on it and count what exists."""

    name: str
    fake: Callable[[], FakeService]
    client: Callable[[FakeService, str, str | None], Any]  # fake, base URL, CA file
    read: Callable[[Any], Any]
    path: str  # the read's path prefix on the fake (where faults are injected)
    secret: Callable[[FakeService], str]
    create: Callable[[Any], Any] | None = None
    create_path: str = ""
    created: int = 200  # the status a successful create answers
    count: Callable[[FakeService], int] = lambda fake: 0


def _keystone_client(fake: FakeService, url: str, ca: str | None) -> KeystoneClient:
    return KeystoneClient(f"{url}/v3", username="admin", password=KEYSTONE_PASSWORD,
                          project="admin", user_domain="Default", ca_file=ca, backoff=0.01)


SUBJECTS = [
    Subject("consul", FakeConsul,
            lambda f, url, ca: ConsulClient(url, f.management_token, ca_file=ca, backoff=0.01),
            lambda c: c.policy_by_name("reliability"), "/v1/acl/policy/name/",
            lambda f: f.management_token,
            create=lambda c: c.create_policy("reliability", "test", 'key "" { policy = "read" }'),
            create_path="/v1/acl/policy",
            count=lambda f: len(f.policies)),
    Subject("connect", FakeConnect,
            lambda f, url, ca: ConnectClient(url + f.endpoint[len(f.url):], f.api_key,
                                             ca_file=ca, backoff=0.01),
            lambda c: c.accounts(), "/public/v1/accounts", lambda f: f.api_key.split(":")[-1]),
    Subject("cloudstack", FakeCloudStack,
            lambda f, url, ca: CloudStackClient(url + "/client/api", f.api_key, f.secret_key,
                                                ca_file=ca, backoff=0.01),
            lambda c: c.capabilities(), "/client/api", lambda f: f.secret_key),
    Subject("keystone", lambda: FakeKeystone(KEYSTONE_PASSWORD), _keystone_client,
            lambda c: c.find_role("member"), "/v3/roles", lambda f: KEYSTONE_PASSWORD,
            create=lambda c: c.create_project("reliability", "default", "test"),
            create_path="/v3/projects", created=201,
            count=lambda f: len(f.projects)),
    Subject("cloudcasa", FakeCloudCasa,
            lambda f, url, ca: CloudCasaClient(url + "/api/v1", f.api_key, ca_file=ca,
                                               backoff=0.01),
            lambda c: c.cloudaccount_named("reliability"), "/api/v1/cloudaccounts",
            lambda f: f.api_key,
            create=lambda c: c.create("cloudaccounts", {"name": "reliability",
                                                        "provider_type": "aws"}),
            create_path="/api/v1/cloudaccounts", created=201,
            count=lambda f: len(f.docs["cloudaccounts"])),
]
BY_NAME = {s.name: s for s in SUBJECTS}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Subject, FakeService]]:
    subject = BY_NAME[request.param]
    fake = subject.fake().start()
    yield subject, fake
    fake.stop()


def _sentence(exc: RemoteError, subject: Subject, fake: FakeService, *words: str) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text, text
    assert subject.secret(fake) not in text, "a secret is in the sentence"
    assert "127.0.0.1" in text, f"the endpoint is not named: {text}"
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    return text


def _works_again(subject: Subject, fake: FakeService, client: Any) -> None:
    fake.faults.clear()
    subject.read(client)  # the same client, after the fault: no broken pool, no stale state


NAMES = [s.name for s in SUBJECTS]


# fault → (how to inject it on the read's path, words the sentence must hold)
FAULTS: dict[str, tuple[Callable[[FakeService, str], None], tuple[str, ...]]] = {
    "5xx persisting": (lambda f, p: f.fail(503, "upstream connect error", times=20,
                                           path_prefix=p), ("503",)),
    "429 persisting": (lambda f, p: f.fail(429, "rate limit exceeded", times=20,
                                           headers={"Retry-After": "0"}, path_prefix=p),
                       ("429",)),
    "timeout": (lambda f, p: f.slow(5, times=20, path_prefix=p), ("timed out",)),
    "connection reset": (lambda f, p: f.reset(times=20, path_prefix=p), ("connection",)),
    "malformed JSON": (lambda f, p: f.garble(path_prefix=p), ("not JSON",)),
    # A byte every 50 ms: every read is in time, only the exchange's deadline ends it.
    "trickle": (lambda f, p: f.trickle(0.05, times=20, path_prefix=p),
                ("timed out: no complete answer within 1 s",)),
    # 64 MiB with no Content-Length: the read stops at the cap and the client hangs up.
    "flood": (lambda f, p: f.flood(64 << 20, times=20, path_prefix=p),
              ("the answer is larger than the 16 MiB CloudRig reads",)),
}
# The deadline each fault runs under: a short one only where the fault is about the
# deadline (the answer is slower than it by far); every other fault, and the reads
# around it, get one no loaded machine misses (a flood must hit the size cap, however
# slowly this machine copies 16 MiB).
DEADLINES = {"timeout": "1", "trickle": "1"}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("served", NAMES, indirect=True)
def test_a_fault_is_one_sentence_and_the_client_recovers(served, fault: str,
                                                          monkeypatch) -> None:
    subject, fake = served
    inject, words = FAULTS[fault]
    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", DEADLINES.get(fault, "60"))
    inject(fake, subject.path)
    with subject.client(fake, fake.url, None) as client:
        with pytest.raises(RemoteError) as caught:
            subject.read(client)
        text = _sentence(caught.value, subject, fake, *words)
        if fault == "5xx persisting":
            assert "rerun" in text or "logs" in text
            tries = [r for r in fake.log if r.path.startswith(subject.path)]
            assert len(tries) == 5  # the first try and four retries with backoff
        if fault in ("trickle", "flood"):  # ended, not retried
            assert len([r for r in fake.log if r.path.startswith(subject.path)]) == 1
        if fault == "flood":
            _until(lambda: fake.flooded, "the flood to end")
            assert fake.flooded[0] < 64 << 20, "the client read the whole flood"
        _works_again(subject, fake, client)


def _until(ready: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Wait for an event another thread signals (the timeout only guards a hang)."""
    ends = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < ends, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("served", NAMES, indirect=True)
def test_a_429_with_retry_after_is_waited_out(served) -> None:
    subject, fake = served
    fake.fail(429, "slow down", headers={"Retry-After": "1"}, path_prefix=subject.path)
    with subject.client(fake, fake.url, None) as client:
        started = time.monotonic()
        subject.read(client)
        assert time.monotonic() - started >= 0.9  # Retry-After honoured, not the backoff
        assert not fake.faults


@pytest.mark.parametrize("name", NAMES)
def test_an_untrusted_tls_certificate_then_its_ca(name: str, ca: trustme.CA,
                                                   tmp_path: Path) -> None:
    subject = BY_NAME[name]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    fake = subject.fake().start(tls=context)
    try:
        assert fake.url.startswith("https://")
        with subject.client(fake, fake.url, None) as client:
            with pytest.raises(RemoteError) as caught:
                subject.read(client)
            _sentence(caught.value, subject, fake, "not trusted", "CA bundle")
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        with subject.client(fake, fake.url, str(bundle)) as client:
            subject.read(client)  # the same server, trusted through the CA bundle
    finally:
        fake.stop()


CREATORS = [s.name for s in SUBJECTS if s.create]


@pytest.mark.parametrize("served", CREATORS, indirect=True)
@pytest.mark.parametrize("fault", ["500", "reset", "garbled"])
def test_a_failed_create_is_not_retried_and_creates_nothing(served, fault: str) -> None:
    """A create is not idempotent: retrying it after an unknown outcome could make two.
    The fault answers before the fake handles the request, so nothing may exist after."""
    subject, fake = served
    assert subject.create is not None
    before = subject.count(fake)
    where = {"path_prefix": subject.create_path, "method": "POST" if subject.name != "consul"
             else "PUT"}
    {"500": lambda: fake.fail(500, "internal error", **where),
     "reset": lambda: fake.reset(**where),
     "garbled": lambda: fake.garble(status=subject.created, **where)}[fault]()
    with subject.client(fake, fake.url, None) as client:
        with pytest.raises(RemoteError) as caught:
            subject.create(client)
        _sentence(caught.value, subject, fake)
        creates = [r for r in fake.log if r.method == where["method"]
                   and r.path.startswith(subject.create_path)]
        assert len(creates) == 1, "a create was retried"
        assert subject.count(fake) == before
        subject.create(client)  # the fault cleared: the create now works, once
        assert subject.count(fake) == before + 1
