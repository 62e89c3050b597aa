"""HTTP/1.1 exchanges on the standard library's `http.client`, as an httpx transport,
and the deadline every socket operation of an exchange keeps.

Why not httpcore (httpx's own transport) for direct connections: a refresh of a
fleet's checks sends thirty requests at once, each check waits for the others' CPU
(the GIL), and httpcore's pool with h11's state machine took 0.62 ms of CPU per
request on the bench machine against 0.31 ms here (a GET and its body read at the
transport, the fake Consul in its own process; what it buys: bench/RESULTS.md,
"dashboard refresh"). What this transport keeps of httpcore's:
- keep-alive connections per origin, an idle one checked before it is reused (a
  server that closed it, or sent anything unasked, makes it dropped) and dropped
  after KEEPALIVE seconds idle; at most MAX_IDLE idle per origin (httpx's defaults:
  5 s, 20). A kept connection the server closes just as it is reused carries the
  request again on a new one, if the server cannot have read it or it is idempotent;
- TLS with the client's context, SNI from the `sni_hostname` request extension
  (httpcore's name for it: tui/procedures/atmosphere/audit.py pins an address);
- the request's `timeout` extension (connect, read, write) for each socket
  operation, each also ending by the exchange's deadline (DEADLINE, set by
  tui.http's GuardTransport): a server trickling a byte at a time ends on time;
- httpx's exception types (ConnectError, ReadTimeout, RemoteProtocolError…), a
  timeout that was the deadline's carrying a DeadlineHit as its cause, so retries
  and operators' sentences (tui.http) are the same as on httpcore.
What it adds: the checks of a dashboard keep their connections in a pool for the
process (KEEP_CONNECTIONS), so that the next refresh's clients reuse them. Proxies
stay on httpcore (tui.http.http_transport): http.client cannot speak TLS to a proxy.
Headers are parsed by http.client, which refuses more than 100 of them or a line
over 64 KiB (a server flooding headers is cut off there).
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import io
import os
import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, NoReturn, cast

import httpcore
import httpx

KEEPALIVE = 5.0  # seconds an idle connection is kept (httpx's keepalive_expiry)
MAX_IDLE = 20  # idle connections kept per transport (httpx's max_keepalive_connections)
CHUNK = 65536  # bytes read from a socket at a time

# The monotonic time the exchange under way must end by (None: no deadline).
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "cloudrig_http_deadline", default=None)


class DeadlineHit(Exception):
    """A socket timeout that was the deadline's. httpcore's pool re-raises it `from None`
    and httpx raises its own timeout from it, so it is found by type as that one's cause."""


class DeadlineConnect(DeadlineHit, httpcore.ConnectTimeout):
    pass


class DeadlineRead(DeadlineHit, httpcore.ReadTimeout):
    pass


class DeadlineWrite(DeadlineHit, httpcore.WriteTimeout):
    pass


def time_left(timeout: float | None) -> tuple[float | None, bool]:
    """(the timeout to give one socket operation, whether it is the deadline's rest)."""
    deadline = DEADLINE.get()
    if deadline is None:
        return timeout, False
    left = deadline - time.monotonic()
    if timeout is not None and timeout < left:
        return timeout, False
    return max(left, 0.0), True


def socket_limit(timeout: float | None) -> tuple[float | None, bool]:
    """time_left, for an operation about to start: TimeoutError if the deadline passed."""
    seconds, by_deadline = time_left(timeout)
    if by_deadline and seconds is not None and seconds <= 0:
        raise TimeoutError("the exchange's deadline passed")
    return seconds, by_deadline


