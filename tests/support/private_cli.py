"""How test rigs run `cloudrig`, kept in one place.

A private HOME, XDG dirs, state dir and encrypted-file secret store (never the real
user's keyring), no colour, secrets passed as `CLOUDRIG_SECRET_*` the way automation
passes them, stdin from /dev/null (no TTY, as in CI). A command runs in the test's
process (tests/support/in_process.py) unless it needs a process of its own; then it is
`python -m tui` with no PYTHONPATH added: the child imports whatever the test process
imports — the installed wheel under scripts/test.sh, a worktree when a developer sets
PYTHONPATH themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from in_process import needs_a_process, run_in_process

PASSPHRASE = "test pass"


def base_env(home: Path, state: Path) -> dict[str, str]:
    """The parent's environment without any CloudRig or colour settings, made private."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOUDRIG_", "XDG_", "PYTHON_KEYRING")) and k != "NO_COLOR"}
    env.update(
        HOME=str(home),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        CLOUDRIG_STATE_DIR=str(state),
        CLOUDRIG_SECRETS_BACKEND="file",
        NO_COLOR="1",
    )
    return env


def private_env(tmp: Path, secrets: dict[str, str] | None = None,
                **extra: str) -> dict[str, str]:
    """`base_env` under TMP (home/, state/) with a passphrase for the file store,
    SECRETS as `CLOUDRIG_SECRET_<KEY>` and EXTRA variables on top."""
    env = base_env(tmp / "home", tmp / "state")
    env["CLOUDRIG_SECRETS_PASSPHRASE"] = PASSPHRASE
    env.update({f"CLOUDRIG_SECRET_{k.upper()}": v for k, v in (secrets or {}).items()})
    env.update(extra)
    return env


def run_cloudrig(env: dict[str, str], args: tuple[str, ...] | list[str],
                 outputs: list[str] | None = None, timeout: float = 120, *,
                 process: bool = False) -> subprocess.CompletedProcess[str]:
    """`cloudrig ARGS` with ENV as its environment: in this process (`tui.cli.main`,
    tests/support/in_process.py) unless PROCESS or the command needs one (the TUI,
    `serve`, `--detach`), then `python -m tui ARGS`, the `cloudrig` entry point. Its
    stdout+stderr is appended to OUTPUTS so a test can scan everything printed for
    secrets."""
    if not process and needs_a_process([str(a) for a in args]) is None:
        result = run_in_process(env, args)
    else:
        result = subprocess.run([sys.executable, "-m", "tui", *map(str, args)], env=env,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                timeout=timeout)
    if outputs is not None:
        outputs.append(result.stdout + result.stderr)
    return result


@dataclass(kw_only=True)
class ProcedureRig:
    """A temp dir in which one procedure runs through the CLI, as automation runs it:
    answers written to a file, secrets in the environment, everything printed kept
    in OUTPUTS so a test can scan it for secrets. Procedure rigs extend it with
    their fakes."""

    tmp: Path
    answers: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.tmp / "root"

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    def write_answers(self, **changes: object) -> Path:
        self.answers.update(changes)
        path = self.tmp / "answers.yaml"
        path.write_text(json.dumps(self.answers))  # JSON is YAML
        return path

    def env(self) -> dict[str, str]:
        return private_env(self.tmp, self.secrets, **self.extra_env)

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return run_cloudrig(self.env(), args, self.outputs, timeout=timeout)


def secret_forms(secrets: list[str]) -> list[str]:
    """Each secret as it could leak: plain, base64, JSON-escaped, URL-quoted."""
    import base64
    from urllib.parse import quote

    forms = set()
    for secret in secrets:
        forms |= {secret, base64.b64encode(secret.encode()).decode(), json.dumps(secret)[1:-1],
                  quote(secret, safe="")}
    return sorted(forms)


def assert_no_secret(secrets: list[str], outputs: list[str], *directories: Path,
                     holders: tuple[str, ...] = ()) -> int:
    """No secret in any output nor in any file under DIRECTORIES, except files named in
    HOLDERS (e.g. "token": files whose purpose is to hold one, mode 0600, checked to
    be so). Returns how many files were scanned, so a caller can see the scan saw
    something."""
    forms = secret_forms(secrets)
    for output in outputs:
        for form in forms:
            assert form not in output, "a secret is in the output"
    scanned = 0
    for directory in directories:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            if path.name in holders:
                assert path.stat().st_mode & 0o077 == 0, f"{path} holds a secret: not 0600"
                continue
            text = path.read_bytes().decode(errors="replace")
            scanned += 1
            for form in forms:
                assert form not in text, f"a secret is in {path}"
    return scanned
