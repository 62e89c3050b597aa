"""One way to wait for something remote: poll with progress, cancel and a timeout.

Runbooks say "poll until …" and leave the operator staring at a terminal. Every
such wait in CloudRig goes through `poll()`, so each one shows what it waits for
and how long it has been waiting, stops promptly when the operator cancels, and
gives up with a sentence saying the run can be resumed — never an endless loop.
Because procedures find their remote objects again (by name) on the next apply,
a wait that timed out, was cancelled or was killed resumes at the same poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from tui.errors import Interrupted, OperatorError

if TYPE_CHECKING:
    from tui.context import Context

T = TypeVar("T")


class PollTimeout(OperatorError):
    """The remote did not reach the wanted state in time; nothing is lost."""


class PollFailed(OperatorError):
    """The remote reached a state it will not come back from (e.g. a rolled-back stack)."""


def elapsed_text(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`: short enough for an 80-column progress line."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    ctx: Context,
    timeout: float,
    interval: float,
    describe: Callable[[T], str] = str,
    failed: Callable[[T], str | None] = lambda value: None,
    every: float = 15.0,
    hint: str = "",
    left: str = "",
    first: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call `fetch` until `done(value)`; return that value.

    Emits a progress line ("waiting for <what>: <describe(value)> (elapsed 1m05s)")
    on the first poll, whenever the description changes, and at least every `every`
    seconds; and after every poll that is not the last a "poll" event (counted, with
    the elapsed time) that a screen shows on one live line, so a long quiet wait is
    visibly still being polled. `failed(value)` returning a sentence ends the wait at once. The wait
    between polls is `ctx.cancel.wait`, so a cancel (the TUI's stop key) ends it
    within one interval; Ctrl+C in the CLI raises KeyboardInterrupt as usual.
    `hint` is added to the timeout sentence (e.g. which answer sets the timeout);
    `left` says what stays running remotely when the wait stops (cancel or timeout),
    e.g. a job and how to follow it. With `first`, the first wait is that short and
    each next one doubles up to `interval` (remote jobs that often end in a second).
    """
    stopped = f"stopped while waiting for {what}; " + (f"{left}; " if left else "") \
        + "rerun apply to resume"
    start = clock()
    shown: str | None = None
    last_report = start
    polls = 0
    while True:
        if ctx.cancel.is_set():
            raise Interrupted(stopped)
        value = fetch()
        polls += 1
        now = clock()
        said = describe(value)
        if done(value):
            ctx.emit(f"{what}: {said} (after {elapsed_text(now - start)})")
            return value
        problem = failed(value)
        if problem:
            raise PollFailed(f"{what}: {problem}")
        if said != shown or now - last_report >= every:
            ctx.emit(f"waiting for {what}: {said} (elapsed {elapsed_text(now - start)}, "
                     f"up to {elapsed_text(timeout)})")
            shown, last_report = said, now
        ctx.emit(f"waiting for {what}: {said} · poll {polls} · {elapsed_text(now - start)} "
                 f"of up to {elapsed_text(timeout)}", "poll")
        if now - start >= timeout:
            raise PollTimeout(
                f"gave up waiting for {what} after {elapsed_text(now - start)} (last seen: "
                f"{said}); " + (f"{left}; " if left else "")
                + "nothing is lost: rerun apply to resume waiting"
                + (f" ({hint})" if hint else ""))
        pause = interval if first is None else min(interval, first * 2 ** (polls - 1))
        if ctx.cancel.wait(max(0.0, min(pause, timeout - (now - start)))):
            raise Interrupted(stopped)
