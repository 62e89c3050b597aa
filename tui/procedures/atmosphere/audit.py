"""The endpoint audit: what the runbook asks the operator to eyeball in
`openstack endpoint list`, checked one endpoint at a time.

Every public endpoint and the keystone admin endpoint must use https and a host name
(not an IP); each must answer; its certificate must verify against the system trust
store *for that name*, and its days to expiry are shown. Each problem is one
sentence naming the endpoint, with the command that would fix it.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from tui.clients.keystone import Endpoint
from tui.http import http_transport, make_client
from tui.words import plural

# OpenSSL X509_V_ERR_* codes an operator meets, in words that say what to do.
VERIFY_CODES = {
    10: "presents a certificate that has expired",
    18: "presents a self-signed certificate",
    19: "presents a certificate chain ending in a self-signed CA this host does not trust",
    20: "presents a certificate signed by a CA this host does not trust",
    62: "presents a certificate that is not valid for that host name",
    64: "presents a certificate that is not valid for that IP address",
}

Resolver = Callable[[str], str]


class Finding(BaseModel):
    endpoint: str
    sentence: str
    fix: str


class EndpointReport(BaseModel):
    endpoint: Endpoint
    findings: list[Finding] = []
    days_left: int | None = None

    @property
    def label(self) -> str:
        e = self.endpoint
        return f"{e.service_name or e.service_type} {e.interface} endpoint {e.url}"


def audited(endpoints: list[Endpoint]) -> list[Endpoint]:
    """The runbook's set: every public endpoint and the identity admin endpoint."""
    return [e for e in endpoints if e.enabled and (
        e.interface == "public" or (e.interface == "admin" and e.service_type == "identity"))]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _tls_context(trust: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=trust) if trust else ssl.create_default_context()


def probe_tls(host: str, port: int, address: str, trust: str | None,
              timeout: float) -> tuple[str | None, int | None]:
    """(problem, days to expiry) of the certificate `host:port` presents, verified for
    `host` against the trust store."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        return f"does not answer on port {port} ({exc.strerror or exc})", None
    try:
        with _tls_context(trust).wrap_socket(sock, server_hostname=host) as tls:
            cert = tls.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        words = VERIFY_CODES.get(exc.verify_code, f"presents a certificate that does not "
                                                   f"verify ({exc.verify_message})")
        return words, None
    except (ssl.SSLError, OSError) as exc:
        return f"the TLS handshake failed ({exc})", None
    finally:
        sock.close()
    not_after = cert.get("notAfter")
    days = (int((ssl.cert_time_to_seconds(not_after) - time.time()) // 86400)
            if isinstance(not_after, str) and not_after else None)
    return None, days


def answers_http(url: str, address: str, trust: str | None, timeout: float) -> str | None:
    """None when an HTTP request to the endpoint's root gets any reply, else why not."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    base = f"{parts.scheme}://{host}:{port}"
    transport: httpx.BaseTransport = http_transport(
        _tls_context(trust) if parts.scheme == "https" else False)
    if address != host:
        # Connect to the resolved address while keeping the name for SNI and Host.
        transport = _PinnedTransport(address, transport)
    client = make_client(base, retries=0, timeout=timeout, transport=transport)
    try:
        client.get("/")
    except httpx.HTTPError as exc:
        return f"does not answer HTTP ({' '.join(str(exc).split())[:120]})"
    finally:
        client.close()
    return None


class _PinnedTransport(httpx.BaseTransport):
    """Sends to a fixed IP while the URL keeps the host name (tests, split DNS)."""

    def __init__(self, address: str, inner: httpx.BaseTransport) -> None:
        self.address = address
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        request.url = request.url.copy_with(host=self.address)
        request.extensions = {**request.extensions, "sni_hostname": host}
        request.headers["Host"] = f"{host}:{request.url.port}" if request.url.port else host
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def audit_endpoint(endpoint: Endpoint, cloud_fqdn: str, *, trust: str | None = None,
                   resolve: Resolver | None = None, timeout: float = 5.0) -> EndpointReport:
    report = EndpointReport(endpoint=endpoint)
    parts = urlsplit(endpoint.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or ""
    good_url = f"https://{cloud_fqdn}:{port}{path}"
    set_url = f"openstack endpoint set --url '{good_url}' {endpoint.id}"
    label = report.label

    def add(sentence: str, fix: str) -> None:
        report.findings.append(Finding(endpoint=endpoint.url, sentence=f"{label} {sentence}",
                                       fix=fix))

    if parts.scheme != "https":
        add("uses plain http, not https", set_url)
    if _is_ip(host):
        add(f"uses the IP address {host}, not a host name", set_url)
    elif "." not in host:
        add(f"uses {host!r}, not a fully qualified host name", set_url)
    try:
        address = resolve(host) if resolve else socket.gethostbyname(host)
    except (OSError, KeyError):
        add(f"names {host}, which does not resolve from this host",
            f"add an A record for {host}, or {set_url}")
        return report
    if parts.scheme == "https":
        problem, report.days_left = probe_tls(host, port, address, trust, timeout)
        if problem:
            add(problem, f"install a certificate for {host} from a trusted CA "
                         "(tls_cert/tls_key/tls_ca in user_variables_atmosphere.yml) and "
                         "rerun `openstack-ansible haproxy-install.yml`")
            return report
    silent = answers_http(endpoint.url, address, trust, timeout)
    if silent:
        add(silent, f"check the service behind {host}:{port}; if it moved: {set_url}")
    return report


def audit(endpoints: list[Endpoint], cloud_fqdn: str, *, trust: str | None = None,
          resolve: Resolver | None = None, timeout: float = 5.0) -> list[EndpointReport]:
    chosen = audited(endpoints)
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(chosen)))) as pool:
        return list(pool.map(lambda e: audit_endpoint(e, cloud_fqdn, trust=trust,
                                                      resolve=resolve, timeout=timeout),
                             chosen))


def summary(reports: list[EndpointReport]) -> str:
    """One line for the dashboard."""
    findings = [f for r in reports for f in r.findings]
    if findings:
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        return f"{plural(len(findings), 'finding')}: {findings[0].sentence}{more}"
    days = [r.days_left for r in reports if r.days_left is not None]
    expiry = f"; the first certificate expires in {min(days)} days" if days else ""
    return f"{len(reports)} endpoints use https and host names and answer{expiry}"
