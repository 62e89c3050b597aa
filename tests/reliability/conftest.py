"""The reliability layer: what only real processes show — signals, SIGKILL at chosen
points, two runs at once, locks between processes, exit statuses, a real terminal.
Its `cli` runs `python -m tui` (the `cloudrig` entry point) in a subprocess for every
command, where the other layers run the CLI in the test's process."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_rig import Cli, private_cli
from fakes.consul import FakeConsul


@pytest.fixture
def cli(tmp_path: Path, consul: FakeConsul) -> Cli:
    """The CLI as a process, with carbonio's two secrets in the environment."""
    return private_cli(tmp_path, consul, process=True)
