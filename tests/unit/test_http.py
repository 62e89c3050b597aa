"""The HTTP client factory against a real threaded server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tui.errors import OperatorError
from tui.http import RemoteError, RetryTransport, json_body, make_client, request

Reply = tuple[int, dict[str, str], bytes]
OK: Reply = (200, {"Content-Type": "application/json"}, b'{"ok": true}')


class Scripted:
    """Answers each request with the next scripted reply (then 200 {"ok": true}),
    recording method and path; a reply with status 0 sleeps instead of answering."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.replies: list[Reply] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with outer.lock:
                    outer.requests.append((self.command, self.path))
                    status, headers, body = outer.replies.pop(0) if outer.replies else OK
                if status == 0:
                    time.sleep(float(body))
                    return
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def status(code: int, body: bytes = b"", **headers: str) -> Reply:
    return code, headers, body


@pytest.fixture
def server() -> Iterator[Scripted]:
    srv = Scripted()
    yield srv
    srv.close()


@pytest.fixture
def client(server: Scripted) -> Iterator[httpx.Client]:
    with make_client(server.url, backoff=0.01) as c:
        yield c


def test_get_is_retried_through_two_500s(server: Scripted, client: httpx.Client) -> None:
    server.script(status(500, b"oops"), status(503))
    response = request(client, "GET", "/v1/thing")
    assert response.status_code == 200
    assert json_body(response) == {"ok": True}
    assert server.requests == [("GET", "/v1/thing")] * 3


def test_429_with_retry_after_is_retried(server: Scripted, client: httpx.Client) -> None:
    server.script(status(429, **{"Retry-After": "0"}))
    assert request(client, "GET", "/limited").status_code == 200
    assert len(server.requests) == 2


def test_retry_after_is_honoured(server: Scripted) -> None:
    waits: list[float] = []
    transport = RetryTransport(httpx.HTTPTransport(), backoff=0.01, sleep=waits.append)
    server.script(status(429, **{"Retry-After": "3"}), status(502))
    with httpx.Client(base_url=server.url, transport=transport) as c:
        assert c.get("/x").status_code == 200
    assert waits[0] == 3.0  # the server's word, not the backoff
    assert 0 < waits[1] <= 0.02  # then exponential backoff with jitter


def test_post_is_not_retried(server: Scripted, client: httpx.Client) -> None:
    server.script(status(500, b"created half of it"))
    with pytest.raises(RemoteError) as err:
        request(client, "POST", "/v1/create", json={"a": 1})
    assert server.requests == [("POST", "/v1/create")]
    assert err.value.status == 500
    assert "POST" in err.value.sentence and "answered 500" in err.value.sentence


def test_put_marked_non_idempotent_is_not_retried(server: Scripted,
                                                  client: httpx.Client) -> None:
    server.script(status(500))
    with pytest.raises(RemoteError):
        request(client, "PUT", "/v1/acl/token", extensions={"idempotent": False})
    assert len(server.requests) == 1
    server.requests.clear()
    server.script(status(500))
    assert request(client, "PUT", "/v1/kv/x").status_code == 200  # plain PUT: retried
    assert len(server.requests) == 2


def test_retries_give_up_with_a_sentence(server: Scripted) -> None:
    server.script(*[status(500, b"database is down")] * 3)
    with make_client(server.url, backoff=0.01, retries=2) as c, \
            pytest.raises(RemoteError) as err:
        request(c, "GET", "/v1/health")
    assert len(server.requests) == 3
    sentence = err.value.sentence
    assert sentence.startswith(f"GET {server.url}/v1/health answered 500: database is down")
    assert "check its logs" in sentence


def test_connection_refused_names_the_url(unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}"
    with make_client(url, backoff=0.01, retries=1) as c, pytest.raises(RemoteError) as err:
        request(c, "GET", "/v1/agent/self")
    sentence = err.value.sentence
    assert f"cannot connect to GET {url}/v1/agent/self" in sentence
    assert "listens there" in sentence
    assert "\n" not in sentence and "Traceback" not in sentence
    assert err.value.__suppress_context__


def test_403_is_a_sentence_with_status_and_advice(server: Scripted,
                                                  client: httpx.Client) -> None:
    server.script(status(403, b"ACL not found"))
    with pytest.raises(RemoteError) as err:
        request(client, "GET", "/v1/acl/policies", hint="use the bootstrap token")
    assert err.value.status == 403
    assert err.value.sentence == (
        f"GET {server.url}/v1/acl/policies answered 403: ACL not found (the token lacks "
        "permission for this call; check its ACL/policy; use the bootstrap token)")
    assert len(server.requests) == 1  # a 4xx is not retried


def test_malformed_json_is_a_sentence(server: Scripted, client: httpx.Client) -> None:
    server.script(status(200, b"<html>login</html>", **{"Content-Type": "text/html"}))
    response = request(client, "GET", "/v1/catalog")
    with pytest.raises(RemoteError) as err:
        json_body(response)
    assert "not JSON" in err.value.sentence and "<html>login</html>" in err.value.sentence
    assert err.value.sentence.startswith(f"GET {server.url}/v1/catalog answered 200")


