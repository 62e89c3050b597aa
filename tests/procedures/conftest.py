"""The procedures layer: CloudRig's procedures through the CLI, in this process, against
the fakes in tests/support/fakes.

Retries of a failed idempotent request (tui/http.py `RetryTransport`) still happen
here, each attempt reaching the fake that counts it, but without the backoff's
wall-clock wait between them (0.25 s doubling, up to about 4 s per request): no test
of this layer is about how long the backoff waits (tests/unit/test_http.py is, with
its own clock), and a dead endpoint or a failing fake made each such test wait out
every backoff. A transport given its own `sleep` keeps it; a CloudRig run as a
process (the real entry point) waits as it would anywhere.

The cloudcasa fixtures are registered here, once for the layer: a session fixture
imported into several test modules is a separate fixture in each, so each module
started its own moto server (about 10 s each under load); `rig` resets moto's state
per test (its /moto-api/reset), so one server per worker is shared safely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cloudcasa_rig import moto_server, rig

from tui import http

__all__ = ["backoff_waits", "moto_server", "rig"]  # fixtures, imported for pytest


@pytest.fixture(autouse=True)
def backoff_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Every backoff delay a retry asked for, recorded instead of slept."""
    asked: list[float] = []
    real_init: Callable[..., None] = http.RetryTransport.__init__

    def init(self: http.RetryTransport, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        if "sleep" not in kwargs and len(args) < 5:  # the default: time.sleep
            self.sleep = asked.append

    monkeypatch.setattr(http.RetryTransport, "__init__", init)
    yield asked
