"""tui/http_wire.py, the transport under every direct client, against a raw HTTP/1.1
server on 127.0.0.1 that notes which connection each request came on: kept
connections, a server closing them, a body cut short, chunked answers, a fork."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from forked import in_a_forked_child

from tui import http_wire
from tui.http import RemoteError, http_transport, json_body, make_client, request, tls_context
from tui.http_wire import keeping_connections

JSON_OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
           b'{"ok":true}')


class Wire:
    """Answers each request with the next scripted raw reply (then JSON_OK); a reply
    scripted with close=True is followed by closing that connection. Notes (connection
    number, method, path) of every request it read, in order."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.script: list[tuple[bytes, bool]] = []
        self.seen: list[tuple[int, str, str]] = []
        self.closed = threading.Semaphore(0)  # released each time it closes a connection
        self.lock = threading.Lock()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                number = self.connections
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        try:
            self._answer(conn, number)
        finally:
            conn.close()
            self.closed.release()

    def _answer(self, conn: socket.socket, number: int) -> None:
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                try:
                    more = conn.recv(65536)
                except OSError:
                    more = b""
                if not more:
                    return
                data += more
            head, _, data = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ")
            length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                           if line.lower().startswith("content-length:")), 0)
            while len(data) < length:
                data += conn.recv(65536)
            data = data[length:]
            with self.lock:
                self.seen.append((number, method, path))
                reply, close = self.script.pop(0) if self.script else (JSON_OK, False)
            conn.sendall(reply)
            if close:
                break
        self.closed.release()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    server = Wire()
    yield server
    server.close()


def test_checks_keep_their_connections_for_the_next_refresh_and_runs_do_not(
        wire: Wire) -> None:
    """A dashboard builds its checks' clients anew at every refresh: the process keeps
    their connections (one pool per TLS context), so the next refresh's client asks on
    the same connection instead of opening another. A run's client closes its own."""
    with keeping_connections():
        with make_client(wire.url) as first:
            for _ in range(3):
                assert json_body(request(first, "GET", "/v1/acl/token/self")) == {"ok": True}
        with make_client(wire.url) as second:
            assert request(second, "GET", "/v1/kv/a").status_code == 200
    with make_client(wire.url) as run:
        request(run, "GET", "/v1/kv/b")
        request(run, "GET", "/v1/kv/c")
    assert wire.closed.acquire(timeout=30)  # the run's connection, closed with its client
    with keeping_connections(), make_client(wire.url) as third:
        request(third, "GET", "/v1/kv/d")
    assert wire.seen == [(0, "GET", "/v1/acl/token/self")] * 3 + [
        (0, "GET", "/v1/kv/a"), (1, "GET", "/v1/kv/b"), (1, "GET", "/v1/kv/c"),
        (0, "GET", "/v1/kv/d")]


def test_a_transport_of_its_own_closes_its_connections_with_it(wire: Wire) -> None:
    transport = http_transport(tls_context())  # not shared: its pool is its own
    with make_client(wire.url, transport=transport) as client:
        request(client, "GET", "/a")
        request(client, "GET", "/b")
    assert wire.closed.acquire(timeout=30)  # the server read the end of connection 0
    assert wire.seen == [(0, "GET", "/a"), (0, "GET", "/b")]


def test_a_connection_the_server_closed_while_idle_is_not_used_again(wire: Wire) -> None:
    wire.script.append((JSON_OK, True))
    with make_client(wire.url) as client:
        request(client, "GET", "/a")
        assert wire.closed.acquire(timeout=30)
        assert json_body(request(client, "GET", "/b")) == {"ok": True}
    assert wire.seen == [(0, "GET", "/a"), (1, "GET", "/b")]


