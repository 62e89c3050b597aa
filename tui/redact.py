"""Redaction of known secret values from every text CloudRig shows or logs.

Each secret value CloudRig resolves is registered here once; logs, command echoes,
previews and error sentences pass through `redact()` before anyone sees them.
The common encodings of a value (JSON-escaped, URL-encoded, base64) are masked too,
because that is how a secret leaks through a request body or a URL.
"""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import quote

MASK = "••••••"
_lock = threading.Lock()
_values: set[str] = set()


def _forms(value: str) -> set[str]:
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value)}
    raw = value.encode()
    forms.add(base64.b64encode(raw).decode())
    return {f for f in forms if len(f) >= 4}


def register(value: str) -> None:
    """Remember a secret value so it is masked wherever it would be shown."""
    if not value or len(value) < 4:
        # Too short to mask without mangling ordinary text; such secrets are
        # refused by validation anyway.
        return
    with _lock:
        _values.update(_forms(value))


def redact(text: str) -> str:
    """Return `text` with every registered secret (and its encodings) masked."""
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def forget_all() -> None:
    """Drop every registered value (tests, or a fresh session in one process)."""
    with _lock:
        _values.clear()
