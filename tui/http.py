"""One httpx client factory: timeouts, retries with backoff, TLS, error sentences.

Every remote API client gets its `httpx.Client` here. TLS verification is on by
default (a custom CA bundle may be given; "insecure" is an explicit opt-in that
the fronts show in red). Idempotent requests are retried with exponential backoff
on connection errors, 429 and 5xx, honouring Retry-After. Any failure becomes one
`RemoteError` sentence naming the endpoint and what to check.
"""

from __future__ import annotations

import functools
import json
import os
import random
import ssl
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any, Self

import httpx

from tui.errors import OperatorError, UsageError
from tui.redact import redact

IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
RETRY_STATUS = {429, 500, 502, 503, 504}
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
TIMEOUT_VARIABLE = "CLOUDRIG_HTTP_TIMEOUT"


def default_timeout(fallback: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.Timeout:
    """FALLBACK (10 s per read, 5 s to connect), or $CLOUDRIG_HTTP_TIMEOUT seconds: a
    slow link or a loaded API server needs more, a test of timeouts much less."""
    value = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not value:
        return fallback
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise UsageError(f"{TIMEOUT_VARIABLE}={value!r} is not a number of seconds between "
                         f"0 and 3600; e.g. {TIMEOUT_VARIABLE}=30")
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


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
) -> httpx.Client:
    """The one way CloudRig builds an HTTP client."""
    verify: ssl.SSLContext | bool = False if insecure else tls_context(ca_file)
    inner = transport or httpx.HTTPTransport(verify=verify, retries=0)
    return httpx.Client(
        base_url=base_url,
        headers=headers or {},
        timeout=default_timeout() if timeout is None else timeout,
        transport=RetryTransport(inner, retries=retries, backoff=backoff),
        follow_redirects=False,
    )


def describe_failure(exc: Exception, method: str, url: str, hint: str = "") -> RemoteError:
    """Turn an httpx exception into one sentence for the operator."""
    where = f"{method} {redact(url)}"
    tail = f"; {hint}" if hint else ""
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


def request(client: httpx.Client, method: str, url: str, *, hint: str = "",
            ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
    """Send a request; transport failures and unexpected statuses become RemoteError."""
    try:
        response = client.request(method, url, **kwargs)
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
