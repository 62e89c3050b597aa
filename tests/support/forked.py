"""Run a check in a forked child, as tui/detach.py's detached runs are."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable


def in_a_forked_child(check: Callable[[], bool], seconds: int = 30) -> bool:
    """CHECK's answer, run in a child forked from this process (which has this
    process's memory but none of its threads); False if it fails or runs past
    SECONDS (an alarm ends it then)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: it answers one byte, or the alarm ends it
        try:
            signal.alarm(seconds)
            os.write(write, b"1" if check() else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    return answer == b"1"
