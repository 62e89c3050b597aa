"""Shared set-up for the TUI tests: a private state dir, a steady cursor, fixed colours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.consul import FakeConsul
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input, TextArea

from tui import redact
from tui.procedures.carbonio import CarbonioAnswers
from tui.registry import get_procedure

FINAL_PATHS = (
    "/etc/carbonio/gateway/service-discover/policies.json",
    "/etc/carbonio/gateway/service-discover/carbonio-files-db-external.json",
    "/etc/carbonio/gateway/service-discover/gateway-config.hcl",
    "/lib/systemd/system/carbonio-gateway.service",
)


async def carbonio_on(app: App, pilot: Pilot, kind: type[Screen],
                      chosen: CarbonioAnswers) -> Screen:
    """Carbonio's KIND screen (ProgressScreen: an apply, PreviewScreen: its plan) for
    CHOSEN, pushed over APP; then its workers waited for and their output painted.
    Returns that screen (the one pushed, even if it has opened another since)."""
    screen = kind(app.workspace, get_procedure("carbonio"), chosen)
    await app.push_screen(screen)
    await app.workers.wait_for_complete()
    await pilot.pause()
    return screen


# Not reached: create_database is off, so CloudRig never connects to the database.
def answers(consul_url: str = "http://127.0.0.1:8500") -> CarbonioAnswers:
    return CarbonioAnswers(consul_url=consul_url, external_address="db.example.com",
                           db_name="files", db_username="filesuser")


DB_PASSWORD = "db-Pa55-in-memory"


def start_consul(monkeypatch: pytest.MonkeyPatch, port: int = 0) -> FakeConsul:
    """A fake Consul, with carbonio's two secrets in the environment as automation gives
    them (the TUI reads CLOUDRIG_SECRET_* first, like the CLI)."""
    fake = FakeConsul().start(port)
    monkeypatch.setenv("CLOUDRIG_SECRET_CONSUL_TOKEN", fake.management_token)
    monkeypatch.setenv("CLOUDRIG_SECRET_DB_PASSWORD", DB_PASSWORD)
    return fake


@pytest.fixture
def consul(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeConsul]:
    fake = start_consul(monkeypatch)
    yield fake
    fake.stop()


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CLOUDRIG_STATE_DIR in a temp dir, a truecolor terminal, no NO_COLOR, no blink,
    no secrets from the environment or the keyring."""
    directory = tmp_path / "state"
    monkeypatch.setenv("CLOUDRIG_STATE_DIR", str(directory))
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.delenv("CLOUDRIG_ANSI", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    # Never the operator's keyring: the encrypted file store, locked (no passphrase).
    monkeypatch.setenv("CLOUDRIG_SECRETS_BACKEND", "file")
    monkeypatch.delenv("CLOUDRIG_SECRETS_PASSPHRASE", raising=False)
    for name in ("CONSUL_TOKEN", "DB_PASSWORD", "DB_ADMIN_PASSWORD"):
        monkeypatch.delenv(f"CLOUDRIG_SECRET_{name}", raising=False)
    # A blinking cursor makes screenshots depend on timing (harlequin does the same).
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None)
    yield directory
    redact.forget_all()


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


async def dashboard_rows(app: App, pilot: Pilot) -> dict[str, str]:
    """Press d on a finished run and read the dashboard once its checks have run:
    each step's title and its word."""
    from screens.dashboard import DashboardScreen

    await pilot.press("d")
    assert isinstance(app.screen, DashboardScreen)
    await app.workers.wait_for_complete()
    await pilot.pause()
    table = app.screen.query_one("#checks", DataTable)
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1])
            for i in range(table.row_count)}


async def press(pilot: Pilot, *keys: str) -> None:
    """`pilot.press`, with each run of two or more single characters (typed text) sent
    as one burst, the way a paste or a fast typist reaches the app over SSH, and the
    app let settle once after it. `pilot.press` settles (waits for an idle CPU) after
    every key, which costs 50-500 ms a key and was most of the TUI tests' time.

    The keys are the same `events.Key` messages, through the same driver, in the same
    order: the focused widget takes each in turn. Named keys (enter, tab, ctrl+n…) and
    lone characters (bindings such as `a` or `d`) still go one at a time with
    `pilot.press`, since they may move focus or change screens, and the next key must
    reach the widget they lead to. Use it for text typed into a field only."""
    run: list[str] = []
    for key in (*keys, ""):
        if len(key) == 1:
            run.append(key)
            continue
        if len(run) == 1:
            await pilot.press(run[0])
        elif run:
            await _burst(pilot, run)
        run = []
        if key:
            await pilot.press(key)


async def _burst(pilot: Pilot, chars: list[str]) -> None:
    """Send the characters' key events as App._press_keys builds them, then settle as
    pilot.press does after its last key, and until no message is left anywhere."""
    import unicodedata

    from textual import events
    from textual._wait import wait_for_idle
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    app = pilot.app
    driver = app._driver
    assert driver is not None
    for key in chars:
        if not key.isalnum():
            key = _character_to_key(key)
        original = REPLACED_KEYS.get(key, key)
        try:
            char: str | None = unicodedata.lookup(_get_unicode_name_from_key(original))
        except KeyError:
            char = key if len(key) == 1 else None
        event = events.Key(key, char)
        event.set_sender(app)
        driver.send_message(event)
    await wait_for_idle(0)  # sleeps at least once: the events reach the app's queue
    await app._animator.wait_until_complete()
    # Not only an idle CPU (which gives up after 1 s): every pump has taken every
    # message, the keys and what they set off (Changed, bubbling up to the screen).
    while True:
        await pilot._wait_for_screen()
        if all(pump._message_queue.empty()
               for pump in (app, *app.screen.walk_children(with_self=True))):
            break
    await wait_for_idle(0)
