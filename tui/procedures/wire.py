"""Plan items built from the request a client will send (see tui/clients/wire.py).

`api_call` turns a client's `Request` into the previewed `ApiCall`: method, URL
and body come from the request itself, and by default executing the item sends
that same request object. A step never writes a call's method, path or body a
second time for its preview.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from tui.clients.wire import Request
from tui.context import Context
from tui.model import ApiCall, PlanItem


class Sender(Protocol):
    def url_of(self, request: Request) -> str: ...

    def send(self, request: Request) -> Any: ...


def api_call(client: Sender, request: Request, description: str,
             execute: Callable[[], Any] | None = None) -> ApiCall:
    """The previewed call for REQUEST; EXECUTE (default: send it) must send REQUEST
    itself, e.g. to record what it creates around the sending."""
    return ApiCall(method=request.method, url=client.url_of(request), body=request.body(),
                   changes_remote=request.changes_remote, description=description,
                   execute=execute if execute is not None else lambda: client.send(request))


def preview_call(url: str, request: Request, description: str) -> ApiCall:
    """A call shown before the remote can be read (no key at hand, an id not made
    yet): the request as it will be built, with placeholders; never executed as is
    (apply plans again with what it then knows)."""
    return ApiCall(method=request.method, url=url, body=request.body(),
                   changes_remote=request.changes_remote, description=description)


def execute_replanning(ctx: Context, plan: Callable[[Context], list[PlanItem]]) -> None:
    """Carry out a step's plan one item at a time, planning again after each: a call
    that needs an id an earlier call creates (a user in the project just made) is sent
    with that id, exactly as the fresh plan shows it. Each item runs at most once."""
    done: set[str] = set()
    while True:
        pending = [item for item in plan(ctx) if item.model_dump_json() not in done]
        if not pending:
            return
        ctx.execute(pending[:1])
        done.add(pending[0].model_dump_json())
