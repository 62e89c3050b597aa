"""Prompts get a real terminal (tui.prompts): the pty is the child's controlling
terminal, so tools that read secrets from /dev/tty (sudo, ssh, passwd, vendor password
managers) work; echo is off; answers follow the order prompts appear; a prompt CloudRig
does not know ends the command at once; a secret can be typed without a prompt once
the child turns echo off (service-discover); a timeout kills everything the command
started. The children are small Python scripts written here."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import host_stubs
import pytest
from carbonio_session import carbonio_session
from pydantic import ValidationError

from tui import prompts, redact
from tui.commands import CommandFailed, CommandRunner
from tui.engine import Session
from tui.errors import OperatorError
from tui.model import Command, Event, prompt_forms
from tui.secrets import SecretSource

SECRET = "s3cret 'pa$$word' \"x\""
CLUSTER = "cluster pass-9f3a"
TOKEN = "8f2b6c1e-4d7a-4e0b-9c3d-2a1f5e6b7c8d"
PY = sys.executable
HANG_GUARD = 120  # s: only so that a regression fails instead of hanging the suite


def source() -> SecretSource:
    return SecretSource("carbonio", ["db_password", "cluster_password"],
                        overrides={"db_password": SECRET, "cluster_password": CLUSTER},
                        interactive=False)


def python(code: str, **kwargs) -> Command:
    return Command(argv=[PY, "-c", code], changes_host=False, **kwargs)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def session(tmp_path: Path, clean_redact) -> tuple[Session, list[Event]]:
    """A real session: its events go to the state dir's log, its secrets are `source()`."""
    return carbonio_session(tmp_path / "state", source())


def everything_shown(sess: Session, events: list[Event], *texts: str) -> str:
    """All CloudRig showed or kept of a run: log, events, and the texts given."""
    return "\n".join([sess.store.log_path.read_text(), *(e.message for e in events), *texts])


# ---------------------------------------------------------------- the terminal

TERMINAL_FACTS = r"""
import fcntl, json, os, struct, termios
facts = {"session_leader": os.getsid(0) == os.getpid()}
try:
    tty = os.open("/dev/tty", os.O_RDWR)
except OSError as error:
    facts["dev_tty"] = error.strerror
else:
    facts["dev_tty"] = "opened"
    facts["foreground"] = os.tcgetpgrp(tty) == os.getpgrp()
    facts["echo"] = bool(termios.tcgetattr(tty)[3] & termios.ECHO)
    rows, cols = struct.unpack("hhhh", fcntl.ioctl(tty, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    facts["size"] = [rows, cols]
facts["stdin_is_tty"] = os.isatty(0)
facts["secret_env"] = [k for k in os.environ if k.startswith("CLOUDRIG_SECRET")]
print(json.dumps(facts))
"""


def test_the_pty_is_the_controlling_terminal_without_echo(monkeypatch, clean_redact) -> None:
    monkeypatch.setenv("CLOUDRIG_SECRET_DB_PASSWORD", SECRET)
    command = python(TERMINAL_FACTS, pty_replies=[("never asked", "x")], timeout=60)
    result = CommandRunner().run(command, source())
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts == {"session_leader": True, "dev_tty": "opened", "foreground": True,
                     "echo": False, "size": [24, 80], "stdin_is_tty": True,
                     "secret_env": []}


# A password reader that, like sudo's tgetpass or OpenSSH's readpassphrase, insists on
# the controlling terminal: it opens /dev/tty (no fallback to stdin), turns echo off
# there, prompts and reads there.
DEV_TTY_READER = r"""
import hashlib, os, sys, termios
try:
    tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
except OSError as error:
    print(f"sudo: unable to open /dev/tty: {error.strerror}", file=sys.stderr)
    sys.exit(1)
old = termios.tcgetattr(tty)
new = termios.tcgetattr(tty)
new[3] &= ~termios.ECHO
termios.tcsetattr(tty, termios.TCSAFLUSH, new)
os.write(tty, b"[sudo] password for operator: ")
line = b""
while not line.endswith(b"\n"):
    line += os.read(tty, 1)
termios.tcsetattr(tty, termios.TCSAFLUSH, old)
os.write(tty, b"\n")
print("hash", hashlib.sha256(line[:-1]).hexdigest())
"""


