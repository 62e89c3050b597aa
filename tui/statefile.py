"""Where state lives and a quick look at it, without pydantic.

The home screen shows one word per procedure from its state file; reading it with
the full models (tui.state) would import pydantic before the first paint. This module
reads only what that word needs, and tolerates a missing or damaged file the way
`StateStore.load` does (state is a cache; checks ask the host).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tui.runlock import alive, clock


def state_dir() -> Path:
    configured = os.environ.get("CLOUDRIG_STATE_DIR")
    if configured:
        return Path(configured)
    from platformdirs import user_state_path  # deferred: start-up (platformdirs)

    return user_state_path("cloudrig", appauthor=False)


def state_path(directory: Path, procedure_id: str) -> Path:
    return directory / f"{procedure_id}.json"



def peek_state(directory: Path, procedure_id: str) -> dict[str, object] | None:
    """A procedure's state file as plain JSON, or None (missing or damaged)."""
    try:
        text = state_path(directory, procedure_id).read_text(encoding="utf-8")
    except OSError:
        return None
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


def run_word(run: dict[str, object] | None) -> str | None:
    """How a `last_run` record reads now: "running" only while its process lives (on
    this host; on another, as recorded); a run still marked running whose process is
    gone (SIGKILL, a reboot) is "interrupted". None without a record."""
    if run is None:
        return None
    outcome = str(run.get("outcome"))
    if outcome != "running":
        return outcome
    return "interrupted" if alive(run.get("pid"), run.get("process_start"),
                                  run.get("host")) is False else "running"


def run_sentence(run: dict[str, object]) -> str:
    """`running (pid N on HOST since HH:MM)`, `interrupted at STEP: …`, `done at HH:MM`."""
    word = run_word(run)
    what = "teardown" if run.get("kind") == "teardown" else "apply"
    if word == "running":
        return (f"{what} running (pid {run.get('pid')} on {run.get('host')} since "
                f"{clock(str(run.get('started')))})")
    step = f" at {run['failed_step']}" if run.get("failed_step") else ""
    message = str(run.get("message") or "").split("\n")[0]
    if word == "interrupted" and run.get("outcome") == "running":
        done = run.get("completed") or []
        after = f" after {done[-1]}" if isinstance(done, list) and done else ""
        return (f"{what} interrupted{after}: its process (pid {run.get('pid')} on "
                f"{run.get('host')}) is gone without recording its end; rerun {what} to "
                "resume")
    if word in ("failed", "interrupted"):
        return f"{what} {word}{step}" + (f": {message}" if message else "")
    return f"{what} {word} at {clock(str(run.get('finished') or run.get('started')))}"
