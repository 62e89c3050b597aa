"""CloudRig in a real terminal over SSH, as an operator runs it.

OpenSSH's server (Debian's openssh-server) listens on 127.0.0.1 with a throwaway host
key and client key; `ssh -tt` logs in inside a tmux session of exactly 80×24 and runs
`cloudrig` with TERM=xterm-256color, TERM=linux (the Linux console: 16 colours) and
TERM=xterm-256color with NO_COLOR=1. Keys go in with `tmux send-keys` (arrows, Tab,
Enter, ctrl+n, Escape) and the screen is read back with `capture-pane`, waiting for
what a person would wait for. Every captured screen is kept under
$CLOUDRIG_ARTIFACTS/ssh (default artifacts/ssh) for a person to read.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import artifacts_dir, closed_port, files_under
from fakes.consul import FakeConsul
from private_cli import private_env

SSHD = "/usr/sbin/sshd"
TIMEOUT = 60.0
SECRET = "db-pa55-over-ssh"
SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def _need(*tools: str) -> None:
    for tool in tools:
        if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool)):
            pytest.skip(f"needs {tool} (apt-get install -y openssh-server openssh-client tmux)")


@dataclass
class Sshd:
    port: int
    key: Path
    user: str


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """sshd -D on 127.0.0.1:PORT with its own config: keys only, this user only."""
    _need(SSHD, "ssh", "ssh-keygen", "tmux")
    tmp = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)],
                       check=True, capture_output=True)
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    os.chmod(tmp / "authorized_keys", 0o600)
    port = closed_port()
    config = tmp / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {tmp / 'host_key'}
PidFile {tmp / 'sshd.pid'}
AuthorizedKeysFile {tmp / 'authorized_keys'}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
""")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    log = tmp / "sshd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Sshd(port, tmp / "client_key", getpass.getuser())
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            probe = subprocess.run([*_ssh_argv(server), "true"], capture_output=True,
                                   stdin=subprocess.DEVNULL, timeout=TIMEOUT)
            if probe.returncode == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not let us in: {log.read_text(errors='replace')}"
                            f"{probe.stderr.decode(errors='replace')}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _ssh_argv(server: Sshd, tty: bool = False) -> list[str]:
    return ["ssh", *(["-tt"] if tty else []), "-p", str(server.port), "-i", str(server.key),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{server.user}@127.0.0.1"]


class Terminal:
    """A tmux session on its own socket, 80×24, whose one window runs ARGV."""

    def __init__(self, tmp: Path, argv: list[str], case: str) -> None:
        self.socket = tmp / "tmux.sock"
        self.case = case
        self.shots = 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color")
        self.env = env
        self.tmux("-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24",
                  "-s", "cloudrig", " ".join(_quote(a) for a in argv))
        self.tmux("set-option", "-t", "cloudrig", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-u", "-S", str(self.socket), *args], env=self.env,
                              check=True, capture_output=True, text=True, timeout=30).stdout

    def screen(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "cloudrig")

    def size(self) -> tuple[int, int]:
        width, height = self.tmux("display-message", "-p", "-t", "cloudrig",
                                  "#{pane_width} #{pane_height}").split()
        return int(width), int(height)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "cloudrig", *keys)

    def text(self, text: str) -> None:
        self.tmux("send-keys", "-t", "cloudrig", "-l", text)

    def wait_for(self, ready: Callable[[str], bool] | str, what: str = "",
                 timeout: float = TIMEOUT) -> str:
        check = (lambda s: ready in s) if isinstance(ready, str) else ready
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                self.keep("timeout")
                pytest.fail(f"[{self.case}] waited {timeout:.0f}s for "
                            f"{what or ready!r}; the screen:\n{screen}")
            time.sleep(0.05)

    def keep(self, step: str) -> Path:
        """The screen (text and escapes) as an artefact."""
        self.shots += 1
        directory = artifacts_dir("ssh")
        path = directory / f"{self.case}-{self.shots:02d}-{step}.txt"
        path.write_text(self.screen())
        (directory / f"{self.case}-{self.shots:02d}-{step}.ansi").write_text(
            self.screen(escapes=True))
        return path

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], env=self.env,
                       capture_output=True, timeout=30)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def _colours(ansi: str) -> set[str]:
    """The colour parameters of every SGR sequence tmux reports for the screen."""
    found = set()
    for params in SGR.findall(ansi):
        parts = [p for p in re.split("[;:]", params) if p]
        i = 0
        while i < len(parts):
            p = parts[i]
            if p in ("38", "48") and i + 1 < len(parts):
                width = 5 if parts[i + 1] == "2" else 3
                found.add(";".join(parts[i:i + width]))
                i += width
                continue
            if p.isdigit() and (30 <= int(p) <= 37 or 40 <= int(p) <= 47
                                or 90 <= int(p) <= 97 or 100 <= int(p) <= 107):
                found.add(p)
            i += 1
    return found


def _grey(colour: str) -> bool:
    """Black, white or grey: xterm's grey ramp and the 16 colours' greys, or r=g=b."""
    parts = colour.split(";")
    if parts[:2] in (["38", "5"], ["48", "5"]):
        index = int(parts[2])
        return index in (0, 7, 8, 15, 16, 231) or 232 <= index <= 255
    if parts[:2] in (["38", "2"], ["48", "2"]):
        return len(set(parts[2:5])) == 1
    return colour in ("30", "37", "90", "97", "40", "47", "100", "107")