class _Bounded:
    """A connected socket whose every read and write ends by the exchange's deadline
    (or the operation's timeout, if that comes first). Closed when both its owner and
    the reader http.client makes of it (`makefile`) are done, as a socket is."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.read_timeout: float | None = None
        self.write_timeout: float | None = None
        self.by_deadline = False  # whether the last operation's limit was the deadline
        self._readers = 0
        self._closing = False

    def _limit(self, timeout: float | None) -> None:
        self.by_deadline = True  # if the deadline passed before it starts
        seconds, self.by_deadline = socket_limit(timeout)
        self.sock.settimeout(seconds)

    def sendall(self, data: bytes) -> None:
        self._limit(self.write_timeout)
        self.sock.sendall(data)

    def recv_into(self, buffer: Any) -> int:
        self._limit(self.read_timeout)
        return self.sock.recv_into(buffer)

    def makefile(self, mode: str = "rb", *_args: Any, **_kwargs: Any) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_Reader(self), CHUNK)

    def dropped(self) -> bool:
        """Idle, it should have nothing to read: readable means closed (or garbage)."""
        try:  # poll, not select: no limit on the descriptor's number
            poller = select.poll()
            poller.register(self.sock.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closing and self._readers <= 0:
            self.sock.close()

    def close(self) -> None:
        self._closing = True
        if self._readers <= 0:
            self.sock.close()


class _Reader(io.RawIOBase):
    """The raw stream http.client reads a response from (through a buffer)."""

    def __init__(self, owner: _Bounded) -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.owner.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self.owner.reader_closed()


class _Connection(http.client.HTTPConnection):
    """One connection to an origin, connected by `open` (not by http.client's connect)."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None,
                 server_hostname: str) -> None:
        super().__init__(host, port)
        self.tls = tls
        self.server_hostname = server_hostname
        self.bounded: _Bounded | None = None
        self.idle_since = 0.0
        self.connect_by_deadline = False

    @property
    def by_deadline(self) -> bool:
        """Whether the last socket operation's limit was the exchange's deadline."""
        return self.bounded.by_deadline if self.bounded else self.connect_by_deadline

    def open(self, timeout: float | None) -> None:
        self.connect_by_deadline = True  # if the deadline passed before it starts
        seconds, self.connect_by_deadline = socket_limit(timeout)
        sock = socket.create_connection((self.host, self.port), seconds)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:  # the handshake within the same limit
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_hostname)
        except BaseException:
            sock.close()
            raise
        self.bounded = _Bounded(sock)
        # http.client calls sendall, makefile and close on it: all three are bounded's.
        self.sock = cast(socket.socket, self.bounded)

    def connect(self) -> None:
        raise http.client.NotConnected("opened by WireTransport, never by http.client")


Origin = tuple[str, str, int, str]  # scheme, host, port, TLS server name


