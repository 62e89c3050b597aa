"""Shared fixtures: a CLI runner that never touches the real user's state, and answers files.

Every CLI run is a subprocess (`python -m tui`, the same entry point as `cloudrig`)
with stdin from /dev/null (no TTY), HOME and CLOUDRIG_STATE_DIR in a temp dir, no
colour, and the encrypted-file secret store forced (never the real user's keyring).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tui import redact

REPO = Path(__file__).resolve().parent.parent

# The four carbonio files with the default answers, by their final (host) paths.
CARBONIO_FILES = (
    "/etc/carbonio/gateway/service-discover/policies.json",
    "/etc/carbonio/gateway/service-discover/carbonio-files-db-external.json",
    "/etc/carbonio/gateway/service-discover/gateway-config.hcl",
    "/lib/systemd/system/carbonio-gateway.service",
)

VALID_CARBONIO = {
    "external_address": "db.example.com",
    "db_name": "carbonio-files-adm",
    "db_username": "carbonio-files-adm",
}


def write_answers(path: Path, **overrides: Any) -> Path:
    """A carbonio answers file: the required answers plus `overrides` (None removes a key)."""
    data = dict(VALID_CARBONIO)
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def files_under(directory: Path) -> list[Path]:
    """Every regular file below `directory` (none if it does not exist)."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file())


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Cli:
    """Runs `cloudrig ARGS` in a subprocess with a private HOME and state dir."""

    home: Path
    state: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    runs: list[Result] = field(default_factory=list)

    def __call__(self, *args: str | Path, input: str | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 timeout: float = 120) -> Result:
        argv = [sys.executable, "-m", "tui", *map(str, args)]
        full_env = {**self.env, **(env or {})}
        proc = subprocess.run(
            argv, cwd=cwd or self.cwd, env=full_env, capture_output=True, text=True,
            timeout=timeout,
            **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}),
        )
        result = Result(tuple(map(str, args)), proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(result)
        return result


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


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home, state, work = tmp_path / "home", tmp_path / "state", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    return Cli(home=home, state=state, cwd=work, env=base_env(home, state))


@pytest.fixture
def answers_file(tmp_path: Path) -> Path:
    """A valid carbonio answers file (the required answers, defaults for the rest)."""
    return write_answers(tmp_path / "answers.yaml")


@pytest.fixture
def clean_redact() -> Callable[[], None]:
    """Forget registered secret values before and after the test (module-global state)."""
    redact.forget_all()
    yield redact.forget_all
    redact.forget_all()
