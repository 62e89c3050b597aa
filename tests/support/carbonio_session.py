"""A real carbonio engine session for the command-runner tests (tests/unit/test_commands.py,
tests/reliability/test_prompts_tty.py): its events kept in a list and in the state
dir's log, its secrets from the SecretSource a test gives."""

from __future__ import annotations

from pathlib import Path

from tui.engine import Session
from tui.model import Event
from tui.procedures.carbonio import PROCEDURE, CarbonioAnswers
from tui.secrets import SecretSource
from tui.state import StateStore


def carbonio_session(state: Path, secrets: SecretSource) -> tuple[Session, list[Event]]:
    """A session for carbonio with minimal answers, its state under STATE."""
    events: list[Event] = []
    answers = CarbonioAnswers(external_address="db.example.com", db_name="d", db_username="u")
    session = Session(procedure=PROCEDURE, answers=answers, secrets=secrets,
                      store=StateStore(state), on_event=events.append)
    return session, events
