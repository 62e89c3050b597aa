"""One runner for host commands: argv only, timeouts, captured output, redaction.

A secret reaches a command only through its standard input or its terminal (a
pseudo-terminal that is its controlling terminal, see `tui.prompts`), never its argv
or environment: children get an environment without any `CLOUDRIG_SECRET_*` variable.
Under `--dry-run` nothing runs; under `--root` the commands that would change this
machine are listed as skipped.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from tui import prompts
from tui.errors import OperatorError
from tui.model import Command
from tui.prompts import Ending
from tui.redact import redact

if TYPE_CHECKING:
    from tui.secrets import SecretLookup

TAIL_LINES = 15


class CommandResult(BaseModel):
    argv: list[str]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    skipped: str | None = None

    def tail(self, lines: int = TAIL_LINES) -> str:
        text = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()
        return "\n".join(text.splitlines()[-lines:])


class CommandFailed(OperatorError):
    def __init__(self, sentence: str, result: CommandResult) -> None:
        super().__init__(sentence)
        self.result = result


def display(argv: list[str]) -> str:
    """The command as an operator would type it (secrets masked).

    Each argument is masked before shell quoting: quoting rewrites a secret that
    holds a quote (`'` becomes `'"'"'`), so masking the joined text would miss it."""
    return shlex.join([redact(arg) for arg in argv])


def child_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDRIG_SECRET")}
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


class CommandRunner:
    def __init__(self, dry_run: bool = False, root: Path | None = None) -> None:
        self.dry_run = dry_run
        self.root = root
        self.history: list[CommandResult] = []

    def skip_reason(self, command: Command) -> str | None:
        if not command.changes_host:
            return None  # read-only queries run even in a dry run
        if self.dry_run:
            return "dry run"
        if self.root is not None:
            return "--root: this command would change this machine"
        return None

    def run(
        self,
        command: Command,
        secrets: SecretLookup | None = None,
        emit: Callable[[str, str], None] | None = None,
    ) -> CommandResult:
        shown = display(command.argv)
        reason = self.skip_reason(command)
        if reason:
            result = CommandResult(argv=command.argv, returncode=None, skipped=reason)
            if emit:
                emit(f"skipped ({reason}): {shown}", "item")
            self.history.append(result)
            return result
        if emit:
            emit(f"$ {shown}", "item")
        if command.on_terminal:
            result = self._run_pty(command, secrets)
        else:
            stdin = secrets.get(command.stdin_secret) + "\n" if (
                command.stdin_secret and secrets) else None
            result = self._run_pipe(command, stdin)
        self.history.append(result)
        if result.returncode not in command.ok_returncodes:
            tail = result.tail()
            detail = f"; last output:\n{tail}" if tail else ""
            raise CommandFailed(
                f"`{shown}` exited with status {result.returncode}{detail}", result)
        return result

    def _run_pipe(self, command: Command, stdin: str | None) -> CommandResult:
        """Run with pipes, in a session of its own: on timeout the whole process group
        is killed (a daemon the command started, or a helper that ignores SIGTERM, must
        not outlive it holding the pipes open)."""
        try:
            proc = subprocess.Popen(
                command.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, env=child_environment(),
                start_new_session=True)
        except FileNotFoundError:
            raise OperatorError(
                f"`{command.argv[0]}` is not installed on this host (needed for: "
                f"{command.description or display(command.argv)})") from None
        try:
            stdout, stderr = proc.communicate(stdin if stdin is not None else "",
                                              timeout=command.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()  # reaped, its pipes closed
            raise OperatorError(
                f"`{display(command.argv)}` did not finish within {command.timeout:.0f} s "
                "(it and every process it started were stopped); check that the service "
                "it talks to answers") from None
        except BaseException:  # Ctrl+C a second time, a stop: never leave it running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        return CommandResult(argv=command.argv, returncode=proc.returncode,
                             stdout=redact(stdout), stderr=redact(stderr))

    def _run_pty(self, command: Command, secrets: SecretLookup | None) -> CommandResult:
        """Run on a pseudo-terminal that is the child's controlling terminal, answering
        its prompts (the rules are in `tui.prompts`)."""

        def secret_of(name: str) -> str:
            if secrets is None:
                raise OperatorError(f"no secret source to answer {name}")
            return secrets.get(name)

        outcome = prompts.run(command, child_environment(), secret_of)
        result = CommandResult(argv=command.argv, returncode=outcome.returncode,
                               stdout=redact(outcome.output))
        shown = display(command.argv)
        stopped = "it and every process it started were stopped"
        if outcome.ending is Ending.TIMEOUT:
            waiting = prompts.shown_prompt(result.stdout)
            at = f' (its last output: "{waiting}")' if waiting else ""
            raise CommandFailed(
                f"`{shown}` did not finish within {command.timeout:.0f} s{at}; {stopped}; "
                "check that what it talks to answers", result)
        if outcome.ending is Ending.UNKNOWN_PROMPT:
            asked = redact(outcome.prompt)
            if outcome.again:
                raise CommandFailed(
                    f'`{shown}` asked "{asked}" again after CloudRig answered it: the answer '
                    f"was not accepted; {stopped}", result)
            raise CommandFailed(
                f'`{shown}` asked "{asked}", a prompt CloudRig has no answer for; {stopped} '
                "at once. Run it by hand to see what it needs", result)
        if outcome.ending is Ending.ECHOING:
            raise CommandFailed(
                f"`{shown}` waits for input on a terminal that echoes, so CloudRig did not "
                f"type the secret {command.pty_secret_input} (it would be shown); {stopped}",
                result)
        return result
