"""What tests across layers share about running `cloudrig` and carbonio's answers.

`Cli` runs `cloudrig ARGS` in the test's process (tests/support/in_process.py) or, for
a test about the process itself, through the real entry point (`python -m tui`), with
stdin from /dev/null (no TTY), HOME and CLOUDRIG_STATE_DIR in a temp dir, no colour,
and the encrypted-file secret store forced (never the real user's keyring). The
carbonio answers, files and statuses that many tests check are here too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from in_process import needs_a_process, run_in_process
from private_cli import base_env

__all__ = ["base_env"]

REPO = Path(__file__).resolve().parents[2]  # tests/support/cli_rig.py → the checkout

# The four carbonio files `render` writes with the default answers, by final (host) path.
CARBONIO_FILES = (
    "/etc/carbonio/gateway/service-discover/policies.json",
    "/etc/carbonio/gateway/service-discover/carbonio-files-db-external.json",
    "/etc/carbonio/gateway/service-discover/gateway-config.hcl",
    "/lib/systemd/system/carbonio-gateway.service",
)
# ... and the two that hold secrets, which only `apply` writes (mode 0600): the gateway
# token, and the SQL for the database node when the database is not reachable from here.
CARBONIO_SECRET_FILES = (
    "/etc/carbonio/gateway/service-discover/token",
    "/etc/carbonio/gateway/service-discover/create-database.sql",
)
# Steps that stay with the operator after `apply --root`: the database (not reachable in
# the tests) and `pending-setups`; and those staged (their host commands — useradd,
# chown, systemctl — not run in a staged tree).
CARBONIO_MANUAL = frozenset({"database", "pending-setups"})
CARBONIO_STAGED = frozenset({"user", "gateway-token", "unit"})


def after_root_apply(step: str) -> str:
    """The status a carbonio step's check reports after `apply --root`."""
    if step in CARBONIO_STAGED:
        return "staged"
    return "manual" if step in CARBONIO_MANUAL else "done"


def statuses(status_json: str) -> dict[str, str]:
    """step id → status from `cloudrig status --json`."""
    return {s["step"]: s["status"] for s in json.loads(status_json)["steps"]}


def settled(status_json: str) -> bool:
    """Every carbonio step done, except the ones left to the operator under --root."""
    return all(v == after_root_apply(k) for k, v in statuses(status_json).items())

DB_PASSWORD = "db pa'ss \"w0rd\""

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


def artifacts_dir(kind: str) -> Path:
    """Where tests keep what they saw (screenshots, captured screens) for a person to
    look at: $CLOUDRIG_ARTIFACTS/KIND, else <repo>/artifacts/KIND."""
    directory = Path(os.environ.get("CLOUDRIG_ARTIFACTS") or REPO / "artifacts") / kind
    directory.mkdir(parents=True, exist_ok=True)
    return directory


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
    """Runs `cloudrig ARGS` with a private HOME and state dir: in this process
    (tests/support/in_process.py) unless PROCESS is set or the command needs one (the
    TUI, `serve`, `--detach`), then in a subprocess through the real entry point."""

    home: Path
    state: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    runs: list[Result] = field(default_factory=list)
    process: bool = False

    def __call__(self, *args: str | Path, input: str | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 timeout: float = 120) -> Result:
        full_env = {**self.env, **(env or {})}
        argv = [str(a) for a in args]
        if not self.process and needs_a_process(argv) is None:
            done = run_in_process(full_env, argv, input=input, cwd=cwd or self.cwd)
        else:
            done = subprocess.run(
                [sys.executable, "-m", "tui", *argv], cwd=cwd or self.cwd, env=full_env,
                capture_output=True, text=True, timeout=timeout,
                **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}),
            )
        result = Result(tuple(argv), done.returncode, done.stdout, done.stderr)
        self.runs.append(result)
        return result


def private_cli(tmp_path: Path, consul: Any, *, process: bool = False) -> Cli:
    """The CLI with carbonio's two secrets in the environment (as automation passes
    them), HOME, state and working directory under TMP_PATH."""
    home, state, work = tmp_path / "home", tmp_path / "state", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = base_env(home, state)
    env.update(CLOUDRIG_SECRET_CONSUL_TOKEN=consul.management_token,
               CLOUDRIG_SECRET_DB_PASSWORD=DB_PASSWORD)
    return Cli(home=home, state=state, cwd=work, env=env, process=process)


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (the carbonio database then is a manual step)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
