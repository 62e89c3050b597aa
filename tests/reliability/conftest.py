"""The reliability layer: a hostile host — faults, kills, races, links, modes, secrets.

`cli` is the suite's in-process CLI (tests/conftest.py): a fault from a fake server, a
planted link, a garbled secret store or a generated answers file needs no process of
its own. What only a real process shows keeps one, and says so where it starts it:
- a signal or SIGKILL at a chosen point, and what the next run reads of the dead one
  (test_runs.py, test_killed_apply.py, test_detach.py's kill);
- two runs at once: the held first apply is a process (and, in one test, the second
  too), the lock is between processes (test_runs.py);
- `apply --detach`, `attach` following a run from another terminal, a tmux pane that
  dies (test_detach.py);
- the umask a process starts with (test_modes.py);
- a terminal: the pty a command is given, a process group to kill (test_prompts_tty.py);
- a host fault patched into the process from outside (tests/support/faulty_cloudrig.py,
  forked from a fork server: test_host_errors.py, test_killed_apply.py).
`process_cli` is the CLI through the real entry point (`python -m tui`) for a test
whose every command must be a process (two runs at once, test_runs.py); `--detach`
and the TUI go to a process by themselves (tests/support/in_process.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_rig import Cli, private_cli
from fakes.consul import FakeConsul


@pytest.fixture
def process_cli(tmp_path: Path, consul: FakeConsul) -> Cli:
    """The CLI as a process (`python -m tui`), with carbonio's two secrets in the
    environment, for a test that signals, kills or races it."""
    return private_cli(tmp_path, consul, process=True)