CASES = {
    "xterm-256color": {"TERM": "xterm-256color"},
    "linux": {"TERM": "linux"},
    "no-color": {"TERM": "xterm-256color", "NO_COLOR": "1"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_carbonio_wizard_over_ssh_in_tmux(case: str, sshd: Sshd, tmp_path: Path) -> None:
    consul = FakeConsul().start()
    env = private_env(tmp_path, {"consul_token": consul.management_token})
    env.pop("CLOUDRIG_SECRET_CONSUL_TOKEN")  # typed into the wizard, as an operator does
    env.pop("NO_COLOR", None)
    env.update(CASES[case], LANG="C.UTF-8")
    passed = {k: v for k, v in env.items()
              if k.startswith(("CLOUDRIG_", "XDG_")) or k in (
                  "HOME", "TERM", "NO_COLOR", "LANG", "PYTHONPATH", "PYTHONSAFEPATH", "PATH")}
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    remote = " ".join(["cd", _quote(str(tmp_path)), "&&", "exec", "env",
                       *(_quote(f"{k}={v}") for k, v in passed.items()),
                       _quote(sys.executable), "-m", "tui"])
    term = Terminal(tmp_path, [*_ssh_argv(sshd, tty=True), remote], case)
    try:
        _drive(term, consul, case)
    finally:
        term.close()
        consul.stop()
    for path in files_under(tmp_path / "state") + files_under(artifacts_dir("ssh")):
        text = path.read_text(errors="replace")
        assert SECRET not in text and consul.management_token not in text, path


def _drive(term: Terminal, consul: FakeConsul, case: str) -> None:
    home = term.wait_for("⏎ Wizard", "the home screen with the procedure table focused")
    term.keep("home")
    assert term.size() == (80, 24)
    lines = home.split("\n")
    assert "CloudRig" in lines[0] and "Quit" in lines[23], home
    # UTF-8 arrived whole through ssh and tmux (no replacement characters, no mojibake).
    assert "⇄" in home and "⏎" in home and "\ufffd" not in home and "â" not in home, home

    ansi = term.screen(escapes=True)
    colours = _colours(ansi)
    if case == "no-color":
        # Textual's NO_COLOR drops every hue but keeps shades of grey, so the focused
        # field and the table's cursor stay visible; no colour of any hue is sent.
        hues = [c for c in colours if not _grey(c)]
        assert not hues, f"NO_COLOR=1 still sent colours: {sorted(hues)[:10]}"
    elif case == "linux":
        assert colours, "TERM=linux should still be coloured (16 colours)"
        assert not [c for c in colours if c.startswith(("38;", "48;"))], sorted(colours)
    else:
        assert [c for c in colours if c.startswith(("38;", "48;"))], sorted(colours)

    # Arrow keys move in the procedure table; Up comes back to carbonio, the first row.
    term.keys("Down")
    term.keys("Down")
    term.keys("Up")
    term.keys("Up")
    term.keys("Enter")
    term.wait_for("1/6 Consul access")
    term.text(consul.url)
    term.wait_for(consul.url)
    term.keys("Tab")
    term.keys("Tab")
    term.text(consul.management_token)
    term.wait_for(lambda s: "•" * 20 in s, "the token typed, masked")
    term.keep("wizard-consul")
    term.keys("C-n")
    term.wait_for("2/6")

    # Escape goes back a page at once: Textual waits ESCDELAY (100 ms) for a sequence.
    started = time.monotonic()
    term.keys("Escape")
    back = term.wait_for("1/6 Consul access", "Escape to go back a page")
    assert time.monotonic() - started < 2.0, "Escape took seconds: an ESC delay"
    assert consul.url in back  # the answer typed is kept
    term.keep("back-with-escape")
    term.keys("C-n")
    term.wait_for("2/6")
    term.keys("C-n")
    term.wait_for("3/6")
    term.keys("Tab")
    term.text("db.example.com")
    term.wait_for("db.example.com")
    for number in (4, 5, 6):
        term.keys("C-n")
        term.wait_for(f"{number}/6")
    term.keys("C-n")
    term.wait_for(lambda s: "Fix the 2 marked field(s) to continue." in s and "required" in s,
                  "the two required fields marked")
    term.keep("required-fields")
    term.text("files")
    term.keys("Tab")
    term.text("filesuser")
    term.keys("Tab")
    term.text(SECRET)
    term.wait_for(lambda s: "filesuser" in s and "•" * len(SECRET) in s, "the password typed")
    term.keys("C-n")
    preview = term.wait_for("Press a to apply", "the preview")
    term.keep("preview")
    assert "+++ /etc/carbonio/gateway/service-discover/policies.json" in preview
    assert SECRET not in preview and consul.management_token not in preview
    assert [r for r in consul.log if r.method != "GET"] == []  # a preview changes nothing

    # The window grows and shrinks: the screen is laid out again each time.
    term.tmux("resize-window", "-t", "cloudrig", "-x", "100", "-y", "30")
    wide = term.wait_for(lambda s: len(s.split("\n")) >= 30 and "Quit" in s.split("\n")[29],
                         "the footer on row 30 after growing to 100×30")
    assert max(len(line) for line in wide.split("\n")) > 80
    term.keep("resized-100x30")
    term.tmux("resize-window", "-t", "cloudrig", "-x", "80", "-y", "24")
    small = term.wait_for(lambda s: "Quit" in s.split("\n")[23] and "Press a to apply" in s,
                          "the footer on row 24 again")
    assert max(len(line) for line in small.split("\n")) <= 80
    term.keep("resized-80x24")

    term.keys("Escape")
    term.wait_for("6/6", "Escape from the preview back to the wizard's last page")
    term.keys("C-q")
    term.wait_for(lambda s: "CloudRig" not in s.split("\n")[0] or "Pane is dead" in s,
                  "CloudRig to quit and the SSH session to end")
    term.keep("quit")
