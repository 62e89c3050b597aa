"""Preview equals the wire: what an apply sends, compared with what its plan showed.

An apply runs in this process (`Session.apply`) against the fakes (real HTTP
servers on 127.0.0.1 with request logs). Every `ApiCall` the engine executes is
recorded with its plan view — `Session.item_view`, the very text `cloudrig plan`
and the preview screen show — and with the requests that reached the fakes while
it ran. Then:

- each request that changes something remote (the procedure says which) was sent
  while a planned call ran, and has that call's method, path and body;
- a changing planned call sent at least one request (nothing previewed is skipped);
- no secret value is in any plan view (bodies are compared after masking the wire's
  secrets the way the preview masks them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fakes.server import FakeService, Request

from tui.redact import redact


def session_for(proc: str, answers: dict[str, Any], secrets: dict[str, str],
                tmp: Path, root: bool = True) -> Any:
    """An in-process session of PROC: answers validated, SECRETS given directly (no
    store, no prompt), state under TMP, files staged under TMP/root."""
    from tui.answers import secret_fields
    from tui.engine import Session
    from tui.registry import get_procedure
    from tui.secrets import SecretSource
    from tui.state import StateStore

    procedure = get_procedure(proc)
    model = procedure.answers_model.model_validate(answers)
    source = SecretSource(proc, secret_fields(procedure.answers_model), overrides=secrets,
                          interactive=False)
    return Session(procedure, model, source, StateStore(tmp / "state"),
                   root=tmp / "root" if root else None)


Shape = tuple[str, str, Any]
"""(method, path, body) — the body parsed (JSON, or text) with secrets masked."""


def parsed(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def wire_json(request: Request) -> Shape:
    """A JSON (or raw text) API's request: method, path, masked body."""
    return (request.method, request.path,
            parsed(redact(request.body.decode(errors="replace"))))


def plan_json(view: dict[str, Any]) -> Shape:
    return (view["method"], urlsplit(view["url"]).path, parsed(view.get("body")))


@dataclass
class Executed:
    view: dict[str, Any]
    sent: list[Request] = field(default_factory=list)


@dataclass
class WireRecord:
    executed: list[Executed]
    outside: list[Request]
    """Requests sent while no planned call ran (plan's reads, polls of custom steps)."""

    def check(self, changing: Callable[[Request], bool], wire: Callable[[Request], Shape],
              plan: Callable[[dict[str, Any]], Shape], secrets: Sequence[str],
              unplanned_ok: Callable[[Request], bool] = lambda r: False) -> list[Shape]:
        """Assert preview == wire; return the changing requests' shapes (for the test to
        say which calls it saw). UNPLANNED_OK: changing-looking requests a client makes
        on its own, outside any plan item (a login that only issues a token)."""
        seen: list[Shape] = []
        unplanned = [wire(r) for r in self.outside if changing(r) and not unplanned_ok(r)]
        assert unplanned == [], f"changing requests no plan item showed: {unplanned}"
        for call in self.executed:
            shown = plan(call.view)
            sent = [wire(r) for r in call.sent if changing(r)]
            for shape in sent:
                assert shape == shown, (
                    f"{call.view['description']!r}: previewed\n  {shown}\nbut sent\n  {shape}")
            if call.view["changes_remote"]:
                assert sent, f"{call.view['description']!r} was previewed and sent nothing"
            seen += sent
        views = json.dumps([c.view for c in self.executed], ensure_ascii=False)
        for secret in secrets:
            assert secret not in views and json.dumps(secret)[1:-1] not in views
        return seen


def record_apply(monkeypatch: Any, session: Any, services: Sequence[FakeService],
                 extra_logs: Sequence[Callable[[], list[Request]]] = (),
                 only: Sequence[str] = ()) -> WireRecord:
    """Run `session.apply()` recording each executed ApiCall and the requests that
    reached SERVICES (and any EXTRA_LOGS) while it ran."""
    from tui.context import Context
    from tui.model import ApiCall

    logs: list[Callable[[], list[Request]]] = [lambda s=s: s.log for s in services]
    logs += list(extra_logs)
    executed: list[Executed] = []
    inside: set[int] = set()
    starts = [len(log()) for log in logs]
    original = Context.call

    def call(ctx: Context, item: ApiCall) -> Any:
        view = session.item_view(item).model_dump() | {"changes_remote": item.changes_remote}
        before = [len(log()) for log in logs]
        try:
            return original(ctx, item)
        finally:
            sent = [r for log, n in zip(logs, before, strict=True) for r in log()[n:]]
            executed.append(Executed(view, sent))
            inside.update(id(r) for r in sent)

    monkeypatch.setattr(Context, "call", call)
    result = session.apply(only)
    assert result.exit_code == 0, result.message
    outside = [r for log, n in zip(logs, starts, strict=True) for r in log()[n:]
               if id(r) not in inside]
    return WireRecord(executed, outside)
