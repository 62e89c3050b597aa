"""One httpx client factory: deadlines, size caps, retries with backoff, TLS, sentences.

Every remote API client gets its `httpx.Client` here. TLS verification is on by
default (a custom CA bundle may be given; "insecure" is an explicit opt-in that
the fronts show in red). Idempotent requests are retried with exponential backoff
on connection errors, 429 and 5xx, honouring Retry-After. Any failure becomes one
`RemoteError` sentence naming the endpoint and what to check.

A server that lies, stalls or floods is bounded:
- every exchange (one attempt: connect, send, headers, whole body) has a total
  deadline, `CLOUDRIG_HTTP_TIMEOUT` seconds (default 60). httpx's timeouts apply to
  each socket operation, so a server sending a byte every few seconds never trips
  them; here the sockets themselves are given what is left of the deadline
  (tui/http_wire.py's transport, and for proxies an httpcore network backend), so a
  trickle in the headers or the body ends on time;
- every body is streamed and counted: more than the client's cap (16 MiB unless an
  API needs more) ends the read at once, a larger Content-Length before any read.
  CloudRig asks for uncompressed bodies; a gzip/deflate body sent anyway is inflated
  here, counted as it grows (a small bomb cannot expand past the cap).
"""

from __future__ import annotations

import functools
import json
import os
import random
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any, Self, cast

import httpcore
import httpx

from tui.errors import OperatorError, UsageError
from tui.http_wire import (
    DEADLINE,
    IDEMPOTENT,
    KEEP_CONNECTIONS,
    DeadlineConnect,
    DeadlineHit,
    DeadlineRead,
    DeadlineWrite,
    WireTransport,
    time_left,
)
from tui.redact import redact

RETRY_STATUS = {429, 500, 502, 503, 504}
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
TIMEOUT_VARIABLE = "CLOUDRIG_HTTP_TIMEOUT"
DEFAULT_DEADLINE = 60.0  # seconds for one whole exchange, unless CLOUDRIG_HTTP_TIMEOUT says
MAX_BODY = 16 * 1024 * 1024  # bytes of one answer; no API CloudRig calls sends more


def deadline_seconds() -> float:
    """$CLOUDRIG_HTTP_TIMEOUT seconds, else DEFAULT_DEADLINE: the most one exchange with
    a server may take, from connecting to the body's last byte. A slow link or a loaded
    API server needs more, a test of timeouts much less."""
    value = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not value:
        return DEFAULT_DEADLINE
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise UsageError(f"{TIMEOUT_VARIABLE}={value!r} is not a number of seconds between "
                         f"0 and 3600; e.g. {TIMEOUT_VARIABLE}=30")
    return seconds