def test_a_kept_connection_closed_just_after_its_check_carries_a_get_on_a_new_one(
        wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server closes a kept connection just after the check that it is still open
    (as if at the same moment): the GET goes again, at once, on a new connection."""
    monkeypatch.setattr(http_wire._Bounded, "dropped", lambda self: False)
    wire.script.append((JSON_OK, True))
    with make_client(wire.url, retries=0) as client:
        request(client, "GET", "/a")
        assert wire.closed.acquire(timeout=30)
        assert json_body(request(client, "GET", "/b")) == {"ok": True}
    assert wire.seen[-1] == (1, "GET", "/b")


def test_a_request_the_server_read_and_dropped_is_sent_again_only_if_idempotent(
        wire: Wire) -> None:
    """A kept connection's server reads the request and closes without answering: a
    GET goes again on a new connection; a POST is not sent again (the server may have
    acted on it), and the operator reads why."""
    dropped = (b"", True)  # read the request, answer nothing, close
    wire.script += [(JSON_OK, False), dropped]
    with make_client(wire.url, retries=0) as client:
        request(client, "GET", "/a")
        with pytest.raises(RemoteError) as err:
            request(client, "POST", "/v1/acl/token", json={"Description": "x"})
        request(client, "GET", "/c")
        wire.script.append(dropped)
        assert json_body(request(client, "GET", "/d")) == {"ok": True}
    assert wire.seen == [(0, "GET", "/a"), (0, "POST", "/v1/acl/token"), (1, "GET", "/c"),
                         (1, "GET", "/d"), (2, "GET", "/d")]
    assert err.value.sentence.startswith(
        f"POST {wire.url}/v1/acl/token: the connection broke mid-reply (")


def test_a_body_cut_short_of_its_length_is_a_sentence(wire: Wire) -> None:
    """http.client reads a body cut short of its Content-Length as if it were whole; the
    transport does not."""
    wire.script.append((b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10, True))
    with make_client(wire.url, retries=0) as client, pytest.raises(RemoteError) as err:
        request(client, "GET", "/v1/catalog/services")
    assert err.value.sentence == (
        f"GET {wire.url}/v1/catalog/services: the connection broke mid-reply (peer closed "
        "connection without sending complete message body (90 bytes missing)); retry, and "
        "check any proxy in between")


@pytest.mark.parametrize("flood", ["headers", "a header line"])
def test_a_flood_of_headers_is_cut_off_with_a_sentence(wire: Wire, flood: str) -> None:
    head = (b"".join(b"X-%d: y\r\n" % n for n in range(101)) if flood == "headers"
            else b"X-Long: " + b"y" * 70000 + b"\r\n")
    wire.script.append((b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 0\r\n\r\n", True))
    with make_client(wire.url, retries=0) as client, pytest.raises(RemoteError) as err:
        request(client, "GET", "/v1/agent/self")
    assert err.value.sentence.startswith(
        f"GET {wire.url}/v1/agent/self: the connection broke mid-reply (")
    assert ("more than 100 headers" if flood == "headers" else "line") in err.value.sentence


def test_a_chunked_answer_is_read_whole_and_its_connection_kept(wire: Wire) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n4\r\n[1, \r\n3\r\n2]\n\r\n0\r\n\r\n")
    wire.script.append((chunked, False))
    with make_client(wire.url) as client:
        assert json_body(request(client, "GET", "/list")) == [1, 2]
        assert request(client, "GET", "/next").status_code == 200
    assert wire.seen == [(0, "GET", "/list"), (0, "GET", "/next")]


def test_an_answer_without_a_body_keeps_its_connection(wire: Wire) -> None:
    wire.script.append((b"HTTP/1.1 204 No Content\r\n\r\n", False))
    with make_client(wire.url) as client:
        assert request(client, "DELETE", "/v1/kv/a", ok=(204,)).content == b""
        assert request(client, "HEAD", "/v1/kv/a").content == b""
        assert request(client, "GET", "/v1/kv/a").status_code == 200
    assert [number for number, _, _ in wire.seen] == [0, 0, 0]


def test_a_forked_child_opens_connections_of_its_own(wire: Wire) -> None:
    """tui/detach.py forks: the child must not talk on the parent's kept connections
    (two processes on one socket mix their answers); closing its copies leaves the
    parent's open."""
    with keeping_connections(), make_client(wire.url) as client:
        request(client, "GET", "/parent")
    def child() -> bool:
        with keeping_connections(), make_client(wire.url) as client:
            return request(client, "GET", "/child").status_code == 200

    assert in_a_forked_child(child)
    with keeping_connections(), make_client(wire.url) as client:
        request(client, "GET", "/parent-again")
    assert wire.seen == [(0, "GET", "/parent"), (1, "GET", "/child"),
                         (0, "GET", "/parent-again")]


def test_a_body_closed_twice_gives_its_connection_back_once(wire: Wire) -> None:
    transport = http_wire.WireTransport(False)
    response = transport.handle_request(httpx.Request("GET", wire.url + "/a"))
    response.read()
    response.close()
    response.stream.close()
    assert len(transport.pool.idle[("http", "127.0.0.1", int(wire.url.rsplit(":", 1)[1]),
                                    "127.0.0.1")]) == 1
    transport.close()


def test_a_scheme_other_than_http_is_refused(wire: Wire) -> None:
    transport = http_wire.WireTransport(False)
    with pytest.raises(httpx.UnsupportedProtocol):
        transport.handle_request(httpx.Request("GET", "ftp://127.0.0.1/x"))
