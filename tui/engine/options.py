"""How a run goes, fixed when the Session is made: nothing a step does changes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The operator's choices for one session (the CLI's flags, the TUI's settings)."""

    root: Path | None = None
    """--root: files are staged under it and host-changing commands are not run."""
    dry_run: bool = False
    """--dry-run: nothing is written, run or changed remotely (read-only calls are made)."""
    debug: bool = False
    """--debug: an internal error raises with its traceback instead of one sentence."""
    purge: bool = False
    """teardown --purge: also remove what the runbook keeps (tokens, policies, keys)."""
    restore: bool = False
    """teardown --restore: put back each restorable file's backup."""
    detached: bool = False
    """The run has a process of its own (`apply --detach`, the TUI): SIGHUP is ignored."""