def default_timeout(fallback: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.Timeout:
    """The per-operation timeouts: FALLBACK (10 s per read, 5 s to connect), or
    $CLOUDRIG_HTTP_TIMEOUT seconds for each (5 s at most to connect) when it is set: a
    slow link or a loaded API server needs more, a test of timeouts much less. The
    whole exchange has the same number of seconds (deadline_seconds)."""
    if not os.environ.get(TIMEOUT_VARIABLE, "").strip():
        return fallback
    seconds = deadline_seconds()
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


# ---------------------------------------------------------------- deadline and size cap

class DeadlineExceeded(httpx.TimeoutException):
    """One exchange took longer than its total deadline (however the server paced it)."""

    def __init__(self, seconds: float, request: httpx.Request) -> None:
        super().__init__(f"no complete answer within {seconds:g} s", request=request)
        self.seconds = seconds


class ResponseTooLarge(httpx.TransportError):
    """An answer bigger than the client's cap: read no further."""

    def __init__(self, limit: int, request: httpx.Request, announced: int | None = None,
                 encoding: str | None = None) -> None:
        if encoding:
            text = (f"the answer came {encoding}-compressed, which CloudRig did not ask for "
                    "and does not read")
        elif announced is not None:
            text = (f"the answer announces {_size(announced)}, more than the "
                    f"{_size(limit)} CloudRig reads from this API")
        else:
            text = f"the answer is larger than the {_size(limit)} CloudRig reads from this API"
        super().__init__(text, request=request)


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def _bounded(operation: Callable[[float | None], Any], timeout: float | None,
             error: type[DeadlineHit]) -> Any:
    seconds, by_deadline = time_left(timeout)
    if by_deadline and seconds is not None and seconds <= 0:  # by the deadline: a number
        raise error("the exchange's deadline passed")
    try:
        return operation(seconds)
    except httpcore.TimeoutException:
        if by_deadline:
            raise error("the exchange's deadline passed") from None
        raise


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _bounded(lambda t: self.inner.read(max_bytes, t), timeout, DeadlineRead)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _bounded(lambda t: self.inner.write(buffer, t), timeout, DeadlineWrite)

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(_bounded(
            lambda t: self.inner.start_tls(ssl_context, server_hostname, t), timeout,
            DeadlineConnect))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sockets (SyncBackend), each bounded by the exchange's deadline."""

    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None
                    ) -> httpcore.NetworkStream:
        return _DeadlineStream(_bounded(
            lambda t: self.inner.connect_tcp(host, port, t, local_address, socket_options),
            timeout, DeadlineConnect))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(_bounded(
            lambda t: self.inner.connect_unix_socket(path, t, socket_options), timeout,
            DeadlineConnect))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def http_transport(verify: ssl.SSLContext | bool = True, proxy: str | None = None, *,
                   shared: bool = False) -> httpx.BaseTransport:
    """The transport under every client: direct connections on http.client
    (tui/http_wire.py: half of httpcore's CPU per request; SHARED: kept connections
    in the process's pool for VERIFY's context, for the next client to reuse), through
    an http(s) PROXY on httpx's own transport, its pool's sockets keeping the deadline.

    httpx.HTTPTransport takes no network backend, so its pool (`_pool`, the one
    attribute its handle_request and close use) is replaced by an httpcore pool built
    the same way with the deadline backend. tests/unit/test_http.py proves the trickle
    ends on both."""
    if proxy is None:
        return WireTransport(verify, shared=shared)
    via = httpx.Proxy(proxy)
    if via.url.scheme not in ("http", "https"):
        raise UsageError(f"proxy {redact(proxy)} is not an http:// or https:// proxy; "
                         "CloudRig goes through HTTP proxies only")
    transport = httpx.HTTPTransport(verify=verify, retries=0)
    limits = httpx.Limits()
    transport._pool = httpcore.HTTPProxy(
        proxy_url=httpcore.URL(scheme=via.url.raw_scheme, host=via.url.raw_host,
                               port=via.url.port, target=via.url.raw_path),
        proxy_auth=via.raw_auth, proxy_headers=via.headers.raw,
        proxy_ssl_context=via.ssl_context, ssl_context=httpx.create_ssl_context(verify=verify),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry, network_backend=_DeadlineBackend())
    return transport


