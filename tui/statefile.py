"""Where state lives and a quick look at it, without pydantic.

The home screen shows one word per procedure from its state file; reading it with
the full models (tui.state) would import pydantic before the first paint. This module
reads only what that word needs, and tolerates a missing or damaged file the way
`StateStore.load` does (state is a cache; checks ask the host).
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    configured = os.environ.get("CLOUDRIG_STATE_DIR")
    if configured:
        return Path(configured)
    from platformdirs import user_state_path

    return user_state_path("cloudrig", appauthor=False)


def state_path(directory: Path, procedure_id: str) -> Path:
    return directory / f"{procedure_id}.json"


def peek_state(directory: Path, procedure_id: str) -> dict[str, object] | None:
    """A procedure's state file as plain JSON, or None (missing or damaged)."""
    try:
        text = state_path(directory, procedure_id).read_text(encoding="utf-8")
    except OSError:
        return None
    import json  # only when there is state to read: a first start paints without it

    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def peek_last_run(directory: Path, procedure_id: str) -> dict[str, object] | None:
    """The `last_run` record of a procedure's state file as plain JSON, or None."""
    data = peek_state(directory, procedure_id)
    run = data.get("last_run") if data else None
    return run if isinstance(run, dict) else None
