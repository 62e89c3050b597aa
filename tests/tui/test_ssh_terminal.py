"""CloudRig in a real terminal over SSH: OpenSSH's server on 127.0.0.1, `ssh -tt` into it
from inside tmux at 80×24, the carbonio wizard driven with `tmux send-keys` and read
back with `tmux capture-pane`, as an operator on a remote host would see it.

Three terminals: TERM=xterm-256color, TERM=linux (the 16-colour console) and
xterm-256color with NO_COLOR=1. Every captured screen is kept under
`artifacts/ssh/<case>-<step>.txt` (and `.ansi.txt` with the escape sequences).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_rig import REPO, closed_port
from fakes.consul import FakeConsul
from in_process import run_in_process

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
NEEDED = {"sshd": SSHD, "ssh": shutil.which("ssh"), "ssh-keygen": shutil.which("ssh-keygen"),
          "tmux": shutil.which("tmux")}
MISSING = [name for name, path in NEEDED.items() if not path or not os.access(path, os.X_OK)]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"needs {', '.join(MISSING)} (Debian: openssh-server "
                          f"openssh-client tmux; scripts/test.sh installs them)")

WIDTH, HEIGHT = 80, 24
DEADLINE = 30.0  # seconds for any one screen to appear (2 shared cores, ssh start-up)
RUN_DEADLINE = 300.0  # seconds for an apply's steps to show (a detached process, loaded cores)
ESCAPE_GUARD = 5.0  # seconds: a hang guard only (a lone ESC must act, not wait for more
                    # keys); no assertion on how fast: these machines are shared and noisy
ARTIFACTS = Path(os.environ.get("CLOUDRIG_ARTIFACTS") or REPO / "artifacts") / "ssh"

# Border glyphs the Linux console's font does not have (it draws them as diamonds).
CONSOLE_LACKS = "▔▁▊▎╭╮╰╯┏┓┗┛"

# SGR parameters that set a colour: 30–39/40–49 (16 colours, 38/48 extended),
# 90–97/100–107 (bright). Bold, dim, reverse and underline are not colour.
SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def colour_params(ansi: str) -> list[str]:
    """Every colour-setting parameter in the SGR sequences of `ansi` (38;5;N counts once)."""
    found = []
    for match in SGR.finditer(ansi):
        params = [p for p in re.split(r"[;:]", match.group(1)) if p]
        i = 0
        while i < len(params):
            n = int(params[i])
            if n in (38, 48):
                kind = params[i + 1] if i + 1 < len(params) else ""
                width = {"5": 3, "2": 5}.get(kind, 2)
                found.append(";".join(params[i:i + width]))
                i += width
                continue
            if 30 <= n <= 37 or 40 <= n <= 47 or 90 <= n <= 97 or 100 <= n <= 107:
                found.append(str(n))
            i += 1
    return found


# ---------------------------------------------------------------------- sshd


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    client_key: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_banner(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until sshd answers with its SSH-2.0 banner (or has died, with its log)."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if conn.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"sshd did not answer on 127.0.0.1:{port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """OpenSSH's server on 127.0.0.1 as the current user, with throwaway keys and its own
    config in a temp dir; killed at teardown."""
    directory = tmp_path_factory.mktemp("sshd")
    host_key, client_key = directory / "host_key", directory / "client_key"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cloudrig-test",
                        "-f", str(key)], check=True, capture_output=True)
    authorized = directory / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    if os.geteuid() == 0:
        # sshd's privilege separation directory (Debian creates it at boot, not on install).
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"PidFile {directory / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
        "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "StrictModes no", "UsePAM no", "PrintMotd no", "PrintLastLog no",
        "LogLevel ERROR", "",
    ]))
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        reason = check.stderr.strip().splitlines()[-1] if check.stderr.strip() else "?"
        if os.geteuid() != 0:
            pytest.skip(f"sshd cannot run as {getpass.getuser()} (not root): {reason}")
        pytest.fail(f"sshd rejected its test config: {check.stderr}")
    log = directory / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_banner(port, proc, log)
        yield Sshd(port=port, user=getpass.getuser(), client_key=client_key)
    finally:
        proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------- the terminal


@dataclass(frozen=True)
class Case:
    name: str
    term: str
    no_color: bool = False


CASES = [Case("xterm-256color", "xterm-256color"), Case("linux", "linux"),
         Case("no-color", "xterm-256color", no_color=True)]


class Terminal:
    """A tmux session of one window: keys in with send-keys, the screen out with
    capture-pane, every capture kept as an artefact named after the case and step."""

    def __init__(self, socket_name: str, case: Case) -> None:
        self.socket = socket_name
        self.case = case
        self.step = 0

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=20)
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def keys(self, *keys: str) -> None:
        """Named keys (Enter, Escape, Up, C-n, BTab…) as tmux spells them."""
        self.tmux("send-keys", "-t", "main", *keys)

    def type(self, text: str) -> None:
        """Literal text, each character as typed."""
        self.tmux("send-keys", "-t", "main", "-l", text)

    def capture(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", "-t", "main", *(["-e"] if escapes else []))

    def size(self) -> tuple[int, int]:
        out = self.tmux("display-message", "-p", "-t", "main", "#{pane_width} #{pane_height}")
        width, height = out.split()
        return int(width), int(height)

    def keep(self, label: str) -> str:
        """Capture the screen (text and escapes) into the artefacts; returns the text."""
        self.step += 1
        text, ansi = self.capture(), self.capture(escapes=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = f"{self.case.name}-{self.step:02d}-{label}"
        (ARTIFACTS / f"{stem}.txt").write_text(text, encoding="utf-8")
        (ARTIFACTS / f"{stem}.ansi.txt").write_text(ansi, encoding="utf-8")
        if self.case.term == "linux":
            # The console font has ┌─┐ but not the eighth blocks of Textual's tall borders.
            missing = sorted(set(text) & set(CONSOLE_LACKS))
            assert missing == [], f"{stem}: TERM=linux screen uses glyphs its font lacks: " \
                                  f"{missing}"
        return text

    def wait_for(self, label: str, ready: Callable[[str], bool],
                 timeout: float = DEADLINE) -> str:
        """Poll the screen until `ready(text)`; keep it as an artefact either way."""
        end = time.monotonic() + timeout
        while True:
            text = self.capture()
            if ready(text):
                return self.keep(label)
            if time.monotonic() > end:
                self.keep(f"{label}-TIMEOUT")
                raise AssertionError(f"{label}: the screen never matched within {timeout}s:\n"
                                     f"{text}")
            time.sleep(0.05)

    def settle(self, label: str, quiet: float = 0.3) -> str:
        """Until the screen has not changed for `quiet` seconds (a key's effect drawn)."""
        seen = {"text": self.capture(), "since": time.monotonic()}

        def quiet_for(text: str) -> bool:
            if text != seen["text"]:
                seen.update(text=text, since=time.monotonic())
            return time.monotonic() - float(seen["since"]) >= quiet

        return self.wait_for(label, quiet_for)

    def wait_text(self, label: str, *needles: str, timeout: float = DEADLINE) -> str:
        return self.wait_for(label, lambda text: all(n in text for n in needles), timeout)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def fake_consul() -> Iterator[FakeConsul]:
    fake = FakeConsul().start()
    yield fake
    fake.stop()


def remote_command(tmp: Path, case: Case, consul: FakeConsul, *args: str,
                   **extra: str) -> str:
    """What ssh runs on the "remote" host: `python -m tui ARGS` (= cloudrig) with a
    private HOME and state dir, the file secret store and EXTRA variables. The two
    secrets come from a 0600 file sourced there, as automation provides
    CLOUDRIG_SECRET_*, never from argv."""
    home, state = tmp / "home", tmp / "state"
    home.mkdir(exist_ok=True)
    secrets = tmp / "secrets.env"
    secrets.touch(mode=0o600)
    secrets.write_text(f"CLOUDRIG_SECRET_CONSUL_TOKEN={shlex.quote(consul.management_token)}\n"
                       "CLOUDRIG_SECRET_DB_PASSWORD='ssh-test-db-Pa55'\n")
    env = {"TERM": case.term, "HOME": str(home), "CLOUDRIG_STATE_DIR": str(state),
           "CLOUDRIG_SECRETS_BACKEND": "file", "XDG_STATE_HOME": str(home / ".local/state"),
           "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local/share"), **extra}
    if case.no_color:
        env["NO_COLOR"] = "1"
    for name in ("PYTHONPATH", "PYTHONSAFEPATH"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return (f"set -a; . {shlex.quote(str(secrets))}; set +a; "
            f"exec env {assignments} {shlex.quote(sys.executable)} -m tui "
            + shlex.join(args))


def login(sshd: Sshd, tmp: Path, case: Case, consul: FakeConsul, *args: str,
          **extra: str) -> Terminal:
    """`ssh -tt` into the test sshd from a detached 80×24 tmux session (no status line),
    running `cloudrig ARGS` there; kill its tmux server when done (`Terminal.close`)."""
    term = Terminal(f"cloudrig-ssh-{uuid.uuid4().hex[:12]}", case)
    ssh = ["ssh", "-tt", "-F", "/dev/null", "-p", str(sshd.port), "-i", str(sshd.client_key),
           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{sshd.user}@127.0.0.1",
           remote_command(tmp, case, consul, *args, **extra)]
    conf = tmp / "tmux.conf"
    # No status line: the pane is the whole 80×24. The pane stays after ssh exits, so a
    # crash is still on screen for the failure message.
    conf.write_text("set -g status off\nset -g remain-on-exit on\n"
                    "set -g default-terminal tmux-256color\n")
    term.tmux("-f", str(conf), "new-session", "-d", "-s", "main",
              "-x", str(WIDTH), "-y", str(HEIGHT), shlex.join(ssh))
    return term


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def terminal(request: pytest.FixtureRequest, sshd: Sshd, tmp_path: Path,
             fake_consul: FakeConsul) -> Iterator[Terminal]:
    """cloudrig's home over ssh in tmux, for each terminal case."""
    term = login(sshd, tmp_path, request.param, fake_consul)
    try:
        yield term
    finally:
        term.close()


# ---------------------------------------------------------------------- the test


def shows(*values: str) -> Callable[[str], bool]:
    """Each value is the whole content of a field on screen (inside its left border:
    ▊ for Textual's tall border, │ for the Linux console's plain one)."""
    return lambda text: all(re.search(rf"[▊│]  {re.escape(v)} +[▎│]", text) for v in values)


def page_title(number: int, title: str) -> Callable[[str], bool]:
    return lambda text: f"{number}/6 {title}" in text


def test_carbonio_wizard_over_ssh(terminal: Terminal, fake_consul: FakeConsul) -> None:
    t = terminal
    home = t.wait_text("home", "CloudRig", "carbonio", "cloudcasa")
    carbonio_row = next(line for line in t.capture(escapes=True).splitlines()
                        if "carbonio" in line and "Carbonio Mesh" in line)
    if t.case.no_color:  # without colour, the highlighted row is in reverse video
        assert re.search(r"\x1b\[(?:[0-9]*;)*7(?:;[0-9]*)*m", carbonio_row), carbonio_row
    assert t.size() == (WIDTH, HEIGHT)
    assert len(home.splitlines()) <= HEIGHT

    # Arrows move the highlighted row: the summary under the table follows it.
    t.keys("Down")
    t.wait_for("down", lambda s: s != home)
    t.keys("Up")
    t.wait_text("up", "carbonio")
    t.keys("Enter")
    t.wait_for("wizard-1", page_title(1, "Consul access"))

    # The first page: the Consul URL replaces the default, Tab moves on.
    # All typed ahead: line editing keys act in order with the text around them.
    t.keys("C-a", "C-k")
    t.type(fake_consul.url + "x")
    t.keys("BSpace")
    filled = t.wait_for("wizard-1-filled", shows(fake_consul.url))
    assert "1/6 Consul access" in filled
    focused_is_visible(t, "Consul HTTP API", fake_consul.url)
    t.keys("C-n")
    t.wait_for("wizard-2", page_title(2, "Gateway name and directory"))

    # Escape goes back at once (no multi-second ESC delay), the typed URL still there,
    # and forward again.
    t.keys("Escape")
    back = t.wait_for("back-to-1", page_title(1, "Consul access"), timeout=ESCAPE_GUARD)
    assert fake_consul.url in back
    t.keys("C-n")
    t.wait_for("forward-2", page_title(2, "Gateway name and directory"))
    t.keys("C-n")
    t.wait_for("wizard-3", page_title(3, "The external service"))
    # Type-ahead, as over a slow link: Tab and the next text in one go must not leave
    # the text in the field Tab left (the service name keeps its default).
    t.keys("Tab")
    t.type("db.example.com")
    filled3 = t.wait_for("wizard-3-filled", shows("db.example.com"))
    assert shows("carbonio-files-db")(filled3)
    for number, title in ((4, "TLS to the database"), (5, "systemd service"), (6, "Database")):
        t.keys("C-n")
        t.wait_for(f"wizard-{number}", page_title(number, title))
    t.keys("C-n")  # db_name and db_username are required: the page refuses
    t.wait_text("wizard-6-refused", "marked field")
    t.type("files")  # and Enter moves on to the next field just as promptly
    t.keys("Enter")
    t.type("filesuser")
    typed = t.wait_for("wizard-6-typed", shows("files", "filesuser"))
    assert "filesfilesuser" not in typed
    t.keys("C-n")
    preview = t.wait_text("preview", "policies.json")
    assert fake_consul.management_token not in preview
    assert [r for r in fake_consul.log if r.method != "GET"] == []  # the preview only reads
    check_colours(t, t.capture(escapes=True))

    # A bigger window redraws to fill it, and back to 80×24 again.
    t.tmux("resize-window", "-t", "main", "-x", "100", "-y", "30")
    big = t.wait_for("resized-100x30", lambda s: _fills(s, 100, 30))
    assert "policies.json" in big
    t.tmux("resize-window", "-t", "main", "-x", str(WIDTH), "-y", str(HEIGHT))
    small = t.wait_for("resized-80x24", lambda s: _fills(s, WIDTH, HEIGHT)
                       and max(map(len, s.splitlines())) <= WIDTH)
    assert "policies.json" in small

    # Escape from the preview goes back to the last page promptly.
    t.keys("Escape")
    t.wait_for("preview-back", page_title(6, "Database"), timeout=ESCAPE_GUARD)


def _fills(screen: str, width: int, height: int) -> bool:
    """The app has redrawn for width×height: its footer on the last row, a line as wide."""
    lines = screen.rstrip("\n").split("\n")
    return (len(lines) == height and "Quit" in lines[-1]
            and any(len(line.rstrip()) > WIDTH for line in lines) == (width > WIDTH))


def check_colours(t: Terminal, ansi: str) -> None:
    """NO_COLOR: no colour at all; TERM=linux: only the 16 colours; xterm-256color: the
    extended palette. Never a replacement character for a box or block glyph."""
    text = t.capture()
    assert "\ufffd" not in text and "?" * 3 not in text
    colours = colour_params(ansi)
    if t.case.no_color:
        assert colours == [], f"NO_COLOR screen still sets colours: {sorted(set(colours))}"
    elif t.case.term == "linux":
        assert colours, "TERM=linux should still have the 16 colours"
        extended = [c for c in colours if c.startswith(("38", "48"))]
        assert extended == [], f"TERM=linux got 256/true colours: {sorted(set(extended))}"
    else:
        assert any(c.startswith(("38;5", "48;5", "38;2", "48;2")) for c in colours)


# ---------------------------------------------------------------------- a dropped link


def test_apply_survives_the_dropped_link_and_a_new_login_attaches(
        sshd: Sshd, tmp_path: Path, fake_consul: FakeConsul) -> None:
    """The operator applies carbonio from the TUI over ssh; mid-apply the ssh client dies
    (the link drops). The run goes on; the operator logs in again, home shows it
    running, Enter attaches with the log so far, and it ends done, every request made.

    The fake Consul is made slow at two points: it holds the policy's creation (the
    link drops there) and the catalog registration (still held at the second login)."""
    case = CASES[0]
    answers = tmp_path / "answers.yaml"
    answers.write_text(json.dumps({
        "consul_url": fake_consul.url, "external_address": "db.example.com",
        "external_port": closed_port(), "db_name": "files", "db_username": "filesuser"}))
    root, state = tmp_path / "root", tmp_path / "state"
    policy = fake_consul.hold("PUT", "/v1/acl/policy")
    register = fake_consul.hold("PUT", "/v1/catalog/register")
    slow = {"CLOUDRIG_HTTP_TIMEOUT": "900"}  # the held calls must not time out
    first = login(sshd, tmp_path, case, fake_consul, "wizard", "carbonio", "--answers",
                  str(answers), "--root", str(root), **slow)
    try:
        first.wait_for("drop-wizard", page_title(1, "Consul access"))
        for number in range(2, 7):
            first.keys("C-n")
            first.wait_for(f"drop-wizard-{number}", lambda text, n=number: f"{n}/6 " in text)
        first.keys("C-n")
        first.wait_text("drop-preview", "Press a to apply")
        first.keys("a")
        first.wait_text("drop-applying", "ACL policy")
        assert policy.wait(DEADLINE), "the apply never reached the policy"
        first.wait_text("drop-background", "Applying in the background (pid")
        # The link drops: the ssh client (and the shell tmux started it from, the pane's
        # process group) is killed outright.
        pane = int(first.tmux("display-message", "-p", "-t", "main", "#{pane_pid}"))
        os.killpg(pane, signal.SIGKILL)
        first.wait_for("drop-dropped", lambda text: first.tmux(
            "display-message", "-p", "-t", "main", "#{pane_dead}").strip() == "1")
    finally:
        first.close()
    pid = json.loads((state / "carbonio.json").read_text())["last_run"]["pid"]
    policy.release()
    assert register.wait(DEADLINE), "the run did not go on after the link dropped"

    second = login(sshd, tmp_path, case, fake_consul, **slow)
    try:
        second.wait_for("again-home", lambda text: re.search(r"carbonio .* running", text)
                        is not None)
        second.keys("Enter")
        # The whole run so far, from before this login: steps done, the one held running.
        marks = (r"✓ ACL policy +done", r"◇ Gateway token +staged",
                 r"▶ External service +running")
        second.wait_for("again-attached", lambda text: f"(pid {pid})" in text and all(
            re.search(mark, text) for mark in marks), timeout=RUN_DEADLINE)
        register.release()
        done = second.wait_text("again-done", "Done:", timeout=RUN_DEADLINE)
        assert fake_consul.management_token not in done
        second.keys("Escape")
        second.wait_for("again-home-done", lambda text: re.search(r"carbonio .* 5/10 · ", text)
                        is not None)
    finally:
        second.close()
    saved = json.loads((state / "carbonio.json").read_text())
    assert saved["last_run"]["outcome"] == "done" and saved["last_run"]["pid"] == pid
    assert len(fake_consul.kv) == 3  # the rest of the run's requests reached Consul
    assert [r for r in fake_consul.log if r.path == "/v1/config" and r.method == "PUT"]
    assert len([r for r in fake_consul.log if r.path == "/v1/catalog/register"]) == 1


REVERSE = re.compile(r"\x1b\[(?:[0-9]*;)*7(?:;[0-9]*)*m")


def focused_is_visible(t: Terminal, title: str, value: str) -> None:
    """Without colour, the focused field still stands out: its title in reverse video,
    and the text cursor a reversed cell on its value's line (issue 18, point 9)."""
    if not t.case.no_color:
        return
    lines = t.capture(escapes=True).splitlines()

    def before(line: str, text: str) -> str:  # what sets the style of TEXT on its line
        return line[:line.index(text)]

    title_line = next(line for line in lines if title in line)
    assert REVERSE.search(before(title_line, title)), \
        f"the focused field's title is not marked: {title_line!r}"
    value_line = next(line for line in lines if value in line)
    inside = value_line[value_line.index(value):value_line.index("▎", value_line.index(value))]
    assert REVERSE.search(inside), f"no visible cursor in the focused field: {value_line!r}"
    other = next(line for line in lines if "Consul CA bundle" in line)  # not focused
    assert not REVERSE.search(before(other, "Consul CA bundle")), other


# ---------------------------------------------------------------------- every word


BOX = "│╭╮╰╯─┌┐└┘┃━▔▁▂▃▄▅▆▇█▉▊▋▌▍▎▏"  # borders, scrollbar thumbs


def squeezed(screens: list[str]) -> str:
    """Every row of the captured screens, without box lines and spaces, end to end: a
    long word folded over two rows reads whole again."""
    return "".join(re.sub(rf"[{BOX}\s]", "", line) for text in screens
                   for line in text.splitlines())


def logged_messages(state: Path) -> list[str]:
    """The messages of the run's events, from CloudRig's own log (what the screen logs)."""
    found = []
    for line in (state / "cloudrig.log").read_text().splitlines():
        match = re.match(r"\S+ carbonio (\w+) (?:\[[\w-]+\] )?(.*)$", line)
        if match and match.group(1) != "poll":
            found.append(match.group(2))
    return found


def boxed(text: str) -> str:
    """The rows inside the first box on screen (between its ╭ and ╰ lines)."""
    rows = text.splitlines()
    top = next(i for i, row in enumerate(rows) if row.lstrip().startswith("╭"))
    bottom = next(i for i, row in enumerate(rows) if i > top and row.lstrip().startswith("╰"))
    return "\n".join(rows[top + 1:bottom])


def scroll_through(t: Terminal, label: str, key: str, limit: int = 40) -> list[str]:
    """Press KEY until the screen stops changing; every screen seen on the way."""
    seen = [t.settle(f"{label}-0")]
    for step in range(1, limit):
        t.keys(key)
        text = t.settle(f"{label}-{step}")
        if text == seen[-1]:
            return seen
        seen.append(text)
    raise AssertionError(f"{label}: {key} never reached the end")


@pytest.fixture
def applying(sshd: Sshd, tmp_path: Path, fake_consul: FakeConsul) -> Iterator[Terminal]:
    """`cloudrig wizard carbonio --answers FILE --root DIR` over ssh (xterm-256color)."""
    from cli_rig import closed_port, write_answers

    answers = write_answers(tmp_path / "answers.yaml", consul_url=fake_consul.url,
                            external_port=closed_port())
    term = login(sshd, tmp_path, CASES[0], fake_consul, "wizard", "carbonio", "--answers",
                 str(answers), "--root", str(tmp_path / "root"))
    try:
        yield term
    finally:
        term.close()


def test_every_logged_word_and_every_detail_is_on_screen(
        applying: Terminal, tmp_path: Path, fake_consul: FakeConsul) -> None:
    """Apply in the real terminal at 80×24: every word of every line the run logged is
    on screen (scrolling the log), every word of every dashboard detail too (scrolling
    the table); under 80×24 a notice replaces the clipped screen."""
    t = applying
    t.wait_for("wizard-1", page_title(1, "Consul access"))
    for number in range(2, 7):
        t.keys("C-n")
        t.wait_for(f"wizard-{number}", lambda s, n=number: f"{n}/6 " in s)
    t.keys("C-n")
    t.wait_text("preview", "Press a to apply")
    t.keys("a")
    t.wait_text("applied", "Done:", timeout=90)

    t.keys("Home")
    screens = scroll_through(t, "log", "PageDown")
    # The log box's rows alone, screen after screen: a word folded over the last row of
    # one page and the first of the next reads whole again.
    shown = squeezed([boxed(text) for text in screens])
    messages = logged_messages(tmp_path / "state")
    assert len(messages) > 20, messages
    for message in messages:
        for word in message.split():
            assert word in shown, f"{word!r} of the logged line {message!r} is not on screen"

    # The dashboard: every check's detail, word for word, as `status --json` gives it.
    t.keys("d")
    screens = [t.wait_text("dashboard", "checked again", "Service user and group")]
    for row in range(1, 10):  # the cursor down every row: the table scrolls to show it
        before = t.capture(escapes=True)
        t.keys("Down")
        t.wait_for(f"dashboard-row-{row}", lambda _s, b=before: t.capture(escapes=True) != b)
        screens.append(t.settle(f"dashboard-row-{row}-settled"))
    # The Detail column alone (a long title wraps in its own column, beside it).
    column = next(line.index("Detail") for line in screens[0].splitlines()
                  if "Detail" in line and "Status" in line)
    shown = squeezed(["\n".join(line[column:] for line in text.splitlines()[3:-1])
                      for text in screens])
    env = {**os.environ, "CLOUDRIG_STATE_DIR": str(tmp_path / "state"),
           "CLOUDRIG_SECRETS_BACKEND": "file", "HOME": str(tmp_path / "home"),
           "CLOUDRIG_SECRET_CONSUL_TOKEN": fake_consul.management_token,
           "CLOUDRIG_SECRET_DB_PASSWORD": "ssh-test-db-Pa55"}
    status = run_in_process(env, ["status", "carbonio", "--json"])  # no TTY, no fork
    import json

    details = [s["detail"] for s in json.loads(status.stdout)["steps"]]
    assert len(details) == 10
    for detail in details:
        for word in detail.split():
            assert word in shown, f"{word!r} of the detail {detail!r} is not on screen"

    # Under 80×24: a notice instead of a clipped dashboard; back at size, the dashboard.
    t.tmux("resize-window", "-t", "main", "-x", "60", "-y", "18")
    small = t.wait_text("too-small", "Terminal too small: 60×18")
    assert "ctrl+q quits" in small and "checked again" not in small
    t.tmux("resize-window", "-t", "main", "-x", str(WIDTH), "-y", str(HEIGHT))
    t.wait_text("back-to-size", "checked again")