def _raise_as_httpx(exc: BaseException, phase: str, request: httpx.Request,
                    by_deadline: bool) -> NoReturn:
    """Raise EXC, raised while PHASE (connect, write or read), as httpx's exception
    type; a timeout that was the deadline's from a DeadlineHit (tui.http looks for it)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        timeout, hit = {"connect": (httpx.ConnectTimeout, DeadlineConnect),
                        "write": (httpx.WriteTimeout, DeadlineWrite),
                        "read": (httpx.ReadTimeout, DeadlineRead)}[phase]
        raise timeout(text, request=request) from (hit(text) if by_deadline else None)
    raise _error(exc, text, phase, request) from None


def _error(exc: BaseException, text: str, phase: str,
           request: httpx.Request) -> httpx.TransportError:
    if phase == "connect":
        return httpx.ConnectError(text, request=request)
    if isinstance(exc, http.client.HTTPException):  # RemoteDisconnected, IncompleteRead…
        if isinstance(exc, http.client.IncompleteRead):
            text = (f"peer closed connection without sending complete message body "
                    f"(received {len(exc.partial)} bytes, expected {exc.expected})")
        return httpx.RemoteProtocolError(text, request=request)
    if phase == "write":
        return httpx.WriteError(text, request=request)
    return httpx.ReadError(text, request=request)


class _Body(httpx.SyncByteStream):
    """A response's body, read as it comes; the connection goes back to its transport's
    idle ones once the whole body was read (and the server keeps it open)."""

    def __init__(self, pool: Pool, origin: Origin, conn: _Connection,
                 response: http.client.HTTPResponse, request: httpx.Request) -> None:
        self.pool, self.origin, self.conn = pool, origin, conn
        self.response, self.request = response, request
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self.response.read1(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                self.conn.close()
                _raise_as_httpx(exc, "read", self.request, self.conn.by_deadline)
            if not chunk:
                # http.client ends a body cut short of its Content-Length quietly.
                if self.response.length:
                    self.conn.close()
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body "
                        f"({self.response.length} bytes missing)", request=self.request)
                return
            yield chunk

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # All read: http.client closes a chunked body at its end, and counts a
        # Content-Length one down to 0 (then leaves it open).
        whole = self.response.isclosed() or self.response.length == 0
        self.response.close()
        if whole and not self.response.will_close:
            self.pool.release(self.origin, self.conn)
        else:
            self.conn.close()


class Pool:
    """Idle keep-alive connections per origin. The process keeps one per TLS context
    (`shared_pool`): the clients of a dashboard's next refresh (each refresh builds its
    own) reuse this one's connections, and skip a TCP (and TLS) handshake per request."""

    def __init__(self) -> None:
        self.idle: dict[Origin, list[_Connection]] = {}
        self.lock = threading.Lock()
        self.closed = False

    def take(self, origin: Origin) -> _Connection | None:
        """An idle connection to ORIGIN still good to use, or None."""
        found = None
        with self.lock:
            stale = self._expired()
            kept = self.idle.get(origin, [])
            while kept:
                conn = kept.pop()
                assert conn.bounded is not None  # only opened connections are kept
                if conn.bounded.dropped():
                    stale.append(conn)
                    continue
                found = conn
                break
        for conn in stale:
            conn.close()
        return found

    def release(self, origin: Origin, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        with self.lock:
            stale = self._expired()
            kept = self.idle.setdefault(origin, [])
            if not self.closed and len(kept) < MAX_IDLE:
                kept.append(conn)
            else:
                stale.append(conn)
        for conn in stale:
            conn.close()

    def _expired(self) -> list[_Connection]:
        """Idle connections past KEEPALIVE, taken out (under the lock) to be closed."""
        now = time.monotonic()
        stale = []
        for origin, kept in list(self.idle.items()):
            fresh = [c for c in kept if now - c.idle_since <= KEEPALIVE]
            stale += [c for c in kept if now - c.idle_since > KEEPALIVE]
            if fresh:
                self.idle[origin] = fresh
            else:
                del self.idle[origin]
        return stale

    def close(self) -> None:
        with self.lock:
            self.closed = True
            kept = [conn for conns in self.idle.values() for conn in conns]
            self.idle.clear()
        for conn in kept:
            conn.close()


_shared: weakref.WeakKeyDictionary[ssl.SSLContext, Pool] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared_pool(tls: ssl.SSLContext) -> Pool:
    """The process's pool for connections made with TLS (tui.http builds one context per
    CA bundle): a connection verified under one context is never lent to another."""
    with _shared_lock:
        pool = _shared.get(tls)
        if pool is None:
            pool = _shared[tls] = Pool()
        return pool


def _forget_shared() -> None:
    """In a forked child (tui/detach.py): the parent's connections are the parent's.
    Their sockets are closed here, in the child only (the parent's stay open)."""
    global _shared
    for pool in list(_shared.values()):
        pool.close()
    _shared = weakref.WeakKeyDictionary()


os.register_at_fork(after_in_child=_forget_shared)

KEEP_CONNECTIONS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "cloudrig_keep_connections", default=False)
"""Whether clients made now keep their connections in the process's pool when closed:
a dashboard's checks do (tui/engine/checking.py), so that its next refresh's clients
reuse them; a run's clients close theirs (a long-lived TUI gives back every
descriptor a run took)."""


