"""A threaded HTTP server on 127.0.0.1 with fault injection, shared by the fakes.

Faults are queued and consumed by the next matching requests: a status with a
body, a slow reply, or a connection reset — the failures real services have — or a
hold, which keeps a request waiting until the test releases it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Hold:
    """One request held until the test releases it: the deterministic "the run is now
    exactly here" a test needs to start a second run, confirm, or send a signal while
    the first is mid-apply (never a sleep). `arrived` is set when the request is in."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    limit: float = 900.0  # a test that never releases does not hang the server forever

    def wait(self, timeout: float = 600.0) -> bool:
        return self.arrived.wait(timeout)

    def release(self) -> None:
        self.released.set()


@dataclass
class Fault:
    status: int | None = None
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    content_type: str = "text/plain"
    path_prefix: str = ""
    method: str | None = None
    hold: Hold | None = None
    trickle: float = 0.0  # seconds between single bytes of a body that never ends
    flood: int = 0  # bytes of a body without length, sent until the client hangs up

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and self.method in (None, method)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(data).encode())

    @classmethod
    def text(cls, text: str, status: int) -> Reply:
        return cls(status, text.encode(), "text/plain; charset=utf-8")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class _Server(ThreadingHTTPServer):
    """A listener with the backlog a real API server has. socketserver's default of 5
    drops the SYNs of a burst of new connections (a dashboard refresh opens dozens
    at once), and each dropped one costs the client a 1 s retransmit; Go's net/http
    (Consul) listens with the system's somaxconn (net/sock_linux.go
    maxListenerBacklog), as do most servers."""

    request_queue_size = socket.SOMAXCONN


class FakeService:
    """Subclasses implement `handle(request) -> Reply`; this class serves them."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.log: list[Request] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tls: ssl.SSLContext | None = None
        self.latency = 0.0  # seconds every reply waits (a remote API's round trip)
        # Called with each request once it is handled, before its reply goes out; when it
        # returns True no reply is sent. The reliability tests kill the client there: the
        # change happened on the server, and the client never heard of it.
        self.after_handle: Callable[[Request], bool] | None = None
        self.flooded: list[int] = []  # bytes each flood sent before the client hung up
        self._open: set[socket.socket] = set()  # the clients' connections, until they end
        self.connections = 0  # connections accepted in all

    # ------------------------------------------------------------ faults

    def fail(self, status: int, body: str = "", times: int = 1, **kwargs: Any) -> None:
        for _ in range(times):
            self.faults.append(Fault(status=status, body=body, **kwargs))

    def slow(self, seconds: float, times: int = 1, **kwargs: Any) -> None:
        for _ in range(times):
            self.faults.append(Fault(delay=seconds, **kwargs))

    def reset(self, times: int = 1, **kwargs: Any) -> None:
        for _ in range(times):
            self.faults.append(Fault(reset=True, **kwargs))

    def hold(self, method: str | None = None, path_prefix: str = "") -> Hold:
        """Hold the next matching request (then answer it as usual) until released."""
        hold = Hold()
        self.faults.append(Fault(hold=hold, method=method, path_prefix=path_prefix))
        return hold

    def trickle(self, interval: float, times: int = 1, **kwargs: Any) -> None:
        """200 with its headers at once, then one byte of the body every INTERVAL
        seconds (a stalled proxy, a server under a slowloris-like fault): each read
        gets a byte in time, so only a total deadline ends it."""
        for _ in range(times):
            self.faults.append(Fault(trickle=interval, **kwargs))

    def flood(self, size: int, times: int = 1, **kwargs: Any) -> None:
        """200 with a body of SIZE bytes and no Content-Length (read until close): the
        bytes this sent before the client hung up are appended to `flooded`."""
        for _ in range(times):
            self.faults.append(Fault(flood=size, **kwargs))

    def garble(self, times: int = 1, status: int = 200, **kwargs: Any) -> None:
        """STATUS with a JSON content type and a cut-off body, as a proxy that dropped
        the connection's tail or an API gateway's broken page gives."""
        for _ in range(times):
            self.faults.append(Fault(status=status, body='{"truncated": [1, 2',
                                     content_type="application/json", **kwargs))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.matches(method, path):
                    return self.faults.pop(index)
        return None

    # ------------------------------------------------------------ serving

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> FakeService:
        """Serve on 127.0.0.1:`port` (0: any free port; a fixed one keeps URLs in
        screenshots stable); with `tls`, https with that server context."""
        service = self
        self._tls = tls

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle's algorithm on, the
            # body waits for the client's delayed ACK (40 ms per request on Linux).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with service.lock:
                    service._open.add(self.connection)
                    service.connections += 1

            def finish(self) -> None:
                with service.lock:
                    service._open.discard(self.connection)
                super().finish()

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path,
                                  parse_qs(parts.query, keep_blank_values=True),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                with service.lock:
                    service.log.append(request)
                if service.latency:
                    time.sleep(service.latency)
                fault = service._take_fault(request.method, request.path)
                if fault and fault.hold:
                    fault.hold.arrived.set()
                    fault.hold.released.wait(fault.hold.limit)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fault and fault.reset:
                    # An abortive close (RST), as a crashed peer or a proxy does.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if fault and (fault.trickle or fault.flood):
                    self._misbehave(fault)
                    return
                if fault and fault.status:
                    reply = Reply(fault.status, fault.body.encode(), fault.content_type,
                                  fault.headers)
                else:
                    with service.lock:
                        reply = service.handle(request)
                    hook = service.after_handle
                    if hook is not None and hook(request):
                        self.close_connection = True
                        return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":  # HEAD: headers only (RFC 9110 9.3.2)
                    self.wfile.write(reply.body)

            def _misbehave(self, fault: Fault) -> None:
                """A trickle (at most a minute) or a flood, until the client hangs up."""
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if fault.trickle:
                    self.send_header("Content-Length", "1000000")
                self.send_header("Connection", "close")
                self.end_headers()
                sent, chunk = 0, b" " * 65536
                try:
                    if fault.trickle:
                        ends = time.monotonic() + 60
                        while time.monotonic() < ends:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            sent += 1
                            time.sleep(fault.trickle)
                    while sent < fault.flood:
                        self.wfile.write(chunk[: fault.flood - sent])
                        sent += min(len(chunk), fault.flood - sent)
                except OSError:  # the client hung up: what it should do
                    pass
                if fault.flood:
                    with service.lock:
                        service.flooded.append(sent)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve

        self._server = _Server(("127.0.0.1", port), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    def stop(self) -> None:
        for fault in self.faults:
            if fault.hold:
                fault.hold.release()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        # A server that stops ends its clients' connections too, kept-alive ones
        # included: Go's net/http `Server.Close` closes every connection, new, active or
        # idle (src/net/http/server.go), and a Consul agent that exits does. Without
        # this a client's kept connection would go on talking to a stopped fake's
        # handler thread (and its old state) after a new fake took the port.
        with self.lock:
            open_now, self._open = list(self._open), set()
        for conn in open_now:
            with contextlib.suppress(OSError):  # its handler thread reads the end, closes
                conn.shutdown(socket.SHUT_RDWR)
