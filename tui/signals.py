"""SIGINT, SIGTERM and SIGHUP stop a run at its next safe point, never in the middle.

A safe point is between plan items and between steps (`Context.checkpoint`): what
is under way (an HTTP call, a command, an atomic write) finishes, the run records
`interrupted` with its step, and the CLI exits 130; a rerun resumes. A second
Ctrl+C stops at once (KeyboardInterrupt), for an operator who will not wait.

The Python-level handler only stores the signal's name on the run (RunShared) (a plain
assignment: safe at any bytecode); it runs in the main thread before the interrupted
call returns, so the next safe point always sees it. Waits (`poll`, job waits) sleep
on `ctx.cancel`, an Event, which a handler must not set (its lock may be held by the
very code the signal interrupted): the C-level handler writes the signal's number to
a wakeup pipe (`signal.set_wakeup_fd`) and a watcher thread sets the Event.

Handlers can only be installed from the main thread; a run in another thread (a
test, a TUI worker) keeps the cancel Event as its only way to stop. A signal that
whoever started the run ignores stays ignored (`nohup` ignores SIGHUP); a detached
run ignores SIGHUP: it has no terminal to lose.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.runshared import RunShared

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

REASONS = {
    "SIGINT": "SIGINT (Ctrl+C or `cloudrig cancel`)",
    "SIGTERM": "SIGTERM",
    "SIGHUP": "SIGHUP (the terminal went away)",
}


def reason(signum: int) -> str:
    name = signal.Signals(signum).name
    return REASONS.get(name, name)


@contextlib.contextmanager
def stop_on_signals(run: RunShared, detached: bool = False) -> Iterator[None]:
    """For the body: the three stopping signals ask RUN to stop at a safe point."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)

    seen: list[int] = []  # the signals this handler ran for (the watcher may be first)

    def handler(signum: int, frame: object) -> None:
        if signal.SIGINT in seen and signum == signal.SIGINT and not detached:
            raise KeyboardInterrupt  # the second Ctrl+C: the operator will not wait
        first = not seen
        seen.append(signum)
        if run.stop_reason is None:
            run.stop_reason = reason(signum)
        if first and not detached:  # os.write: no lock a print could be holding
            with contextlib.suppress(OSError):
                again = "; Ctrl+C again stops at once" if signum == signal.SIGINT else ""
                os.write(sys.stderr.fileno(), (
                    f"cloudrig: interrupted ({signal.Signals(signum).name}): stopping at the "
                    f"next safe point (state is saved; a rerun resumes){again}\n").encode())

    def watch() -> None:
        while True:
            try:
                data = os.read(read_end, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in STOPPING and not (detached and signum == signal.SIGHUP):
                    if run.stop_reason is None:
                        run.stop_reason = reason(signum)
                    run.cancel.set()

    previous = {sig: signal.getsignal(sig) for sig in STOPPING}
    watcher = threading.Thread(target=watch, name="cloudrig-signals", daemon=True)
    old_wakeup = -1
    try:
        for sig, handling in previous.items():
            # A signal ignored by whoever started us stays ignored (`nohup` for SIGHUP).
            if handling is not signal.SIG_IGN:
                signal.signal(sig, handler)
        if detached:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        old_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        watcher.start()
        yield
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handling in previous.items():
            signal.signal(sig, handling if handling is not None else signal.SIG_DFL)
        os.close(write_end)  # the watcher reads EOF and ends
        if watcher.is_alive():
            watcher.join()
        os.close(read_end)
