"""`cloudrig serve`'s gate: what a browser must show before it can drive CloudRig.

Whoever drives the page runs CloudRig as the user who started `serve`. So, as Jupyter
does (jupyter_server/auth/identity.py: a random token per start, compared with
hmac.compare_digest; jupyter_server/base/handlers.py: check_host and check_origin):

- a random token is made at each start and printed once, in the URL;
- the page, the websocket and downloads need it, from `?token=` (which sets an
  HttpOnly, SameSite=Strict cookie and redirects to the bare URL, so the token leaves
  the address bar and the history) or from that cookie; compared in constant time;
- the Host header must name the address served on: on a loopback bind, a loopback
  name with serve's port, so a web page whose name rebinds to 127.0.0.1 (DNS
  rebinding) is refused; on a non-loopback bind (`--public`, behind a proxy) any
  name, the token being the guard there;
- an Origin header, which browsers send with every websocket and cross-site request,
  must be the page's own (scheme, Host): another site's page cannot drive the TUI;
- the page is CloudRig's own template: its fonts and scripts come from serve itself
  (textual-serve's page links a web font on a public CDN), and a Content-Security-
  Policy keeps the browser from fetching anything from elsewhere.

Served sessions get serve's environment without `CLOUDRIG_SECRET_*` and
`CLOUDRIG_SECRETS_PASSPHRASE` (textual-serve copies os.environ into each app): they
use the secret store, or ask. This module imports no Textual; tui/app.py wires it
into textual-serve's server.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from tui.secrets import ENV_PREFIX, PASSPHRASE_ENV

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# Paths served without the token: textual-serve's own static files (script, styles,
# fonts), the same for everyone and holding nothing of this host.
PUBLIC_PREFIX = "/static/"
CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self' {ws}; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


def new_token() -> str:
    """A token for one start of `serve` (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison: the time taken says nothing of how much matched."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def cookie_name(port: int) -> str:
    """One cookie per port: cookies are per host, not per port, and two `serve`s on
    one host must not overwrite each other's."""
    return f"cloudrig-token-{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host headers accepted (lower-case, with the port), or None for any."""
    if not is_loopback(host):
        return None
    return frozenset(f"{name}:{port}" for name in LOOPBACK_NAMES)


def same_origin(origin: str, host_header: str) -> bool:
    """Whether ORIGIN (`http://127.0.0.1:8000`) is the page's own origin, whose host
    and port the Host header gives."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    expected = host_header.lower()
    if ":" not in expected.rsplit("]", 1)[-1]:
        expected += f":{443 if parts.scheme == 'https' else 80}"
    return f"{name.lower()}:{port}" == expected


def scrub_environment(environ: MutableMapping[str, str]) -> list[str]:
    """Remove every CLOUDRIG_SECRET_* and the store's passphrase; the names removed."""
    names = sorted(k for k in environ if k.startswith(ENV_PREFIX) or k == PASSPHRASE_ENV)
    for name in names:
        del environ[name]
    return names


def gate(token: str, host: str, port: int) -> Any:
    """An aiohttp middleware refusing any request that does not pass the rules above."""
    from aiohttp import web  # deferred: start-up (aiohttp)

    hosts = allowed_hosts(host, port)
    cookie = cookie_name(port)

    def refuse(why: str) -> web.Response:
        return web.Response(status=403, text=f"CloudRig refused this request: {why}\n",
                            content_type="text/plain")

    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        host_header = request.headers.get("Host", "")
        if hosts is not None and host_header.lower() not in hosts:
            return refuse(f"the Host {host_header!r} is not the address `cloudrig serve` "
                          f"listens on; open http://127.0.0.1:{port}/ (the URL it printed)")
        origin = request.headers.get("Origin")
        if origin is not None and not same_origin(origin, host_header):
            return refuse(f"a page from {origin} may not use CloudRig's page")
        if request.path.startswith(PUBLIC_PREFIX):
            return await handler(request)
        given = request.query.get("token")
        if given is not None:
            if not token_matches(given, token):
                return refuse("the token is not this server's; open the URL `cloudrig serve` "
                              "printed when it started")
            if request.path == "/" and request.method == "GET":
                # Into the cookie, out of the address bar (history, screenshots, Referer).
                rest = urlencode([(k, v) for k, v in request.query.items() if k != "token"])
                response: web.StreamResponse = web.HTTPFound("/" + (f"?{rest}" if rest else ""))
                response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
                return response
        elif not token_matches(request.cookies.get(cookie), token):
            return refuse("this page needs the token `cloudrig serve` printed when it "
                          "started; open the URL with ?token=… it printed")
        response = await handler(request)
        if request.path == "/":
            scheme = "wss" if request.secure else "ws"
            response.headers["Content-Security-Policy"] = CSP.format(
                ws=f"{scheme}://{host_header}")
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cache-Control"] = "no-store"
        return response

    return middleware


def scrubbed_names() -> list[str]:
    """The secret variables `serve` would withhold from its sessions (names only)."""
    return sorted(k for k in os.environ if k.startswith(ENV_PREFIX) or k == PASSPHRASE_ENV)