def test_timeout_is_a_sentence(server: Scripted) -> None:
    server.script(status(0, b"2"))
    with make_client(server.url, backoff=0.01, timeout=0.3) as c, \
            pytest.raises(RemoteError) as err:
        request(c, "GET", "/slow")
    assert err.value.sentence.startswith(f"GET {server.url}/slow timed out")
    assert "reachable" in err.value.sentence


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    return cert, key


@pytest.fixture
def tls_server(self_signed: tuple[Path, Path]) -> Iterator[Scripted]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    srv = Scripted(tls=context)
    yield srv
    srv.close()


def test_self_signed_certificate_is_refused_with_a_sentence(tls_server: Scripted) -> None:
    with make_client(tls_server.url, backoff=0.01, retries=0) as c, \
            pytest.raises(RemoteError) as err:
        request(c, "GET", "/v1/agent/self")
    sentence = err.value.sentence
    assert "TLS certificate is not trusted" in sentence
    assert "CA bundle" in sentence and tls_server.url in sentence
    assert tls_server.requests == []


def test_custom_ca_bundle_and_explicit_insecure_work(tls_server: Scripted,
                                                     self_signed: tuple[Path, Path]) -> None:
    with make_client(tls_server.url, ca_file=str(self_signed[0]), backoff=0.01) as c:
        assert json_body(request(c, "GET", "/a")) == {"ok": True}
    with make_client(tls_server.url, insecure=True, backoff=0.01) as c:
        assert request(c, "GET", "/b").status_code == 200
    assert [path for _method, path in tls_server.requests] == ["/a", "/b"]


def test_unreadable_ca_bundle_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(OperatorError) as err:
        make_client("https://127.0.0.1:1", ca_file=str(tmp_path / "missing.pem"))
    assert f"cannot use CA bundle {tmp_path / 'missing.pem'}" in err.value.sentence


def test_https_to_a_plain_http_server_is_a_sentence(server: Scripted) -> None:
    url = server.url.replace("http://", "https://")
    with make_client(url, backoff=0.01, retries=0) as c, pytest.raises(RemoteError) as err:
        request(c, "GET", "/v1/agent/self")
    sentence = err.value.sentence
    assert sentence.startswith(f"GET {url}/v1/agent/self: the TLS handshake failed")
    assert "speaks https on that port" in sentence
    assert "\n" not in sentence


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_request_json_body_round_trip(server: Scripted, client: httpx.Client) -> None:
    server.script(status(200, json.dumps({"é": ["x", 1]}).encode()))
    assert json_body(request(client, "GET", "/j")) == {"é": ["x", 1]}


# ---------------------------------------------------------------- stalls and floods


class Misbehaving:
    """A raw HTTP/1.1 server on 127.0.0.1 whose one answer is scripted byte by byte:
    `head` (sent at once, or trickled), then `body` chunks; it records how many body
    bytes went out before the client hung up. Each connection gets the same answer."""

    def __init__(self, head: bytes, body: Iterator[bytes] | None = None,
                 trickle_head: float = 0.0, gap: float = 0.0) -> None:
        self.head, self.body, self.trickle_head, self.gap = head, body, trickle_head, gap
        self.sent: list[int] = []
        self.done = threading.Event()
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            self.requests.append(request)
            sent = 0
            ends = time.monotonic() + 60  # on a client without a deadline: give up
            try:
                if self.trickle_head:
                    for byte in self.head:
                        conn.sendall(bytes([byte]))
                        time.sleep(self.trickle_head)
                        if time.monotonic() > ends:
                            break
                else:
                    conn.sendall(self.head)
                for chunk in self.body or ():
                    conn.sendall(chunk)
                    sent += len(chunk)
                    if self.gap:
                        time.sleep(self.gap)
                    if time.monotonic() > ends:
                        break
            except OSError:
                pass  # the client hung up
            self.sent.append(sent)
            self.done.set()

    def close(self) -> None:
        self.sock.close()


def forever(chunk: bytes, limit: int) -> Iterator[bytes]:
    sent = 0
    while sent < limit:
        yield chunk
        sent += len(chunk)


@pytest.fixture
def misbehaving() -> Iterator[list[Misbehaving]]:
    servers: list[Misbehaving] = []
    yield servers
    for server in servers:
        server.close()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_server_trickling_a_byte_at_a_time_ends_at_the_deadline(
        misbehaving: list[Misbehaving], monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """One byte every 100 ms: each read gets its byte long before the read timeout, so
    only a deadline on the whole exchange ends it (before: an apply hung for as long as
    the server kept dripping)."""
    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "1")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    server = (Misbehaving(head + b" " * 1000, trickle_head=0.1) if where == "headers" else
              Misbehaving(head, forever(b" ", 100000), gap=0.1))
    misbehaving.append(server)
    with make_client(server.url, backoff=0.01) as c, pytest.raises(RemoteError) as err:
        request(c, "GET", "/v1/kv/slow")
    assert err.value.sentence == (
        f"GET {server.url}/v1/kv/slow timed out: no complete answer within 1 s "
        "(CLOUDRIG_HTTP_TIMEOUT); check that the service is up and not overloaded, or allow "
        "more with CLOUDRIG_HTTP_TIMEOUT=SECONDS")
    assert len(server.requests) == 1  # not retried: the deadline is the operator's limit