def _deadline_error(exc: httpx.TimeoutException, seconds: float,
                    request: httpx.Request) -> httpx.TimeoutException:
    """DeadlineExceeded when the socket timeout behind EXC was the deadline's."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, DeadlineHit):
            return DeadlineExceeded(seconds, request)
        cause = cause.__cause__
    return exc


class _Inflate:
    """gzip/deflate inflated chunk by chunk, never more than `room` bytes at a time."""

    def __init__(self, encoding: str) -> None:
        self.raw_deflate = False
        wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
        self.decoder = zlib.decompressobj(wbits)
        self.encoding = encoding
        self.started = False

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        try:
            out = self.decoder.decompress(data, room + 1)
        except zlib.error:
            if self.encoding != "deflate" or self.started:
                raise
            # "deflate" as many servers send it: raw, without the zlib header.
            self.decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            self.raw_deflate = True
            out = self.decoder.decompress(data, room + 1)
        self.started = True
        yield out
        while self.decoder.unconsumed_tail:
            room -= len(out)
            out = self.decoder.decompress(self.decoder.unconsumed_tail, max(room, 0) + 1)
            yield out


class _CappedStream(httpx.SyncByteStream):
    """The body, read chunk by chunk under the exchange's deadline, refused past LIMIT."""

    def __init__(self, inner: httpx.SyncByteStream, request: httpx.Request, deadline: float,
                 seconds: float, limit: int, encoding: str | None) -> None:
        self.inner, self.request, self.deadline = inner, request, deadline
        self.seconds, self.limit = seconds, limit
        self.inflate = _Inflate(encoding) if encoding else None

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self.inner)
        total = 0
        while True:
            # The deadline is set only while a chunk is read: between chunks this
            # generator is suspended in its reader's context.
            token = DEADLINE.set(self.deadline)
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except httpx.TimeoutException as exc:
                raise _deadline_error(exc, self.seconds, self.request) from None
            finally:
                DEADLINE.reset(token)
            pieces = self.inflate.feed(chunk, self.limit - total) if self.inflate else [chunk]
            for piece in pieces:
                total += len(piece)
                if total > self.limit:
                    raise ResponseTooLarge(self.limit, self.request)
                yield piece
            if time.monotonic() >= self.deadline:
                raise DeadlineExceeded(self.seconds, self.request)

    def close(self) -> None:
        self.inner.close()


class GuardTransport(httpx.BaseTransport):
    """Each exchange through INNER gets a total deadline and a body size cap."""

    def __init__(self, inner: httpx.BaseTransport, seconds: float | None = None,
                 limit: int = MAX_BODY) -> None:
        self.inner = inner
        self.seconds = deadline_seconds() if seconds is None else seconds
        self.limit = limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.seconds
        token = DEADLINE.set(deadline)
        try:
            response = self.inner.handle_request(request)
        except httpx.TimeoutException as exc:
            raise _deadline_error(exc, self.seconds, request) from None
        finally:
            DEADLINE.reset(token)
        headers = httpx.Headers(response.headers)
        encoding = headers.get("Content-Encoding", "").strip().lower() or None
        if encoding == "identity":
            encoding = None
        try:
            if encoding not in (None, "gzip", "deflate"):
                raise ResponseTooLarge(self.limit, request, encoding=encoding)
            announced = headers.get("Content-Length", "")
            if encoding is None and announced.isdigit() and int(announced) > self.limit:
                raise ResponseTooLarge(self.limit, request, announced=int(announced))
        except ResponseTooLarge:
            response.close()
            raise
        if encoding:  # inflated here: httpx must not inflate it again
            del headers["Content-Encoding"]
            headers.pop("Content-Length", None)
        # A sync transport's response has a sync stream (httpx types it as either).
        return httpx.Response(
            status_code=response.status_code, headers=headers,
            stream=_CappedStream(cast(httpx.SyncByteStream, response.stream), request,
                                 deadline, self.seconds, self.limit, encoding),
            extensions=response.extensions)

    def close(self) -> None:
        self.inner.close()


