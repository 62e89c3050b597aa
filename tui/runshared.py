"""What every step of one run shares, handed explicitly to each step's Context.

A Context is made per step (tui/engine/scope.py), so nothing one step sets (its id,
the host it is exported to, its manual lines) is seen by another. What must outlive
a step lives here instead: the cancel Event and the signal's reason (a stop asked
during one step stops the next), the API clients and read-once values steps share,
the ownership record, and the state the checks read (results, confirmations).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from tui.model import Ownership

T = TypeVar("T")


@dataclass
class RunShared:
    """One per run (a Session makes one); every step's Context points at it."""

    cancel: threading.Event = field(default_factory=threading.Event)
    """Set to stop the run at its next safe point (the TUI's stop key, a signal)."""
    stop_reason: str | None = None
    """Why the run is asked to stop (e.g. "SIGTERM"), set by tui/signals.py's handler."""
    resources: dict[str, Any] = field(default_factory=dict)
    """Objects steps share, e.g. one API client (closed by `close()`)."""
    resources_lock: threading.RLock = field(default_factory=threading.RLock)
    """Guards `resources` for contexts used at once (a refresh's concurrent checks)."""
    previous: dict[str, Any] = field(default_factory=dict)
    """Each step's last recorded result (StepRecord), for checks of manual steps."""
    confirmations: dict[str, datetime] = field(default_factory=dict)
    """Steps the operator confirmed by hand (`cloudrig confirm PROC STEP`) and when."""
    ownership: Ownership | None = None
    """What CloudRig created for this procedure (None: no record at all)."""
    on_owned: Callable[[], None] = lambda: None
    """Persists `ownership` (the engine saves it at once: a killed run keeps it)."""

    def shared(self, name: str, make: Callable[[], T]) -> T:
        """One NAME per run, made by MAKE the first time a step asks."""
        with self.resources_lock:
            if name not in self.resources:
                self.resources[name] = make()
            return self.resources[name]

    def close(self) -> None:
        for resource in self.resources.values():
            closer = getattr(resource, "close", None)
            if closer:
                closer()
        self.resources.clear()
