"""Wizard drafts: answers typed but not yet applied, kept per procedure for next time.

An operator who leaves a wizard half-filled (Escape on its first page, ctrl+q, a
dropped link that ends the app cleanly) gets the answers back the next time they open
it. Only answers: secrets are never written here (the wizard keeps them in memory), so
a draft file holds nothing that an answers file could not. Kept as JSON under the state
directory's `drafts/` (0700), each file 0600, written atomically and never through a
symlink; a draft is dropped once its answers are applied (they are in state then).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from tui.atomic import atomic_write


class Draft(NamedTuple):
    values: dict[str, Any]
    saved: datetime


def draft_path(directory: Path, procedure_id: str) -> Path:
    return directory / "drafts" / f"{procedure_id}.json"


def _safe_dir(path: Path) -> bool:
    """A real directory of ours (not a symlink planted where drafts go)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def save_draft(directory: Path, procedure_id: str, values: dict[str, Any]) -> Path:
    """Keep VALUES (answers only, never secrets) as PROCEDURE_ID's draft."""
    path = draft_path(directory, procedure_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.parent.exists() and not path.parent.is_symlink():
        path.parent.mkdir(mode=0o700)
    if not _safe_dir(path.parent):
        raise OSError(f"{path.parent} is not a directory of this user; not writing a draft")
    os.chmod(path.parent, 0o700)  # whatever the umask made of it
    body = {"saved": datetime.now(UTC).isoformat(), "values": values}
    atomic_write(path, json.dumps(body, indent=2, default=str).encode(), 0o600)
    return path


def load_draft(directory: Path, procedure_id: str) -> Draft | None:
    """The kept draft, or None (none, unreadable, or not a plain file of ours)."""
    path = draft_path(directory, procedure_id)
    if not _safe_dir(path.parent):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd, encoding="utf-8") as handle:
            body = json.load(handle)
        values, saved = body["values"], datetime.fromisoformat(body["saved"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(values, dict) or not values:
        return None
    return Draft(values, saved)


def drop_draft(directory: Path, procedure_id: str) -> None:
    path = draft_path(directory, procedure_id)
    if _safe_dir(path.parent):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