def test_a_tool_reading_its_secret_from_dev_tty_gets_it(session) -> None:
    sess, events = session
    command = python(DEV_TTY_READER, timeout=60,
                     pty_answers=[(r"\[sudo\] password for \w+:", "db_password")])
    result = sess.ctx.run(command)
    assert f"hash {sha(SECRET)}" in result.stdout
    assert "[sudo] password for operator:" in result.stdout
    shown = everything_shown(sess, events, result.stdout, " ".join(result.argv))
    assert SECRET not in shown
    # Nothing had to be masked: the secret never reached the output (echo was off).
    assert redact.MASK not in result.stdout


ECHO_BACK = ("import getpass; s = getpass.getpass('Password: '); "
             "print('the tool printed it:', s)")
PLAIN_INPUT = ("import hashlib; s = input('Password: '); "
               "print('hash', hashlib.sha256(s.encode()).hexdigest())")


def test_secrets_typed_at_prompts_never_appear(session) -> None:
    """input() does not turn echo off: the terminal must not echo (nothing is masked),
    and a tool that prints the secret back is masked everywhere CloudRig shows it."""
    sess, events = session
    quiet = sess.ctx.run(python(PLAIN_INPUT, timeout=60,
                                pty_answers=[("Password:", "db_password")]))
    assert f"hash {sha(SECRET)}" in quiet.stdout
    assert redact.MASK not in quiet.stdout and SECRET not in quiet.stdout
    loud = python(ECHO_BACK + "; raise SystemExit(3)", timeout=60,
                  pty_answers=[("Password:", "db_password")])
    with pytest.raises(CommandFailed) as failed:
        sess.ctx.run(loud)
    result = failed.value.result
    assert f"the tool printed it: {redact.MASK}" in result.stdout
    assert SECRET not in everything_shown(sess, events, failed.value.sentence,
                                          result.stdout, result.stderr, quiet.stdout)


# ---------------------------------------------------------------- timeouts

FAMILY = r"""
import os, signal, subprocess, sys, time
# Both ignore the hangup a closing terminal sends, and SIGTERM: only SIGKILL ends them,
# and the grandchild would outlive its parent.
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
with open(sys.argv[1] + ".tmp", "w") as fp:
    fp.write(str(grandchild.pid))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)
"""


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for its reaper has ended too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


def ends(pid: int) -> bool:
    """The process ends (SIGKILL is delivered when it is next scheduled: wait for that,
    the guard only keeps a regression from hanging the suite)."""
    for _ in range(int(HANG_GUARD * 100)):
        if gone(pid):
            return True
        time.sleep(0.01)
    return False


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path, monkeypatch,
                                                 clean_redact) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # The command's clock reaches its deadline exactly when the grandchild exists.
    monkeypatch.setattr(prompts, "_clock", lambda: 1e9 if pid_file.exists() else 0.0)
    command = Command(argv=[PY, "-c", FAMILY, str(pid_file)], changes_host=False,
                      timeout=600, pty_answers=[("never asked", "db_password")])
    grandchild = None
    try:
        with pytest.raises(CommandFailed) as failed:
            CommandRunner().run(command, source())
        grandchild = int(pid_file.read_text())
        assert "did not finish within 600 s" in failed.value.sentence
        assert "every process it started were stopped" in failed.value.sentence
        assert failed.value.result.returncode == -signal.SIGKILL
        assert ends(grandchild)
    finally:
        if grandchild and not gone(grandchild):
            with contextlib.suppress(OSError):
                os.kill(grandchild, signal.SIGKILL)


