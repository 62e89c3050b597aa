"""Interactive prompts answered on a pseudo-terminal that is the child's controlling
terminal.

Tools that ask for a secret read it from their terminal, and many open `/dev/tty`
for it (sudo, ssh, passwd, vendor password managers). A pty that is only the child's
stdin/stdout is not enough: `/dev/tty` is the *controlling* terminal, which a
process gets only as a session leader that acquires one. pexpect (through
ptyprocess: fork, setsid, TIOCSCTTY) does exactly that, so it runs every command
that has prompts. The rules, which procedures rely on:

* **Terminal.** A new session whose controlling terminal is the pty, 24×80, the
  environment the caller gives (the runner's: no `CLOUDRIG_SECRET_*`), echo off.
* **Enter** is typed as CR, as a keyboard does: a line-mode reader receives "\\n"
  (the terminal's ICRNL), a raw-mode reader (Go's x/term, used by zextras'
  service-discover) sees the Enter key it waits for ("\\n" would be ignored there).
* **Prompts** (`pty_answers`: a secret by name; `pty_replies`: public text) are
  regular expressions, each answered once, when it matches the output not yet
  consumed; when several match, the one appearing first in the output is answered
  first, and the output is consumed up to the end of the line the match is on (the
  rest of that line belongs to the prompt: "…for provider: (Should be a list)"; later
  lines stay for the next prompts). Old and new wordings of one
  question are one pattern with alternatives (`procedure.prompt_forms`). Patterns see
  the output as a terminal shows it — ANSI escapes and control characters removed,
  carriage returns dropped — accumulated across reads, so a prompt split between
  reads, coloured or redrawn still matches.
* **Secrets** are typed only while the terminal does not echo (echo is switched off
  first if the child turned it on), are never logged, and the output is redacted.
* **A secret without a prompt** (`pty_secret_input`): the child starts with echo ON
  and the secret is typed the moment the child turns echo off — the first thing a
  password reader does (x/term's MakeRaw, getpass, readpassphrase) — so it is typed
  neither before the child reads (a raw-mode reader would never see its Enter) nor
  into a terminal that would show it.
* **A prompt CloudRig does not know** ends the command at once, quoting it. The
  child is "waiting at a prompt" when, after `QUIET` s without output and without
  typing, it has printed something since the last answer that no remaining pattern
  matches, and a thread of its session sleeps in read() on a terminal (Linux /proc,
  see `child_session`). Where that cannot be seen (a set-uid member such as sudo, a
  member in poll/select), the output must also end in an unfinished line and have
  been quiet for `FALLBACK_QUIET` s. A session that is busy (working, waiting on the
  network or on a child) is never mistaken for a prompt; a child that waits without
  printing anything runs into the command's timeout.
* **Timeout** (the command's `timeout`, for the whole dialogue) and every other
  ending before the child exits kill the child's process group and every process
  left in its session, and wait until they are gone.
"""

from __future__ import annotations

import re
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import pexpect

from tui import child_session
from tui.errors import OperatorError
from tui.model import Command

ENTER = "\r"
ROWS, COLUMNS = 24, 80
QUIET = 0.5  # s without output or typing before looking at what the session waits for
FALLBACK_QUIET = 5.0  # s, when /proc cannot show it (see the module doc)
POLL = 0.05  # s, longest wait for output before checking the terminal's mode again
MAX_KEPT = 1 << 20  # characters of output kept: a flooding child cannot exhaust memory
_clock = time.monotonic  # the dialogue's clock (a test moves it to reach the deadline)

# ECMA-48 sequences: CSI, OSC (BEL or ST), DCS/SOS/PM/APC strings, and 2-byte escapes
# (the last alternative excludes the introducers of the longer ones).
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)"
                     r"|[PX^_][^\x1b]*\x1b\\|[ -/]*[0-OQ-WYZ\\`-~])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # "\n" and "\t" stay; "\r" goes
_HOLD = 256  # an escape sequence still open at the end of a read is held back this long


