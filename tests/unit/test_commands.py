"""The one command runner: argv only, a clean environment, secrets via stdin or a pty."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from pathlib import Path

import pytest
from carbonio_session import carbonio_session
from pydantic import ValidationError

from tui import redact
from tui.commands import CommandFailed, CommandRunner, display
from tui.engine import Session
from tui.errors import OperatorError
from tui.model import Command, Event
from tui.secrets import SecretSource

SECRET = "s3cret 'pa$$word' \"x\""
PY = sys.executable


def source() -> SecretSource:
    return SecretSource("carbonio", ["db_password"], overrides={"db_password": SECRET},
                        interactive=False)


def python(code: str, **kwargs) -> Command:
    return Command(argv=[PY, "-c", code], **kwargs)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def session(tmp_path: Path, clean_redact) -> tuple[Session, list[Event]]:
    """A real session (its events go to the state dir's log) for the carbonio procedure."""
    return carbonio_session(tmp_path / "state", source())


def test_commands_are_argv_lists_never_shell_strings(clean_redact) -> None:
    with pytest.raises(ValidationError):
        Command(argv="echo hello; rm -rf /")  # type: ignore[arg-type]
    argv = [PY, "-c", "import sys; print(sys.argv[1])", "$(touch x); `id` | *"]
    result = CommandRunner().run(Command(argv=argv))
    assert result.stdout == "$(touch x); `id` | *\n"
    assert display(["echo", "a b", "it's"]) == "echo 'a b' 'it'\"'\"'s'"


def test_child_environment_has_no_cloudrig_secrets(monkeypatch, clean_redact) -> None:
    monkeypatch.setenv("CLOUDRIG_SECRET_DB_PASSWORD", SECRET)
    monkeypatch.setenv("CLOUDRIG_SECRET_CONSUL_TOKEN", "token-value")
    monkeypatch.setenv("CLOUDRIG_SECRETS_PASSPHRASE", "store passphrase")
    monkeypatch.setenv("ORDINARY_SETTING", "kept")
    result = CommandRunner().run(python("import json, os; print(json.dumps(dict(os.environ)))"))
    env = json.loads(result.stdout)
    assert not [k for k in env if k.startswith("CLOUDRIG_SECRET")]
    assert env["ORDINARY_SETTING"] == "kept"
    assert SECRET not in result.stdout and "store passphrase" not in result.stdout


def test_stdin_secret_reaches_the_child(session) -> None:
    sess, _events = session
    command = python("import sys, hashlib; "
                     "print(hashlib.sha256(sys.stdin.read().encode()).hexdigest())",
                     stdin_secret="db_password", changes_host=False)
    result = sess.ctx.run(command)
    assert result.stdout.strip() == sha(SECRET + "\n")
    assert SECRET not in " ".join(result.argv)


def test_without_stdin_secret_the_child_reads_nothing(clean_redact) -> None:
    result = CommandRunner().run(python("import sys; print(repr(sys.stdin.read()))"))
    assert result.stdout == "''\n"


PROMPT_CHILD = ("import getpass, hashlib; p = getpass.getpass('Password for role: '); "
                "print('hash', hashlib.sha256(p.encode()).hexdigest())")


def test_pty_answers_a_getpass_prompt(session) -> None:
    sess, events = session
    command = python(PROMPT_CHILD, pty_answers=[("Password for role:", "db_password")],
                     changes_host=False, timeout=30)
    result = sess.ctx.run(command)
    assert f"hash {sha(SECRET)}" in result.stdout
    assert SECRET not in result.stdout and SECRET not in " ".join(result.argv)
    log = sess.store.log_path.read_text()
    assert "Password for role" in log  # the command was logged...
    assert SECRET not in log  # ...without the secret
    assert all(SECRET not in e.message for e in events)


def test_a_child_echoing_its_secret_is_redacted(session) -> None:
    sess, events = session
    command = python("import sys; s = sys.stdin.read(); print('got', s); "
                     "print('err', s, file=sys.stderr); sys.exit(4)",
                     stdin_secret="db_password", changes_host=False)
    with pytest.raises(CommandFailed) as failed:
        sess.ctx.run(command)
    text = failed.value.sentence + failed.value.result.stdout + failed.value.result.stderr
    assert SECRET not in text and redact.MASK in text
    assert SECRET not in sess.store.log_path.read_text()
    assert events and all(SECRET not in e.message for e in events)


def test_a_secret_in_argv_is_masked_when_shown(clean_redact) -> None:
    source()  # registers the override for redaction
    for argv in (["tool", "--password", SECRET], ["tool", f"--password={SECRET}"]):
        shown = display(argv)
        assert redact.MASK in shown
        # Not as is, nor in its shell-quoted form, nor any word of it.
        assert SECRET not in shown and shlex.quote(SECRET) not in shown
        assert "s3cret" not in shown and "pa$$word" not in shown


def test_dry_run_skips_with_a_reason(session, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = python(f"open({str(marker)!r}, 'w')")
    result = CommandRunner(dry_run=True).run(command)
    assert (result.returncode, result.skipped) == (None, "dry run")
    assert not marker.exists()


def test_root_skips_host_changing_commands_only(tmp_path: Path, clean_redact) -> None:
    marker = tmp_path / "ran"
    runner = CommandRunner(root=tmp_path / "root")
    changing = python(f"open({str(marker)!r}, 'w')", changes_host=True)
    result = runner.run(changing)
    assert result.skipped == "--root: this command would change this machine"
    assert not marker.exists()
    reading = python(f"open({str(marker)!r}, 'w')", changes_host=False)
    assert runner.run(reading).returncode == 0
    assert marker.exists()
    assert [r.skipped for r in runner.history] == [result.skipped, None]


def test_skips_are_reported_as_events(session) -> None:
    sess, events = session
    sess.ctx.runner = CommandRunner(dry_run=True)
    sess.ctx.run(Command(argv=["useradd", "-r", "carbonio-gateway"]))
    assert any(e.message == "skipped (dry run): useradd -r carbonio-gateway" for e in events)


def test_failure_raises_with_the_tail(clean_redact) -> None:
    command = python("import sys\nfor i in range(40): print('line', i)\n"
                     "print('boom: disk full', file=sys.stderr); sys.exit(3)")
    with pytest.raises(CommandFailed) as failed:
        CommandRunner().run(command)
    sentence = failed.value.sentence
    assert "exited with status 3" in sentence
    assert "boom: disk full" in sentence and "line 39" in sentence
    assert "line 0\n" not in sentence  # only the tail
    assert failed.value.result.returncode == 3


def test_ok_returncodes(clean_redact) -> None:
    result = CommandRunner().run(python("raise SystemExit(9)", ok_returncodes=(0, 9)))
    assert result.returncode == 9


@pytest.mark.parametrize("pty", [False, True])
def test_missing_binary_is_a_sentence(pty: bool, clean_redact) -> None:
    command = Command(argv=["/nonexistent/consul", "members"], description="list members",
                      pty_answers=[("Password:", "db_password")] if pty else [])
    with pytest.raises(OperatorError) as err:
        CommandRunner().run(command, source())
    assert "`/nonexistent/consul` is not installed on this host" in err.value.sentence
    assert not isinstance(err.value, CommandFailed)


@pytest.mark.parametrize("pty", [False, True])
def test_timeout_is_a_sentence(pty: bool, clean_redact) -> None:
    command = python("import time; time.sleep(30)", timeout=0.5,
                     pty_answers=[("never shown", "db_password")] if pty else [])
    with pytest.raises(OperatorError) as err:
        CommandRunner().run(command, source())
    assert "did not finish within" in err.value.sentence
    assert "Traceback" not in err.value.sentence
