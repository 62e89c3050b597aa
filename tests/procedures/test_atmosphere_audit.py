"""The endpoint audit against real TLS servers on 127.0.0.1 with trustme certificates:
valid for the name, self-signed, expired — plus http and IP endpoints from the fake
Keystone's catalog. Each problem has its own sentence; a clean catalog passes."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
from fakes.keystone import FakeKeystone

from tui.clients.keystone import KeystoneClient
from tui.procedures.atmosphere.audit import audit, summary

NAMES = ["good.example.org", "self.example.org", "old.example.org", "other.example.org"]


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"version": {"id": "v3.14"}}'
        self.send_response(300)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def serve(context: ssl.SSLContext | None) -> tuple[ThreadingHTTPServer, int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("tls")
    trusted = trustme.CA()
    stranger = trustme.CA()
    trust = tmp / "trusted-ca.pem"
    trusted.cert_pem.write_to_path(str(trust))
    contexts: dict[str, ssl.SSLContext] = {}
    good = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    now = datetime.datetime.now(datetime.UTC)
    trusted.issue_cert("good.example.org", not_before=now - datetime.timedelta(days=1),
                       not_after=now + datetime.timedelta(days=90, hours=1)).configure_cert(good)
    contexts["good"] = good
    selfsigned = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # A CA certificate served as the leaf: self-signed, as OSA's default certificates are.
    selfsigned.load_cert_chain(*_write(tmp, "self", stranger.cert_pem.bytes(),
                                       stranger.private_key_pem.bytes()))
    contexts["self"] = selfsigned
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3)
    trusted.issue_cert("old.example.org", not_before=past - datetime.timedelta(days=90),
                       not_after=past).configure_cert(old)
    contexts["old"] = old
    servers = {name: serve(ctx) for name, ctx in contexts.items()}
    plain, plain_port = serve(None)
    yield {"trust": str(trust), "ports": {k: v[1] for k, v in servers.items()},
           "plain": plain_port}
    for server, _port in [*servers.values(), (plain, 0)]:
        server.shutdown()
        server.server_close()


def _write(tmp, name, cert: bytes, key: bytes) -> tuple[str, str]:
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    return str(cert_path), str(key_path)


def resolve(host: str) -> str:
    if host in NAMES or host == "127.0.0.1":
        return "127.0.0.1"
    raise KeyError(host)


def catalog(urls: dict[tuple[str, str, str], str]) -> list:
    """The endpoints as the Keystone client reads them from the fake's catalog."""
    fake = FakeKeystone().start()
    try:
        for (service, kind, interface), url in urls.items():
            fake.add_endpoint(service, kind, interface, url)
        client = KeystoneClient(f"{fake.url}/v3", username="admin", password="devstacker",
                                project="admin", user_domain="Default")
        try:
            return client.endpoints()
        finally:
            client.close()
    finally:
        fake.stop()


def test_each_problem_has_its_own_sentence(tls):
    ports = tls["ports"]
    endpoints = catalog({
        ("nova", "compute", "public"): f"https://good.example.org:{ports['good']}/v2.1/%(tenant_id)s",
        ("glance", "image", "public"): f"http://good.example.org:{tls['plain']}",
        ("neutron", "network", "public"): f"https://127.0.0.1:{ports['good']}",
        ("cinder", "volume", "public"): f"https://self.example.org:{ports['self']}/v3",
        ("keystone", "identity", "admin"): f"https://old.example.org:{ports['old']}/v3",
        ("heat", "orchestration", "internal"): "http://10.0.0.9:8004/v1",
        ("swift", "object-store", "public"): f"https://other.example.org:{ports['good']}/v1",
    })
    reports = audit(endpoints, "cloud.example.org", trust=tls["trust"], resolve=resolve)
    by_service = {r.endpoint.service_name: r for r in reports}
    assert "heat" not in by_service  # internal: not audited
    assert by_service["nova"].findings == []
    assert by_service["nova"].days_left == 90
    glance = [f.sentence for f in by_service["glance"].findings]
    assert glance == [f"glance public endpoint http://good.example.org:{tls['plain']} uses "
                      "plain http, not https"]
    assert by_service["glance"].findings[0].fix == (
        f"openstack endpoint set --url 'https://cloud.example.org:{tls['plain']}' "
        f"{by_service['glance'].endpoint.id}")
    neutron = [f.sentence for f in by_service["neutron"].findings]
    assert neutron[0].endswith("uses the IP address 127.0.0.1, not a host name")
    assert neutron[1].endswith("presents a certificate that is not valid for that IP address")
    assert [f.sentence for f in by_service["cinder"].findings] == [
        f"cinder public endpoint https://self.example.org:{ports['self']}/v3 presents a "
        "self-signed certificate"]
    keystone = by_service["keystone"].findings
    assert [f.sentence for f in keystone] == [
        f"keystone admin endpoint https://old.example.org:{ports['old']}/v3 presents a "
        "certificate that has expired"]
    assert "haproxy-install.yml" in keystone[0].fix
    assert [f.sentence for f in by_service["swift"].findings] == [
        f"swift public endpoint https://other.example.org:{ports['good']}/v1 presents a "
        "certificate that is not valid for that host name"]
    assert summary(reports).startswith("6 findings: ")


def test_a_clean_catalog_passes(tls):
    ports = tls["ports"]
    endpoints = catalog({
        ("nova", "compute", "public"): f"https://good.example.org:{ports['good']}/v2.1",
        ("keystone", "identity", "public"): f"https://good.example.org:{ports['good']}/v3",
        ("keystone", "identity", "admin"): f"https://good.example.org:{ports['good']}/v3",
    })
    reports = audit(endpoints, "good.example.org", trust=tls["trust"], resolve=resolve)
    assert len(reports) == 3 and all(r.findings == [] for r in reports)
    assert summary(reports).startswith("3 endpoints use https and host names and answer; the "
                                       "first certificate expires in 90 days")


def test_an_endpoint_that_does_not_answer_or_resolve(tls):
    endpoints = catalog({
        ("nova", "compute", "public"): "https://good.example.org:1/v2.1",
        ("glance", "image", "public"): "https://nowhere.example.org:9292",
    })
    reports = {r.endpoint.service_name: r for r in
               audit(endpoints, "good.example.org", trust=tls["trust"], resolve=resolve,
                     timeout=2)}
    assert "does not answer on port 1" in reports["nova"].findings[0].sentence
    assert reports["glance"].findings[0].sentence.endswith(
        "names nowhere.example.org, which does not resolve from this host")
