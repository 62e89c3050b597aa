"""Reading an openrc file without executing it.

An openrc file is a shell script (Horizon's even runs `read -sr OS_PASSWORD_INPUT`):
sourcing it would prompt, and running operator-supplied shell is not CloudRig's to
do. Only `export NAME=value` lines are read, the value unquoted as the shell would
(single quotes literal, double quotes with backslash escapes); `if`, `unset`, `read`,
`echo` and any `$VAR` expansion are ignored (a value that expands a variable is
skipped rather than guessed).
"""

from __future__ import annotations

import re
import shlex

_EXPORT = re.compile(r"^\s*export\s+(OS_[A-Z0-9_]+)=(.*)$")

# openrc variable → answer field it prefills
PREFILL = {
    "OS_AUTH_URL": "auth_url",
    "OS_REGION_NAME": "region_name",
    "OS_PROJECT_NAME": "os_admin_project",
    "OS_USER_DOMAIN_NAME": "os_user_domain",
    "OS_PROJECT_DOMAIN_NAME": "os_project_domain",
    "OS_PROJECT_DOMAIN_ID": "os_project_domain_id",
    "OS_USERNAME": "os_admin_user",
}


def parse_openrc(text: str) -> dict[str, str]:
    """`OS_*` values from `export` lines, as the shell would assign them."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _EXPORT.match(line)
        if not match:
            continue
        name, raw = match.groups()
        try:
            words = shlex.split(raw, comments=True, posix=True)
        except ValueError:
            continue  # unbalanced quotes: not a plain assignment
        if len(words) != 1:
            continue
        if "$" in raw.split("'")[0] and not raw.strip().startswith("'"):
            continue  # `export OS_PASSWORD=$OS_PASSWORD_INPUT`: an expansion, not a value
        found[name] = words[0]
    return found


def prefill(text: str) -> dict[str, str]:
    """Answer values an openrc file gives, by answer field name."""
    values = parse_openrc(text)
    return {field: values[var] for var, field in PREFILL.items() if values.get(var)}