class Ending(StrEnum):
    EXITED = "exited"
    TIMEOUT = "timeout"
    UNKNOWN_PROMPT = "unknown prompt"
    ECHOING = "reads with echo on"


@dataclass
class Outcome:
    """How a dialogue ended; `output` is the terminal's text (not yet redacted)."""

    ending: Ending
    returncode: int | None
    output: str
    prompt: str = ""  # the prompt that was not known, as the terminal showed it
    again: bool = False  # ...which is a known prompt, asked a second time


class Transcript:
    """The child's output as a terminal shows it, and how much of it was answered."""

    def __init__(self) -> None:
        self.text = ""
        self.consumed = 0
        self.dropped = 0
        self._held = ""

    def feed(self, chunk: str) -> None:
        data = self._held + chunk
        start = data.rfind("\x1b")
        if start != -1 and not _ESCAPE.match(data, start) and len(data) - start < _HOLD:
            data, self._held = data[:start], data[start:]
        else:
            self._held = ""
        self.text += _CONTROL.sub("", _ESCAPE.sub("", data))
        if len(self.text) > MAX_KEPT:
            cut = len(self.text) - MAX_KEPT
            self.text = self.text[cut:]
            self.consumed = max(0, self.consumed - cut)
            self.dropped += cut

    @property
    def pending(self) -> str:
        """Output since the last answered prompt."""
        return self.text[self.consumed:]

    def consume(self, length: int) -> None:
        self.consumed += length

    def output(self) -> str:
        note = f"[{self.dropped} earlier characters of output not kept]\n" if self.dropped else ""
        return note + self.text


@dataclass
class _Prompt:
    pattern: re.Pattern[str]
    secret: str | None = None
    text: str = ""
    answered: bool = False


def _next(prompts: list[_Prompt], pending: str) -> tuple[_Prompt, re.Match[str]] | None:
    """The unanswered prompt whose pattern matches earliest in `pending` (ties: listed
    first)."""
    best: tuple[_Prompt, re.Match[str]] | None = None
    for prompt in prompts:
        if prompt.answered:
            continue
        match = prompt.pattern.search(pending)
        if match and (best is None or match.start() < best[1].start()):
            best = (prompt, match)
    return best