def test_a_body_without_end_stops_at_the_size_cap(misbehaving: list[Misbehaving]) -> None:
    """64 MiB with no Content-Length (read until close): the client stops at 16 MiB and
    hangs up; before, it read all of it into memory (1.5 GB took 7.3 GB)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    server = Misbehaving(head, forever(b"x" * 65536, 64 << 20))
    misbehaving.append(server)
    with make_client(server.url, backoff=0.01) as c, pytest.raises(RemoteError) as err:
        request(c, "GET", "/v1/catalog/services")
    assert err.value.sentence == (
        f"GET {server.url}/v1/catalog/services: the answer is larger than the 16 MiB "
        "CloudRig reads from this API; check that the URL points at the API itself, not a "
        "file server or a proxy")
    assert server.done.wait(60)
    assert server.sent[0] < 64 << 20  # the client hung up instead of reading the rest


def test_an_announced_huge_body_is_refused_before_reading(
        misbehaving: list[Misbehaving]) -> None:
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1610612736\r\n\r\n")
    server = Misbehaving(head, forever(b"x" * 65536, 64 << 20))
    misbehaving.append(server)
    with make_client(server.url, backoff=0.01, max_bytes=1 << 20) as c, \
            pytest.raises(RemoteError) as err:
        request(c, "GET", "/big")
    assert "the answer announces 1.5 GiB, more than the 1 MiB CloudRig reads" \
        in err.value.sentence
    assert server.done.wait(60)
    assert server.sent[0] < 64 << 20


def test_compressed_answers_are_inflated_within_the_cap(
        misbehaving: list[Misbehaving]) -> None:
    """CloudRig asks for identity; a server gzipping anyway is read, and a gzip bomb
    (64 KiB that inflate to 64 MiB) stops at the cap as it inflates."""
    import gzip

    small = gzip.compress(b'{"ok": true}')
    ok = Misbehaving(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
                     + str(len(small)).encode() + b"\r\n\r\n" + small)
    bomb_body = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    bomb = Misbehaving(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
                       + str(len(bomb_body)).encode() + b"\r\n\r\n" + bomb_body)
    misbehaving.extend([ok, bomb])
    with make_client(ok.url) as c:
        assert json_body(request(c, "GET", "/gz")) == {"ok": True}
    assert b"accept-encoding: identity" in ok.requests[0].lower()
    with make_client(bomb.url, backoff=0.01) as c, pytest.raises(RemoteError) as err:
        request(c, "GET", "/bomb")
    assert "the answer is larger than the 16 MiB" in err.value.sentence


def test_the_deadline_variable_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.errors import UsageError
    from tui.http import deadline_seconds

    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "soon")
    with pytest.raises(UsageError) as err:
        deadline_seconds()
    assert "CLOUDRIG_HTTP_TIMEOUT='soon' is not a number of seconds" in err.value.sentence
    monkeypatch.setenv("CLOUDRIG_HTTP_TIMEOUT", "2.5")
    assert deadline_seconds() == 2.5


@pytest.mark.parametrize("base", ["http://127.0.0.1:8500", "https://consul.example:8501/",
                                  "https://api.example/client/api"])
@pytest.mark.parametrize(("path", "params"), [
    ("/v1/kv/app/db-name", {"raw": ""}),
    ("/v1/kv/app/db-", {"recurse": ""}),
    ("/v1/acl/policy/name/gw%2Fpolicy", None),
    ("/v1/kv/a b/ü?x=1", {"y": "2 3"}),
    ("/v1/catalog/service/db", {}),
    ("/v1/kv/x?raw", None),
    ("/v1/kv/x?raw", {}),
    ("relative/path", {"a": "b"}),
    ("//other.example/x", None),
    ("/v1/acl/tokens", {"policy": ["a", "b"]}),
])
def test_a_request_goes_to_the_url_httpx_would_build(base, path, params) -> None:
    """`request` parses each path once per process (tui.http.target); the URL sent is
    the one httpx's own merge of base URL, path and parameters gives."""
    sent: list[httpx.URL] = []

    def answer(req: httpx.Request) -> httpx.Response:
        sent.append(req.url)
        return httpx.Response(200)

    with make_client(base, transport=httpx.MockTransport(answer)) as client:
        kwargs = {} if params is None else {"params": params}
        wanted = client.build_request("GET", path, **kwargs).url
        for _ in range(2):  # parsed, then from the cache
            request(client, "GET", path, **kwargs)
    assert sent == [wanted, wanted]