class RemoteError(OperatorError):
    """A remote API failure, explained in one sentence."""

    def __init__(self, sentence: str, status: int | None = None, body: str = "",
                 where: str = "") -> None:
        super().__init__(sentence)
        self.status = status
        self.body = body
        self.where = where  # "METHOD URL" (redacted), for clients that reword the sentence


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class RetryTransport(httpx.BaseTransport):
    """Retries idempotent requests; a request may opt out with
    `extensions={"idempotent": False}` (e.g. Consul's PUT that creates a token)."""

    def __init__(self, inner: httpx.BaseTransport, retries: int = 4, backoff: float = 0.25,
                 max_delay: float = 8.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.inner = inner
        self.retries = retries
        self.backoff = backoff
        self.max_delay = max_delay
        self.sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        idempotent = request.extensions.get("idempotent", request.method in IDEMPOTENT)
        attempt = 0
        while True:
            try:
                response = self.inner.handle_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                    httpx.ReadError):
                if not idempotent or attempt >= self.retries:
                    raise
                self.sleep(self._delay(attempt, None))
                attempt += 1
                continue
            if response.status_code in RETRY_STATUS and idempotent and attempt < self.retries:
                wait = _retry_after(response)
                response.read()
                response.close()
                self.sleep(self._delay(attempt, wait))
                attempt += 1
                continue
            return response

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay * 4)
        base = min(self.max_delay, self.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def close(self) -> None:
        self.inner.close()


class ApiClient:
    """What every remote API client shares: one `httpx.Client` (from `make_client`),
    closed by `close()` or by leaving a `with` block."""

    http: httpx.Client

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _tls_context(ca_file: str | None, _stamp: tuple[int, int]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The verifying TLS context for CA_FILE (None: the system's CAs), built once per
    process: loading a CA bundle costs ~30 ms of CPU, and every step check of every
    procedure builds a client (the dashboard runs fifty at once). A CA file that
    changes on disk (size or mtime) gets a fresh context."""
    stamp = (0, 0)
    if ca_file:
        try:
            info = os.stat(ca_file)
        except OSError as exc:
            raise OperatorError(f"cannot use CA bundle {ca_file}: {exc.strerror}") from None
        stamp = (info.st_size, info.st_mtime_ns)
    try:
        return _tls_context(ca_file, stamp)
    except (OSError, ssl.SSLError) as exc:
        raise OperatorError(f"cannot use CA bundle {ca_file}: {exc}") from None


def make_client(
    base_url: str,
    *,
    ca_file: str | None = None,
    insecure: bool = False,
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | float | None = None,
    retries: int = 4,
    backoff: float = 0.25,
    transport: httpx.BaseTransport | None = None,
    max_bytes: int = MAX_BODY,
) -> httpx.Client:
    """The one way CloudRig builds an HTTP client: every exchange has a total deadline
    ($CLOUDRIG_HTTP_TIMEOUT) and reads at most MAX_BYTES of an answer."""
    verify: ssl.SSLContext | bool = False if insecure else tls_context(ca_file)
    # A dashboard builds its checks' clients anew at every refresh: their connections
    # are kept for the next one's (KEEP_CONNECTIONS); a run's are closed with it.
    inner = transport or http_transport(verify, shared=KEEP_CONNECTIONS.get())
    guarded = GuardTransport(inner, limit=max_bytes)
    return httpx.Client(
        base_url=base_url,
        # Uncompressed answers: a compressed one could grow past the cap as it inflates.
        headers={"Accept-Encoding": "identity", **(headers or {})},
        timeout=default_timeout() if timeout is None else timeout,
        transport=RetryTransport(guarded, retries=retries, backoff=backoff),
        follow_redirects=False,
    )


def describe_failure(exc: Exception, method: str, url: str, hint: str = "") -> RemoteError:
    """Turn an httpx exception into one sentence for the operator."""
    where = f"{method} {redact(url)}"
    tail = f"; {hint}" if hint else ""
    if isinstance(exc, DeadlineExceeded):
        return RemoteError(f"{where} timed out: {exc} ({TIMEOUT_VARIABLE}); check that the "
                           "service is up and not overloaded, or allow more with "
                           f"{TIMEOUT_VARIABLE}=SECONDS{tail}")
    if isinstance(exc, ResponseTooLarge):
        return RemoteError(f"{where}: {exc}; check that the URL points at the API itself, "
                           f"not a file server or a proxy{tail}")
    if isinstance(exc, httpx.ConnectTimeout | httpx.ReadTimeout | httpx.WriteTimeout |
                  httpx.PoolTimeout):
        return RemoteError(f"{where} timed out; check that the service is up and reachable "
                           f"from this host{tail}")
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            return RemoteError(f"{where}: the server's TLS certificate is not trusted "
                               f"({_short(text)}); give the CA bundle that signed it{tail}")
        if "[SSL" in text or "TLS" in text:
            # e.g. WRONG_VERSION_NUMBER: an https:// URL pointing at a plain-HTTP port.
            return RemoteError(f"{where}: the TLS handshake failed ({_short(text)}); check "
                               f"that the service speaks https on that port, or use an "
                               f"http:// URL{tail}")
        return RemoteError(f"cannot connect to {where} ({_short(text)}); check the URL, "
                           f"that the service listens there, and firewalls{tail}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return RemoteError(f"{where}: the connection broke mid-reply ({_short(str(exc))}); "
                           f"retry, and check any proxy in between{tail}")
    return RemoteError(f"{where} failed: {_short(str(exc))}{tail}")


def _short(text: str, limit: int = 160) -> str:
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_sentence(response: httpx.Response, hint: str = "") -> RemoteError:
    """One sentence for a non-2xx reply: status, endpoint, the server's word, what to check."""
    request = response.request
    where = f"{request.method} {redact(str(request.url))}"
    body = response.text.strip() if response.content else ""
    said = f": {_short(body)}" if body else ""
    code = response.status_code
    advice = {
        401: "the credentials were refused; check the token",
        403: "the token lacks permission for this call; check its ACL/policy",
        404: "it does not exist there; check the name and the URL",
        409: "it conflicts with what exists; check for a concurrent change",
        429: "the server is rate limiting; wait and rerun",
    }.get(code, "the server failed; check its logs and rerun" if code >= 500 else "")
    parts = [p for p in (advice, hint) if p]
    return RemoteError(f"{where} answered {code}{said}" + (f" ({'; '.join(parts)})" if parts
                                                           else ""), status=code, body=body,
                       where=where)


@functools.lru_cache(maxsize=1024)
def _merged(base: str, path: str, query: tuple[tuple[str, str], ...] | None) -> httpx.URL:
    """PATH with parameters QUERY on base URL BASE, as httpx's Client builds it
    (`Client._merge_url`: the path appended to the base's; then `Request`: parameters,
    when given, replace the path's query), parsed once."""
    origin = httpx.URL(base)
    url = origin.copy_with(raw_path=origin.raw_path + httpx.URL(path).raw_path.lstrip(b"/"))
    return url if query is None else httpx.URL(url, params=dict(query))


def target(client: httpx.Client, url: str, kwargs: dict[str, Any]) -> httpx.URL | str:
    """The URL for a request of URL on CLIENT, taking string `params` out of KWARGS into
    it. Parsing URLs is about a fifth of httpx's CPU per request (three parses: the
    path, the merge, the parameters), and a dashboard asks the same paths at every
    refresh: each is parsed once per process. Anything else is left to httpx as is."""
    params = kwargs.get("params")
    if (client.params or not str(client.base_url) or not url.startswith("/")
            or url.startswith("//")
            or not isinstance(params, dict | None)):
        return url
    query = None if params is None else tuple(params.items())
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in query or ()):
        return url
    kwargs.pop("params", None)
    return _merged(str(client.base_url), url, query)


def request(client: httpx.Client, method: str, url: str, *, hint: str = "",
            ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
    """Send a request; transport failures and unexpected statuses become RemoteError."""
    try:
        response = client.request(method, target(client, url, kwargs), **kwargs)
    except httpx.HTTPError as exc:
        full = str(client.base_url.join(url)) if client.base_url else url
        raise describe_failure(exc, method, full, hint) from None
    if response.status_code not in ok:
        raise status_sentence(response, hint)
    return response


def json_body(response: httpx.Response) -> Any:
    """Parse a JSON reply; malformed JSON is a sentence, not a traceback."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        request_ = response.request
        raise RemoteError(
            f"{request_.method} {redact(str(request_.url))} answered {response.status_code} "
            f"with a body that is not JSON ({_short(response.text, 80)!r}); check that the URL "
            "points at the API and not a proxy or login page") from None
