"""One runner for host commands: argv only, timeouts, captured output, redaction.

A secret reaches a command only through its standard input or a prompt on a
pseudo-terminal, never its argv or environment: children get an environment
without any `CLOUDRIG_SECRET_*` variable. Under `--dry-run` nothing runs; under
`--root` the commands that would change this machine are listed as skipped.
"""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from tui.errors import OperatorError
from tui.procedure import Command
from tui.redact import redact

if TYPE_CHECKING:
    from tui.secrets import SecretSource

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
        secrets: SecretSource | None = None,
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
        if command.pty_answers or command.pty_replies:
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
        try:
            proc = subprocess.run(
                command.argv,
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                timeout=command.timeout,
                env=child_environment(),
                check=False,
            )
        except FileNotFoundError:
            raise OperatorError(
                f"`{command.argv[0]}` is not installed on this host (needed for: "
                f"{command.description or display(command.argv)})") from None
        except subprocess.TimeoutExpired:
            raise OperatorError(
                f"`{display(command.argv)}` did not finish within {command.timeout:.0f} s; "
                "check that the service it talks to answers") from None
        return CommandResult(argv=command.argv, returncode=proc.returncode,
                             stdout=redact(proc.stdout), stderr=redact(proc.stderr))

    def _run_pty(self, command: Command, secrets: SecretSource | None) -> CommandResult:
        """Run with a pseudo-terminal so getpass-style prompts can be answered."""
        import pty

        # Each prompt is answered once, by whichever pending pattern it matches:
        # a secret (by name, from the secret source) or a literal public reply.
        answers: list[tuple[re.Pattern[str], str | None, str | None]] = [
            (re.compile(p), name, None) for p, name in command.pty_answers]
        answers += [(re.compile(p), None, text) for p, text in command.pty_replies]
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                command.argv, stdin=slave, stdout=slave, stderr=slave,
                env=child_environment(), start_new_session=True, close_fds=True,
            )
        except FileNotFoundError:
            os.close(master)
            os.close(slave)
            raise OperatorError(f"`{command.argv[0]}` is not installed on this host") from None
        os.close(slave)
        output = b""
        pending = list(answers)
        deadline = time.monotonic() + command.timeout
        seen = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise OperatorError(
                        f"`{display(command.argv)}` did not finish within "
                        f"{command.timeout:.0f} s (waiting at its prompt?)")
                ready, _, _ = select.select([master], [], [], 0.1)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        break
                    output += chunk
                    text = output[seen:].decode(errors="replace")
                    hit = next((i for i, (p, _n, _t) in enumerate(pending) if p.search(text)),
                               None)
                    if hit is not None:
                        _pattern, name, reply = pending.pop(hit)
                        if name is not None:
                            if secrets is None:
                                raise OperatorError(f"no secret source to answer {name}")
                            reply = secrets.get(name)
                        os.write(master, (reply or "").encode() + b"\n")
                        seen = len(output)
                elif proc.poll() is not None:
                    break
        finally:
            os.close(master)
        returncode = proc.wait(timeout=5)
        text = output.decode(errors="replace").replace("\r\n", "\n")
        return CommandResult(argv=command.argv, returncode=returncode, stdout=redact(text))
