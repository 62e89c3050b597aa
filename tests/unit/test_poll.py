"""The one waiting helper: progress with elapsed time, timeout, cancel, terminal states."""

from __future__ import annotations

import threading
from itertools import count

import pytest

from tui.context import Context
from tui.errors import Interrupted
from tui.model import Event
from tui.poll import PollFailed, PollTimeout, elapsed_text, poll


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _ctx(events: list[Event]) -> Context:
    return Context(procedure=None, answers=None, secrets=None, runner=None,  # type: ignore[arg-type]
                   on_event=events.append, step_id="wait")


def test_progress_lines_carry_the_elapsed_time():
    events: list[Event] = []
    clock = FakeClock()
    states = iter(["starting", "starting", "PENDING", "ACTIVE"])

    def fetch() -> str:
        clock.now += 40
        return next(states)

    assert poll(fetch, lambda s: s == "ACTIVE", what="account", ctx=_ctx(events),
                timeout=600, interval=0, every=60, clock=clock) == "ACTIVE"
    assert [e.message for e in events if e.kind != "poll"] == [
        "waiting for account: starting (elapsed 40s, up to 10m00s)",
        "waiting for account: PENDING (elapsed 2m00s, up to 10m00s)",
        "account: ACTIVE (after 2m40s)",
    ]
    # Every poll but the last one (which ends the wait) is a "poll" event, for a live line.
    assert [e.message for e in events if e.kind == "poll"] == [
        "waiting for account: starting · poll 1 · 40s of up to 10m00s",
        "waiting for account: starting · poll 2 · 1m20s of up to 10m00s",
        "waiting for account: PENDING · poll 3 · 2m00s of up to 10m00s",
    ]
    assert all(e.step == "wait" for e in events)


def test_timeout_says_the_run_can_be_resumed():
    clock = FakeClock()
    ticks = count()

    def fetch() -> str:
        clock.now = next(ticks) * 30.0
        return "PENDING"

    with pytest.raises(PollTimeout) as caught:
        poll(fetch, lambda s: False, what="stack", ctx=_ctx([]), timeout=90, interval=0,
             clock=clock, hint="poll_timeout sets it")
    assert caught.value.sentence == (
        "gave up waiting for stack after 1m30s (last seen: PENDING); nothing is lost: rerun "
        "apply to resume waiting (poll_timeout sets it)")


def test_a_terminal_state_ends_the_wait_at_once():
    with pytest.raises(PollFailed, match="stack: ROLLBACK_COMPLETE"):
        poll(lambda: "ROLLBACK_COMPLETE", lambda s: False, what="stack", ctx=_ctx([]),
             timeout=60, interval=0.01, failed=lambda s: s if "ROLLBACK" in s else None)


def test_cancel_stops_a_wait_within_one_interval():
    ctx = _ctx([])
    threading.Timer(0.1, ctx.cancel.set).start()
    with pytest.raises(Interrupted, match="rerun apply to resume"):
        poll(lambda: "PENDING", lambda s: False, what="account", ctx=ctx, timeout=60,
             interval=0.05)


class RecordedWaits:
    """Stands in for ctx.cancel: records each wait between polls instead of sleeping."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.waits: list[float] = []
        self.cancel_after = cancel_after

    def is_set(self) -> bool:
        return False

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.cancel_after is not None and len(self.waits) >= self.cancel_after


def test_first_waits_double_up_to_the_interval():
    """`first`: jobs that usually end in a second are polled soon, then less often."""
    ctx = _ctx([])
    ctx.cancel = RecordedWaits()  # type: ignore[assignment]
    states = iter([0, 0, 0, 0, 0, 0, 1])
    poll(lambda: next(states), lambda s: s == 1, what="job", ctx=ctx, timeout=600,
         interval=2.0, first=0.25, clock=FakeClock())
    assert ctx.cancel.waits == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]  # type: ignore[attr-defined]


def test_left_names_what_stays_running_on_a_cancel_and_a_timeout():
    ctx = _ctx([])
    ctx.cancel = RecordedWaits(cancel_after=1)  # type: ignore[assignment]
    left = "job 42 is still running: follow it with queryAsyncJobResult jobid=42"
    with pytest.raises(Interrupted) as stopped:
        poll(lambda: 0, lambda s: False, what="job 42", ctx=ctx, timeout=600, interval=1,
             left=left, clock=FakeClock())
    assert str(stopped.value) == f"stopped while waiting for job 42; {left}; rerun apply to resume"
    clock = FakeClock()

    def fetch() -> int:
        clock.now += 30
        return 0

    with pytest.raises(PollTimeout) as caught:
        poll(fetch, lambda s: False, what="job 42", ctx=_ctx([]), timeout=60, interval=0,
             left=left, clock=clock)
    assert f"(last seen: 0); {left}; nothing is lost" in caught.value.sentence


def test_elapsed_text():
    assert [elapsed_text(s) for s in (0, 59, 61, 3599, 3720)] == [
        "0s", "59s", "1m01s", "59m59s", "1h02m"]


def test_the_cli_prints_waits_not_each_poll(capsys: pytest.CaptureFixture[str]) -> None:
    """stderr of a long wait may be a log file: one line per change, not per poll."""
    from tui.cli import progress_printer

    progress_printer(Event(step="wait", kind="poll", message="waiting for x: A · poll 7"))
    progress_printer(Event(step="wait", message="waiting for x: B (elapsed 5s, up to 1m00s)"))
    assert capsys.readouterr().err == "[wait] waiting for x: B (elapsed 5s, up to 1m00s)\n"