def shown_prompt(pending: str) -> str:
    """The last non-blank line of `pending`: what the operator would see waiting."""
    lines = [line.strip() for line in pending.splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text if len(text) <= 200 else "…" + text[-199:]


def _echoes(child: pexpect.spawn) -> bool:
    """Whether the child's terminal echoes input (unknown counts as yes)."""
    try:
        return bool(child.getecho())
    except (OSError, termios.error):
        return True


class _Dialogue:
    def __init__(self, command: Command, child: pexpect.spawn,
                 secret_of: Callable[[str], str]) -> None:
        self.command = command
        self.child = child
        self.secret_of = secret_of
        self.prompts = [_Prompt(re.compile(p), secret=name) for p, name in command.pty_answers]
        self.prompts += [_Prompt(re.compile(p), text=text) for p, text in command.pty_replies]
        self.secret_input = command.pty_secret_input
        self.transcript = Transcript()
        self.active = _clock()  # last output or typing
        self.looked = 0.0  # last look at the session in /proc
        self.stuck: tuple[Ending, str, bool] | None = None

    def type(self, value: str, secret: bool) -> None:
        if secret and _echoes(self.child):
            self.child.setecho(False)
        self.child.send(value + ENTER)
        self.active = _clock()

    def read(self, timeout: float) -> bool:
        """Take what the child wrote (waiting up to `timeout`); False at end of file."""
        try:
            chunk = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        if chunk:
            self.transcript.feed(chunk)
            self.active = _clock()
        return True

    def step(self) -> bool:
        """One turn: read, then type what is due; False once the child's output ended."""
        if not self.read(POLL):
            return False
        if self.secret_input is not None and not _echoes(self.child):
            name, self.secret_input = self.secret_input, None
            self.type(self.secret_of(name), secret=True)
            return True
        found = _next(self.prompts, self.transcript.pending)
        if found:
            prompt, match = found
            pending = self.transcript.pending
            line_end = pending.find("\n", match.end())
            self.transcript.consume(line_end if line_end != -1 else len(pending))
            prompt.answered = True
            secret = prompt.secret is not None
            self.type(self.secret_of(prompt.secret) if prompt.secret else prompt.text, secret)
            return True
        self.stuck = self._stuck()
        return True

    def _stuck(self) -> tuple[Ending, str, bool] | None:
        """(ending, prompt, asked again) when the child waits for input CloudRig cannot
        give (the rule is in the module doc)."""
        now = _clock()
        quiet = now - self.active
        if quiet < QUIET or now - self.looked < QUIET:
            return None
        self.looked = now
        state = child_session.waiting(_pid(self.child))
        if state is child_session.Waiting.TERMINAL:
            # It reads, so all it printed before is in the pty: take it, and let the
            # next turn answer it if it is known.
            before = self.transcript.dropped + len(self.transcript.text)
            self.read(0)
            if self.transcript.dropped + len(self.transcript.text) != before:
                return None
        pending = self.transcript.pending
        asked = bool(pending.strip())
        if state is child_session.Waiting.UNKNOWN:
            if not (asked and quiet >= FALLBACK_QUIET and not pending.endswith("\n")):
                return None
        elif state is not child_session.Waiting.TERMINAL:
            return None
        if asked:
            again = any(p.answered and p.pattern.search(pending) for p in self.prompts)
            return Ending.UNKNOWN_PROMPT, shown_prompt(pending), again
        if self.secret_input is not None:
            return Ending.ECHOING, "", False
        return None  # read silently after an answer: the timeout decides


def _pid(child: pexpect.spawn) -> int:
    """The child's process id, set once spawn() started the command (pexpect types it
    optional for a spawn made without a command, which CloudRig never makes)."""
    assert child.pid is not None
    return child.pid


def run(command: Command, env: dict[str, str], secret_of: Callable[[str], str]) -> Outcome:
    """Run `command` on a pty, answering its prompts (the rules are in the module doc)."""
    try:
        child = pexpect.spawn(
            command.argv[0], command.argv[1:], env=env,
            echo=command.pty_secret_input is not None, dimensions=(ROWS, COLUMNS),
            encoding="utf-8", codec_errors="replace", use_poll=True, timeout=None)
    except pexpect.ExceptionPexpect:
        raise OperatorError(f"`{command.argv[0]}` is not installed on this host") from None
    except OSError as error:  # found, but exec failed (a missing interpreter, ENOEXEC)
        raise OperatorError(
            f"`{command.argv[0]}` could not be started: {error.strerror}") from None
    child.delaybeforesend = None
    # close() follows the child's end; no need to wait. (typeshed's pexpect stubs lack
    # spawn.ptyproc, the ptyprocess.PtyProcess pexpect/pty_spawn.py sets in _spawn.)
    child.ptyproc.delayafterclose = 0  # type: ignore[attr-defined]
    dialogue = _Dialogue(command, child, secret_of)
    deadline = _clock() + command.timeout
    ending = Ending.EXITED
    try:
        while True:
            if _clock() >= deadline:
                ending = Ending.TIMEOUT
                break
            if not dialogue.step():
                break
            if dialogue.stuck:
                ending = dialogue.stuck[0]
                break
        while ending is Ending.EXITED and child.isalive():
            # Output ended (every copy of the terminal closed) but the child lives on.
            if _clock() >= deadline:
                ending = Ending.TIMEOUT
            time.sleep(POLL)
    finally:
        if child.isalive():
            child_session.kill_all(_pid(child))
        child.close(force=True)
    returncode = -child.signalstatus if child.signalstatus else child.exitstatus
    prompt, again = (dialogue.stuck[1], dialogue.stuck[2]) if dialogue.stuck else ("", False)
    return Outcome(ending=ending, returncode=returncode, output=dialogue.transcript.output(),
                   prompt=prompt, again=again)
