"""A request described before it is sent: one source for the preview and the wire.

A client method that changes something remote is split in two: a builder that
returns the `Request` (method, path, query, body) and the call that sends exactly
that request. A procedure's plan shows the built request (method, URL, body) and
its apply sends the same object, so what the operator previewed is, byte for
byte, what goes out; the two can no longer be written twice and drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Request:
    """One HTTP request as it will be sent (before any signature or auth header)."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    """The query string (GET) or, with `form`, the form-encoded body (POST)."""
    json: Any = None
    content: bytes | None = None
    form: bool = False
    """Send `params` as an application/x-www-form-urlencoded body, not a query."""
    listed: bool = False
    """Preview `params` as the body even when they go in the query (CloudStack: a
    command is its parameters, GET or POST alike), so the shown URL stays short."""
    changes: bool | None = None
    """Whether it changes remote state; None: by method (POST/PUT/PATCH/DELETE)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers of this request beyond the client's own (never shown: auth lives here)."""
    ok: tuple[int, ...] = (200,)
    what: str = ""
    """What it does, for the sentence when it fails ("create project atmoadmin")."""
    retry: bool | None = None
    """Whether a lost answer may be retried; None: by method (tui.http.IDEMPOTENT).
    False for a create: it may have happened."""

    @property
    def changes_remote(self) -> bool:
        return self.method in CHANGING if self.changes is None else self.changes

    def target(self) -> str:
        """The path with its query, as the preview shows it."""
        if self.params and not (self.form or self.listed):
            return f"{self.path}?{urlencode(dict(self.params))}"
        return self.path

    def body(self) -> Any:
        """The body as the preview shows it: the JSON value, the form fields, or the
        raw content as text (the caller's redaction masks any secret in it)."""
        if self.json is not None:
            return self.json
        if self.form or self.listed:
            return dict(self.params)
        if self.content is not None:
            return self.content.decode(errors="replace")
        return None

    def httpx_kwargs(self) -> dict[str, Any]:
        """What `tui.http.request` takes to send it."""
        kwargs: dict[str, Any] = {"ok": self.ok}
        if self.retry is not None:
            kwargs["extensions"] = {"idempotent": self.retry}
        if self.form:
            kwargs["data"] = dict(self.params)
        elif self.params:
            kwargs["params"] = dict(self.params)
        if self.json is not None:
            kwargs["json"] = self.json
        if self.content is not None:
            kwargs["content"] = self.content
        if self.headers:
            kwargs["headers"] = dict(self.headers)
        return kwargs