def test_a_piped_command_s_timeout_kills_its_whole_process_group_too(
        tmp_path: Path, monkeypatch, clean_redact) -> None:
    """The pipe runner (secrets on stdin) as the terminal one: on timeout the command
    and everything it started are killed. The deadline is reached at a deterministic
    point: the first wait returns "timed out" once the grandchild exists."""
    import subprocess

    pid_file = tmp_path / "grandchild.pid"
    real = subprocess.Popen.communicate

    def times_out_once_the_family_exists(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("timeout") is None:
            return real(self, *args, **kwargs)
        for _ in range(int(HANG_GUARD * 100)):
            if pid_file.exists():
                break
            time.sleep(0.01)
        raise subprocess.TimeoutExpired(self.args, kwargs["timeout"])

    monkeypatch.setattr(subprocess.Popen, "communicate", times_out_once_the_family_exists)
    command = Command(argv=[PY, "-c", FAMILY, str(pid_file)], changes_host=False,
                      timeout=600, stdin_secret="db_password")
    grandchild = None
    try:
        with pytest.raises(OperatorError) as failed:
            CommandRunner().run(command, source())
        grandchild = int(pid_file.read_text())
        assert "did not finish within 600 s" in failed.value.sentence
        assert "every process it started were stopped" in failed.value.sentence
        assert ends(grandchild)
    finally:
        if grandchild and not gone(grandchild):
            with contextlib.suppress(OSError):
                os.kill(grandchild, signal.SIGKILL)


# ---------------------------------------------------------------- unknown prompts

ASKS_MORE = ("import getpass; getpass.getpass('Password: '); "
             "print('Password accepted.'); input('Which colour is the sky? [blue]/grey ')")
REFUSES = ("import getpass\nwhile getpass.getpass('Password: ') != 'the right one':\n"
           "    print('Sorry, try again.')")


def test_an_unknown_prompt_ends_the_command_at_once_quoting_it(clean_redact) -> None:
    command = python(ASKS_MORE, timeout=600, pty_answers=[("Password:", "db_password")])
    started = time.monotonic()
    with pytest.raises(CommandFailed) as failed:
        CommandRunner().run(command, source())
    assert time.monotonic() - started < HANG_GUARD  # not the 600 s timeout
    sentence = failed.value.sentence
    assert 'asked "Which colour is the sky? [blue]/grey", a prompt CloudRig has no ' \
           "answer for" in sentence
    assert "Password accepted." in failed.value.result.stdout
    assert failed.value.result.returncode == -signal.SIGKILL
    assert SECRET not in sentence + failed.value.result.stdout


def test_a_known_prompt_asked_again_means_the_answer_was_refused(clean_redact) -> None:
    command = python(REFUSES, timeout=600, pty_answers=[("Password:", "db_password")])
    started = time.monotonic()
    with pytest.raises(CommandFailed) as failed:
        CommandRunner().run(command, source())
    assert time.monotonic() - started < HANG_GUARD
    assert 'asked "Password:" again after CloudRig answered it' in failed.value.sentence
    assert "Sorry, try again." in failed.value.result.stdout


# The same question in an old and a new release of a tool (the shape of atmosphere's
# add_new_provider.py before and after its prompt was reworded), coloured and with
# carriage returns, as terminals print them.
RELEASES = {
    "old": "print('What is the name of your new provider?'); "
           "name = input('Name of new provider: ')",
    "new": r"import sys; sys.stdout.write('\x1b[1mWhat is the name of your new provider?"
           r"\x1b[0m\r\n'); sys.stdout.flush(); "
           "name = input('\\x1b[32mWhat is the name of your new provider? : \\x1b[0m')",
}


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_one_answer_accepts_every_wording_of_its_prompt(release: str, clean_redact) -> None:
    pattern = prompt_forms("Name of new provider:", "What is the name of your new provider? :")
    command = python(RELEASES[release] + "; print('named', repr(name))", timeout=600,
                     pty_replies=[(pattern, "cloud-one")])
    result = CommandRunner().run(command, source())
    assert "named 'cloud-one'" in result.stdout
    assert "\x1b" not in result.stdout and "\r" not in result.stdout


ORDERED = ("print('Two questions follow: first: a name, second: a number.'); "
           "a = input('first: '); b = input('second: '); print('got', a, b)")


def test_answers_go_in_the_order_the_prompts_appear(clean_redact) -> None:
    """Listed second, `first:` still comes first because it appears first."""
    command = python(ORDERED, timeout=600,
                     pty_replies=[("second:", "two"), ("first:", "one")])
    assert "got one two" in CommandRunner().run(command, source()).stdout


def test_a_prompt_split_across_reads_matches_once_whole() -> None:
    """Fed in two pieces cut anywhere (inside an escape sequence, between CR and LF),
    the transcript never shows a fragment of an escape and matches the whole prompt."""
    raw = ("\x1b]0;title\x07line one\r\n\x1b[1;32mWhat is the name of your new "
           "provider?\x1b[0m : ")
    clean = "line one\nWhat is the name of your new provider? : "
    pattern = prompt_forms("What is the name of your new provider? :")
    for cut in range(len(raw) + 1):
        transcript = prompts.Transcript()
        transcript.feed(raw[:cut])
        assert clean.startswith(transcript.text), cut
        transcript.feed(raw[cut:])
        assert transcript.text == clean, cut
        assert re.search(pattern, transcript.pending)


# ---------------------------------------------------------------- a secret without a prompt



@pytest.fixture
def service_discover(tmp_path: Path) -> Path:
    path = tmp_path / "service-discover"
    path.write_text(host_stubs.service_discover(CLUSTER, TOKEN))
    path.chmod(0o755)
    return path


def test_a_secret_is_typed_without_a_prompt_for_a_tool_that_needs_a_tty(
        session, service_discover: Path) -> None:
    sess, events = session
    argv = [str(service_discover), "bootstrap-token", "--setup"]
    # Like the real tool, the stub refuses a pipe.
    with pytest.raises(CommandFailed) as refused:
        sess.ctx.run(Command(argv=argv, stdin_secret="cluster_password", changes_host=False))
    assert "the provided file descriptor (0) is not a terminal" in refused.value.sentence
    result = sess.ctx.run(Command(argv=argv, pty_secret_input="cluster_password",
                                  changes_host=False, timeout=600))
    assert result.stdout == TOKEN
    assert CLUSTER not in everything_shown(sess, events, result.stdout)


def test_a_secret_is_not_typed_into_a_terminal_that_echoes(clean_redact) -> None:
    """A child that reads without turning echo off would show the secret: it is not
    typed, and the command ends at once instead of waiting for its timeout."""
    command = python("import sys; sys.stdin.readline()", timeout=600,
                     pty_secret_input="cluster_password")
    started = time.monotonic()
    with pytest.raises(CommandFailed) as failed:
        CommandRunner().run(command, source())
    assert time.monotonic() - started < HANG_GUARD
    assert "terminal that echoes, so CloudRig did not type the secret cluster_password" \
        in failed.value.sentence


# ---------------------------------------------------------------- the model


def test_command_fields_are_checked() -> None:
    with pytest.raises(ValidationError, match="use pty_secret_input instead"):
        Command(argv=["x"], stdin_secret="a", pty_answers=[("Password:", "a")])
    with pytest.raises(ValidationError, match=r"prompt pattern '\[Yes' is not a regular"):
        Command(argv=["x"], pty_replies=[("[Yes", "Yes")])
    assert Command(argv=["x"], pty_secret_input="a").on_terminal
    assert not Command(argv=["x"], stdin_secret="a").on_terminal
