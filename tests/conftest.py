"""Suite-wide: signal dispositions, fixtures several layers use, strict skips.

The suite is in layers (tests/unit, procedures, tui, reliability), each with its own
conftest.py for what only that layer needs; tests/support holds the fakes, rigs and
helpers (on sys.path through `pythonpath` in pyproject.toml).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_rig import Cli, closed_port, private_cli, write_answers
from fakes.consul import FakeConsul

from tui import redact

# CloudRig keeps a stopping signal ignored when whoever started it ignores it (`nohup`
# for SIGHUP; a shell starts a background job with SIGINT ignored), and an ignored
# signal is inherited by every child. The tests that stop a run with a signal must
# not depend on how the suite itself was launched: its children start with the
# default dispositions.
for _signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_signal) is signal.SIG_IGN:
        signal.signal(_signal, signal.default_int_handler if _signal == signal.SIGINT
                      else signal.SIG_DFL)


@pytest.fixture
def consul() -> Iterator[FakeConsul]:
    """A fresh fake Consul per test: carbonio's policy, tokens and catalog live there."""
    fake = FakeConsul().start()
    yield fake
    fake.stop()


@pytest.fixture
def cli(tmp_path: Path, consul: FakeConsul) -> Cli:
    """The CLI, in this process, with carbonio's two secrets in the environment (as
    automation passes them). tests/reliability runs it as a process instead."""
    return private_cli(tmp_path, consul)


@pytest.fixture
def answers_file(tmp_path: Path, consul: FakeConsul) -> Path:
    """A valid carbonio answers file against the fake Consul (defaults for the rest)."""
    return write_answers(tmp_path / "answers.yaml", consul_url=consul.url,
                         external_port=closed_port())


@pytest.fixture
def clean_redact() -> Callable[[], None]:
    """Forget registered secret values before and after the test (module-global state)."""
    redact.forget_all()
    yield redact.forget_all
    redact.forget_all()


# Under scripts/test.sh (CI) every tool the tests use is installed, so a test that
# skips because something is missing is a broken set-up: it fails instead of hiding.
STRICT_SKIPS = bool(os.environ.get("CLOUDRIG_TESTING_INSTALLED"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if STRICT_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"skipped under scripts/test.sh, where every tool must be "
                           f"installed: {reason}")
