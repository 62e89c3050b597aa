"""Applies that outlive the terminal that started them: `apply --detach` and the TUI.

The terminal's process plans, asks for confirmation and for every secret (and the
store's passphrase) first; then `launch` starts `python -m tui.detach`, which forks
once more and lets its parent exit, so the run is in a session of its own, with no
controlling terminal, ignoring SIGHUP, and a child of no CloudRig front (nobody has
to reap it). The run's order — answers, --root, steps, and the secret values — goes
through an inherited pipe, never argv, the environment or a file; the run's
environment has every `CLOUDRIG_SECRET_*` and the passphrase removed. It reports
through a second pipe once it holds the lock and its journal is started (or the
sentence that stopped it), so `launch` returns the run's pid, or raises.

From then on the run is an ordinary engine run: its events go to the journal
(tui/journal.py) that `cloudrig attach` and the TUI read, and `cancel` sends it
SIGINT, which stops it at the next safe point (tui/signals.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from tui.answers import public_answers, secret_fields, validate
from tui.engine import Session
from tui.errors import OperatorError, UsageError
from tui.redact import redact
from tui.registry import get_procedure
from tui.runlock import running
from tui.secrets import ENV_PREFIX, PASSPHRASE_ENV, SecretSource, known_passphrase, open_store
from tui.state import StateStore

if TYPE_CHECKING:
    from tui.runlock import Holder


class Order(BaseModel):
    """What the detached run does, as it crosses the pipe (secrets included: the pipe is
    the one place they may go)."""

    procedure: str
    answers: dict[str, Any]
    root: str | None = None
    only: list[str] = []
    state_dir: str
    secrets: dict[str, str] = {}
    passphrase: str | None = None
    debug: bool = False


class LaunchFailed(OperatorError):
    """The detached run refused to start (its sentence), with its exit code."""

    def __init__(self, sentence: str, exit_code: int) -> None:
        super().__init__(sentence)
        self.exit_code = exit_code


def order_for(session: Session, only: Sequence[str] = (),
              passphrase: str | None = None) -> Order:
    """Everything the run needs, got here while a terminal (or the TUI) can still ask:
    each secret the steps need (prompted for on a terminal), every other one that can
    be had without asking, and the store's passphrase when it was needed (PASSPHRASE:
    one the TUI asked for itself)."""
    session.resolve_secrets(session.active_steps(only), only=only)
    return Order(procedure=session.procedure.id, answers=public_answers(session.answers),
                 root=str(session.root) if session.root else None, only=list(only),
                 state_dir=str(session.store.directory), secrets=session.secrets.resolved(),
                 passphrase=passphrase or known_passphrase(session.store.directory),
                 debug=session.debug)


def scrubbed_environment() -> dict[str, str]:
    """This environment without a secret: no `CLOUDRIG_SECRET_*`, no passphrase."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(ENV_PREFIX) and k != PASSPHRASE_ENV}


def launch(order: Order) -> int:
    """Start ORDER's run in the background; its pid once it runs, or LaunchFailed with
    the sentence that stopped it (another run holds the lock: exit 1)."""
    order_read, order_write = os.pipe()
    status_read, status_write = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tui.detach", str(order_read), str(status_write)],
            pass_fds=(order_read, status_write), start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=scrubbed_environment())
    except OSError as exc:
        for fd in (order_read, order_write, status_read, status_write):
            os.close(fd)
        raise OperatorError(f"cannot start the background run ({exc.strerror or exc}); "
                            "run apply without --detach") from None
    os.close(order_read)
    os.close(status_write)
    try:
        with os.fdopen(order_write, "wb") as pipe:
            pipe.write(order.model_dump_json().encode())
    except BrokenPipeError:
        pass  # it died before reading: its status pipe says so (empty)
    process.wait()  # the intermediate exits as soon as it has forked the run
    with os.fdopen(status_read, "r", encoding="utf-8") as pipe:
        said = pipe.readline().strip()
    word, _, rest = said.partition(" ")
    if word == "ok":
        return int(rest)
    if word == "error":
        code, _, sentence = rest.partition(" ")
        raise LaunchFailed(sentence, int(code) if code.isdigit() else 1)
    raise OperatorError("the background run ended before it started (see "
                        f"{Path(order.state_dir) / 'cloudrig.log'}); run apply without "
                        "--detach to see why")


def cancel(directory: Path, procedure: str) -> Holder | None:
    """Ask PROCEDURE's live run to stop at its next safe point (SIGINT, as Ctrl+C does);
    the holder signalled, or None when none runs."""
    holder = running(directory, procedure)
    if holder is None:
        return None
    try:
        os.kill(holder.pid, signal.SIGINT)
    except ProcessLookupError:
        return None
    except PermissionError:
        raise OperatorError(f"the {procedure} run (pid {holder.pid}) belongs to another "
                            "user; cancel it as that user") from None
    return holder


# ---------------------------------------------------------------- the run's side


def _run(order: Order, report: Any) -> int:
    directory = Path(order.state_dir)
    procedure = get_procedure(order.procedure)
    answers = validate(procedure.answers_model, order.answers, "answers")
    passphrase = order.passphrase
    secrets = SecretSource(
        procedure.id, secret_fields(procedure.answers_model),
        open_store=lambda: open_store(directory, False, passphrase=passphrase),
        overrides=order.secrets, interactive=False)
    session = Session(procedure=procedure, answers=answers, secrets=secrets,
                      store=StateStore(directory), root=Path(order.root) if order.root else None,
                      debug=order.debug, detached=True,
                      on_started=lambda: report(f"ok {os.getpid()}"))
    return session.apply(order.only).exit_code


def main(argv: list[str]) -> int:
    """`python -m tui.detach ORDER_FD STATUS_FD`: read the order, fork the run, exit."""
    order_fd, status_fd = int(argv[0]), int(argv[1])
    with os.fdopen(order_fd, "rb") as pipe:
        raw = pipe.read()
    # No terminal to lose; and `cloudrig cancel` (SIGINT) and SIGTERM must reach the
    # run even when the front that started it ignored them (a background job).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if os.fork():
        os._exit(0)  # the run is now nobody's child, in this new session
    reported: list[str] = []

    def report(line: str) -> None:
        """Tell the launching process how the start went, once; it may be gone (its
        terminal dropped): the run goes on regardless."""
        if reported:
            return
        reported.append(line)
        with contextlib.suppress(OSError):
            os.write(status_fd, (line + "\n").encode())
        with contextlib.suppress(OSError):
            os.close(status_fd)

    order = None
    try:
        order = Order.model_validate_json(raw)
        del raw
        os.environ["CLOUDRIG_STATE_DIR"] = order.state_dir
        return _run(order, report)
    except OperatorError as exc:
        report(f"error {exc.exit_code} {redact(exc.sentence)}")
        return exc.exit_code
    except BaseException as exc:  # nobody sees this process's stderr: log it
        if order is not None:
            StateStore(Path(order.state_dir)).log(redact(traceback.format_exc()))
        report(f"error 1 the background run failed ({type(exc).__name__}: "
               f"{redact(str(exc))}); run apply without --detach to see why")
        return 1
    finally:
        report("error 1 the background run ended before it started")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(UsageError("tui.detach is started by `cloudrig apply --detach`").sentence)
    sys.exit(main(sys.argv[1:]))