@contextlib.contextmanager
def keeping_connections() -> Iterator[None]:
    token = KEEP_CONNECTIONS.set(True)
    try:
        yield
    finally:
        KEEP_CONNECTIONS.reset(token)


_insecure: ssl.SSLContext | None = None


def insecure_context() -> ssl.SSLContext:
    """The one unverified TLS context (an operator's explicit `insecure`), so that its
    connections share a pool too."""
    global _insecure
    if _insecure is None:
        _insecure = httpx.create_ssl_context(verify=False)
    return _insecure


IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
STALE = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)
"""How a kept connection the server has meanwhile closed fails."""


class _Stale(Exception):
    """A kept connection the server closed while it was idle."""


class WireTransport(httpx.BaseTransport):
    """HTTP/1.1 over http.client with keep-alive, TLS by VERIFY (a context, or False
    for none), each socket operation bounded by the exchange's deadline. Its idle
    connections are kept in a pool of its own, closed with it, or if SHARED in the
    process's pool for its TLS context, which outlives it (`shared_pool`)."""

    def __init__(self, verify: ssl.SSLContext | bool = True, shared: bool = False) -> None:
        if isinstance(verify, ssl.SSLContext):
            self.tls = verify
        else:
            self.tls = insecure_context() if verify is False else \
                httpx.create_ssl_context(verify=verify)
        self.shared = shared
        self.pool = shared_pool(self.tls) if shared else Pool()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"{scheme}:// is not http:// or https://",
                                            request=request)
        port = url.port or (443 if scheme == "https" else 80)
        host = url.raw_host.decode("ascii")  # IDNA-encoded, an IPv6 address unbracketed
        sni = request.extensions.get("sni_hostname") or host
        origin: Origin = (scheme, host, port, sni)
        kept = self.pool.take(origin)
        if kept is not None:
            try:
                return self._exchange(request, origin, kept)
            except _Stale:
                pass  # closed by the server while idle: once more on a new connection
        conn = _Connection(host, port, self.tls if scheme == "https" else None, sni)
        return self._exchange(request, origin, conn)

    def _exchange(self, request: httpx.Request, origin: Origin,
                  conn: _Connection) -> httpx.Response:
        """REQUEST on CONN (opened here if new); _Stale when a kept connection turns out
        closed before the server can have read the request, or (for an idempotent
        method) before any byte of an answer."""
        timeouts = request.extensions.get("timeout", {})
        reused = conn.bounded is not None
        phase = "connect"
        try:
            if not reused:
                conn.open(timeouts.get("connect"))
            assert conn.bounded is not None
            conn.bounded.read_timeout = timeouts.get("read")
            conn.bounded.write_timeout = timeouts.get("write")
            phase = "write"
            url = request.url
            conn.putrequest(request.method, url.raw_path.decode("ascii"), skip_host=True,
                            skip_accept_encoding=True)
            for name, value in request.headers.raw:
                conn.putheader(name, value)
            chunked = request.headers.get("Transfer-Encoding", "").lower() == "chunked"
            body = request.read()
            # Chunked, even an empty body is sent: its last chunk ends the request.
            conn.endheaders(body if body or chunked else None, encode_chunked=chunked)
            phase = "read"
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            by_deadline = conn.by_deadline
            conn.close()
            idempotent = request.extensions.get("idempotent", request.method in IDEMPOTENT)
            if reused and isinstance(exc, STALE) and (phase == "write" or idempotent):
                raise _Stale from None
            _raise_as_httpx(exc, phase, request, by_deadline)
        headers = [(name.encode("latin-1"), value.encode("latin-1"))
                   for name, value in response.msg.items()]
        version = b"HTTP/1.0" if response.version == 10 else b"HTTP/1.1"
        return httpx.Response(
            status_code=response.status, headers=headers,
            stream=_Body(self.pool, origin, conn, response, request),
            extensions={"http_version": version,
                        "reason_phrase": response.reason.encode("latin-1", "replace")})

    def close(self) -> None:
        if not self.shared:
            self.pool.close()

