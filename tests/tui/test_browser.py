"""`cloudrig serve` in a real headless Chromium: the page an operator opens in a browser.

The server is the real subprocess (`python -m tui serve`, textual-serve, one app per
page over a websocket); Chromium is Debian's, driven by selenium through chromedriver.
Keys are real keyboard events sent to xterm.js, and the screen is read from xterm.js'
own buffer, so what is asserted is what the page shows. Screenshots are kept under
$CLOUDRIG_ARTIFACTS/browser (default: <repo>/artifacts/browser).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cli_rig import artifacts_dir, base_env, closed_port, files_under
from fakes.consul import FakeConsul

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:  # the [test] extra is not installed: the browser tests skip (fail in CI)
    webdriver = None

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SECRET = "S3cret-Sauce-42"
TIMEOUT = 30.0  # seconds for one screen to appear (2 shared cores, a Textual app per page)

# The network here is closed: these flags keep Chromium from waiting on it, and the
# resolver rule fails every name but 127.0.0.1 at once, so nothing could leave the
# machine (test_the_page_loads_nothing_from_elsewhere checks nothing tries).
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,800", "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)

# textual-serve keeps its xterm.js Terminal in a closure. Before the page's script runs,
# a setter on Object.prototype catches the object that assigns `unicode11Addon` (its
# terminal wrapper, which assigned `terminal` just before) and exposes the Terminal.
CAPTURE_TERMINAL = """
Object.defineProperty(Object.prototype, 'unicode11Addon', {configurable: true, set(v) {
  Object.defineProperty(this, 'unicode11Addon',
                        {value: v, writable: true, configurable: true, enumerable: true});
  window.__cloudrigTerminal = this.terminal;
}});
"""
# The visible rows of the terminal, as text.
READ_SCREEN = """
const t = window.__cloudrigTerminal;
if (!t) return null;
const b = t.buffer.active, rows = [];
for (let y = 0; y < t.rows; y++) {
  const line = b.getLine(b.viewportY + y);
  rows.push(line ? line.translateToString(true) : '');
}
return rows.join('\\n');
"""
CURSOR = "const b = window.__cloudrigTerminal.buffer.active; return [b.cursorX, b.cursorY];"
# The background of the first cell whose text is arguments[0], as xterm.js stores it.
CELL_BACKGROUND = """
const t = window.__cloudrigTerminal, b = t.buffer.active;
for (let y = 0; y < t.rows; y++) {
  const line = b.getLine(b.viewportY + y), x = line.translateToString(true).indexOf(arguments[0]);
  if (x >= 0) {
    const cell = line.getCell(x);
    return {rgb: cell.isBgRGB(), palette: cell.isBgPalette(), color: cell.getBgColor()};
  }
}
return null;
"""


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(url: str, **headers: str) -> Fetched:
    """One GET with exactly these headers (Host and Cookie included), no redirects."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                           headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = connection.getresponse()
        return Fetched(response.status, {k.lower(): v for k, v in response.getheaders()},
                       response.read())
    finally:
        connection.close()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (no image library needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port` (from /proc/net/tcp*)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6,
                                       words))
    return found


@dataclass
class Served:
    """A running `cloudrig serve`: its URL, port, output files and private dirs."""

    process: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    state: Path
    home: Path
    token: str = ""  # from the URL serve printed (read once it listens)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        """The URL serve printed: the page, with this start's token."""
        return f"{self.base}?token={self.token}"

    @property
    def cookie(self) -> str:
        return f"cloudrig-token-{self.port}={self.token}"


def start_serve(tmp_path: Path, *args: str, **env: str) -> Served:
    """`python -m tui serve ARGS --port FREE` with a private HOME, state dir and the
    encrypted-file secret store (conftest's CLI environment) plus ENV, in its own
    process group so that stopping it also stops the app processes textual-serve
    started."""
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir(exist_ok=True)
    port = closed_port()
    stdout, stderr = tmp_path / f"serve-{port}.out", tmp_path / f"serve-{port}.err"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "tui", "serve", "--port", str(port), *args],
            env=base_env(home, state) | env, cwd=tmp_path, stdin=subprocess.DEVNULL,
            stdout=out, stderr=err, start_new_session=True)
    return Served(process, port, stdout, stderr, state, home)


TOKEN_LINE = re.compile(r"^serving CloudRig on http://\S+?:(\d+)/\?token=([A-Za-z0-9_-]+) "
                        r"\(Ctrl\+C stops\)$", re.M)


def wait_listening(served: Served) -> None:
    """Until the server accepts connections on 127.0.0.1 (or fails: then its stderr);
    then the token is read from the one line that printed it."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(f"serve exited {served.process.returncode}: "
                        f"{served.stderr.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", served.port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail(f"serve did not listen on {served.port}: {served.stderr.read_text()}")
    found = TOKEN_LINE.findall(served.stderr.read_text())
    assert len(found) == 1 and found[0][0] == str(served.port), served.stderr.read_text()
    served.token = found[0][1]


def stop(served: Served) -> None:
    """SIGTERM to the whole group (server and apps), SIGKILL if it lingers."""
    try:
        os.killpg(served.process.pid, signal.SIGTERM)
        served.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(served.process.pid, signal.SIGKILL)
        served.process.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = start_serve(tmp_path)
    try:
        wait_listening(server)
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the gate's tests, which only send HTTP requests (no session, no
    app, nothing written): each asks what it needs of the same running server."""
    server = start_serve(tmp_path_factory.mktemp("gate"))
    try:
        wait_listening(server)
        yield server
    finally:
        stop(server)


class Page:
    """The served page in Chromium: read the terminal's text, type on its keyboard."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def open(self, url: str) -> None:
        """Load the page, press textual-serve's Start button if it shows one, and click
        the terminal so that it has the keyboard (as an operator would)."""
        self.driver.get(url)
        for start in self.driver.find_elements(By.ID, "start"):
            if start.is_displayed():
                start.click()
        self.wait_for(lambda screen: bool(screen.strip()), "any text")
        self.driver.find_element(By.CSS_SELECTOR, ".xterm-screen").click()

    def screen(self) -> str:
        return self.driver.execute_script(READ_SCREEN) or ""

    def wait_for(self, ready: Callable[[str], bool] | str, what: str = "") -> str:
        """The screen once `ready` (a predicate, or text that must appear) holds."""
        test = (lambda screen: ready in screen) if isinstance(ready, str) else ready
        deadline = time.monotonic() + TIMEOUT
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if test(screen):
                return screen
            time.sleep(0.1)
        pytest.fail(f"the page never showed {what or ready!r}; it shows:\n{screen}")

    def type(self, *keys: str) -> None:
        """Keyboard events to whatever has focus (xterm.js' textarea after the click)."""
        ActionChains(self.driver).send_keys(*keys).perform()

    def ctrl(self, key: str) -> None:
        ActionChains(self.driver).key_down(Keys.CONTROL).send_keys(key).key_up(
            Keys.CONTROL).perform()

    def cursor(self) -> tuple[int, int]:
        """The terminal cursor (column, row): Textual puts it in the focused input."""
        return tuple(self.driver.execute_script(CURSOR))  # type: ignore[return-value]

    # Textual runs a binding (Tab, ctrl+n) only after its key has bubbled up to the
    # app, while characters typed after it go straight into the focused input: keys
    # sent faster than a person types would land in the wrong field. So each step
    # waits for its effect on the page before the next one, as an operator's eyes do.

    def enter_text(self, text: str, secret: bool = False) -> None:
        """Type into the focused input; done when the text (or its mask) ends at the cursor."""
        shown = "•" * len(text) if secret else text
        self.type(text)

        def typed(screen: str) -> bool:
            column, row = self.cursor()
            rows = screen.split("\n")
            # Textual leaves the terminal cursor on, or one cell past, the input's cursor.
            before = rows[row][max(column - len(shown) - 1, 0):column] if row < len(rows) else ""
            return before.endswith(shown) or before[:-1].endswith(shown)

        self.wait_for(typed, f"{shown!r} typed at the cursor")

    def field_at_cursor(self, screen: str) -> str:
        """The label of the input holding the cursor: a form field is its label, one or
        two lines of help, the input's top border, then the input's text row."""
        _, row = self.cursor()
        rows = screen.split("\n")
        return "\n".join(rows[max(row - 4, 0):max(row - 1, 0)])

    def wait_for_field(self, label: str) -> None:
        self.wait_for(lambda screen: label in self.field_at_cursor(screen),
                      f"the cursor in the field {label!r}")

    def next_field(self, label: str) -> None:
        """Tab; done when the cursor is in the field called `label`."""
        self.type(Keys.TAB)
        self.wait_for_field(label)

    def next_page(self, shows: str) -> str:
        """ctrl+n; done when the page shows `shows`."""
        self.ctrl("n")
        return self.wait_for(shows)

    def background(self, text: str) -> dict[str, object] | None:
        return self.driver.execute_script(CELL_BACKGROUND, text)

    def screenshot(self, name: str) -> Path:
        path = artifacts_dir("browser") / f"{name}.png"
        path.unlink(missing_ok=True)
        assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        return path


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """Debian's Chromium, headless, with a fresh profile; skipped only where it is not
    installed (scripts/test.sh installs it, and there a skip fails)."""
    if webdriver is None:
        pytest.skip("needs selenium (pip install '.[test]')")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y "
                    "chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                               {"source": CAPTURE_TERMINAL})
        yield Page(driver)
    finally:
        driver.quit()


def assert_screenshot(path: Path, min_width: int = 1000) -> None:
    """A real picture of the page: a PNG of the window's width with some content in it."""
    assert path.is_file(), f"no screenshot at {path}"
    width, height = png_size(path)
    assert width >= min_width and height >= 300, (width, height)
    # A blank 1280×700 PNG compresses to a few kilobytes; a screen full of text does not.
    assert path.stat().st_size > 20_000, f"{path} is nearly empty ({path.stat().st_size} B)"


def test_home_screen_renders_in_chromium(page: Page, served: Served) -> None:
    """The page shows the home screen, coloured, bound to 127.0.0.1 only."""
    assert listening_addresses(served.port) == {"127.0.0.1"}
    page.open(served.url)
    # Waits for the whole table: xterm.js may paint the screen in pieces.
    procedures = ("carbonio", "cloudblue", "cloudstack", "atmosphere", "cloudcasa")
    screen = page.wait_for(lambda s: all(p in s for p in procedures)
                           and "CloudRig · cloud integration runbooks" in s,
                           "the title and every procedure")
    # The page is a larger terminal than 80×24 and the app fills it.
    columns = page.driver.execute_script("return window.__cloudrigTerminal.cols")
    assert columns > 100 and "CloudRig · cloud integration runbooks" in screen
    # NO_COLOR in serve's own environment does not grey out the browser page.
    title = page.background("CloudRig · cloud")
    assert title is not None and (title["rgb"] or title["palette"]), title
    # Clicking the page gave the procedure table the keyboard: Enter is offered.
    page.wait_for("⏎ Wizard", "the footer's Enter binding (the table focused)")
    assert_screenshot(page.screenshot("home"))

    # A smaller window (still 80×24 or more: under it a notice stands in for the
    # screen): xterm.js refits, the app gets the new size and lays out again.
    page.driver.set_window_size(760, 760)
    page.wait_for(lambda _: page.driver.execute_script(
        "return window.__cloudrigTerminal.cols") < columns, "fewer columns after a resize")
    # The footer is drawn on the new last row, with every procedure still listed.
    page.wait_for(lambda s: "⏎ Wizard" in s.split("\n")[-1] and "cloudcasa" in s,
                  "home laid out again, its footer on the last row")
    assert_screenshot(page.screenshot("home-small"), min_width=700)


def test_carbonio_wizard_completes_to_preview_in_chromium(
        page: Page, served: Served) -> None:
    """Every page of the carbonio wizard answered from the browser's keyboard, secrets
    included; the preview lists the files and Consul calls, and no secret is shown."""
    consul = FakeConsul().start()
    try:
        page.open(served.url)
        page.wait_for("⏎ Wizard", "the procedure table focused")
        page.type(Keys.ENTER)
        page.wait_for("1/6 Consul access")
        # The first field has the keyboard with its default selected: typing replaces it.
        # (Textual moves the terminal's cursor into an input only once it changes.)
        page.enter_text(consul.url)
        page.next_field("Consul CA bundle")
        page.next_field("Consul management token")
        page.enter_text(consul.management_token, secret=True)
        page.next_page("2/6")
        page.next_page("3/6")
        page.next_field("Database host")
        page.enter_text("db.example.com")
        for number in (4, 5, 6):
            page.next_page(f"{number}/6")
        # Next on the last page checks every answer: the database name is required (and
        # the password: apply needs it and no store has it), the cursor goes to the first
        # with the message shown in place.
        # The summary and the fields' own messages are painted in separate frames: wait
        # for the whole screen the assertions read.
        page.ctrl("n")
        screen = page.wait_for(lambda s: "Fix the 3 marked fields to continue." in s
                               and "required" in s, "the summary and the fields' messages")
        assert "required" in screen, screen
        page.wait_for_field("Database name")
        page.enter_text("files")
        page.next_field("Database user")
        page.enter_text("filesuser")
        page.next_field("Database password")
        page.enter_text(SECRET, secret=True)
        page.ctrl("n")
        # xterm.js paints the screen in pieces: wait for the whole preview (plan and
        # footer), not just its first line, before reading it.
        screen = page.wait_for(
            lambda s: "Press a to apply" in s and "a Apply" in s
            and "+++ /etc/carbonio/gateway/service-discover/policies.json" in s,
            "the preview's plan with its footer")
        assert "Carbonio Mesh terminating gateway › preview" in screen
        assert re.search(r"\d+ files \(\d+ new, .*\d+ API calls", screen), screen
        assert SECRET not in screen and consul.management_token not in screen
        path = page.screenshot("carbonio-preview")
        assert_screenshot(path)
        # The preview only read from Consul: nothing was created there.
        assert [r for r in consul.log if r.method != "GET"] == []
    finally:
        consul.stop()
    # A preview changes nothing on disk, and the server's output holds no secret.
    assert files_under(served.state) == [] and files_under(served.home) == []
    for output in (served.stdout, served.stderr):
        text = output.read_text(errors="replace")
        assert SECRET not in text and consul.management_token not in text, output


def test_serve_refuses_a_public_address_without_public(tmp_path: Path) -> None:
    """A non-loopback --host without --public: one sentence, exit 2, nothing listens."""
    server = start_serve(tmp_path, "--host", "0.0.0.0")
    try:
        assert server.process.wait(timeout=60) == 2
    finally:
        stop(server)
    message = server.stderr.read_text()
    assert message.count("\n") == 1 and "Traceback" not in message
    assert "refusing to serve on 0.0.0.0: whoever opens the page runs CloudRig" in message
    assert "token would cross the network in clear" in message
    assert "ssh -L 8000:127.0.0.1:8000" in message
    assert listening_addresses(server.port) == set()


def test_serve_public_warns_and_still_needs_the_token(tmp_path: Path) -> None:
    """--public serves on the address asked for, after a warning line on stderr; the
    page still needs the token."""
    server = start_serve(tmp_path, "--host", "0.0.0.0", "--public")
    try:
        wait_listening(server)
        assert listening_addresses(server.port) == {"0.0.0.0"}
        assert fetch(server.base).status == 403
        assert fetch(server.url).status == 302
    finally:
        stop(server)
    lines = server.stderr.read_text().splitlines()
    assert lines[0].startswith("cloudrig: warning: --public: anyone who can reach "
                               f"http://0.0.0.0:{server.port} and has the token runs CloudRig")
    assert "authenticating TLS proxy" in lines[0]
    assert lines[1] == (f"serving CloudRig on http://0.0.0.0:{server.port}/?token="
                        f"{server.token} (Ctrl+C stops)")


def test_serve_rejects_a_port_out_of_range(tmp_path: Path) -> None:
    """A bad --port is named with a good example, before anything is started."""
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    result = subprocess.run([sys.executable, "-m", "tui", "serve", "--port", "70000"],
                            env=base_env(home, state), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "cloudrig: --port 70000 is not a TCP port: use 1-65535, e.g. --port 8000")
    assert not state.exists()


def test_serve_on_a_busy_port_is_one_sentence(tmp_path: Path) -> None:
    """The port already taken: exit 1 and what to do, not aiohttp's traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        home = tmp_path / "home"
        home.mkdir()
        result = subprocess.run(
            [sys.executable, "-m", "tui", "serve", "--port", str(port)],
            env=base_env(home, tmp_path / "state"), capture_output=True, text=True,
            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cloudrig: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "choose a free port with --port" in result.stderr



# ---------------------------------------------------------------- the gate (no browser)


def test_the_token_is_printed_once_and_never_logged(gate: Served) -> None:
    """A fresh 256-bit token in the one URL line; asking for pages, with and without
    it, prints it nowhere again (aiohttp's access log would)."""
    assert len(gate.token) >= 43
    assert fetch(gate.url).status == 302
    assert fetch(gate.base).status == 403
    outputs = gate.stdout.read_text() + gate.stderr.read_text()
    assert outputs.count(gate.token) == 1


def test_the_page_needs_the_token(gate: Served) -> None:
    """No token, a wrong one, or a wrong cookie: 403 and a sentence. The right one in
    the URL becomes an HttpOnly SameSite=Strict cookie and leaves the address bar."""
    for url, headers in ((gate.base, {}),
                         (f"{gate.base}?token=not-{gate.token}", {}),
                         (gate.base, {"Cookie": f"cloudrig-token-{gate.port}=guess"}),
                         (f"{gate.base}download/x", {})):
        refused = fetch(url, **headers)
        assert refused.status == 403, (url, refused)
        assert b"CloudRig refused this request" in refused.body
        assert gate.token.encode() not in refused.body
    welcome = fetch(f"{gate.url}&fontsize=14")
    assert welcome.status == 302 and welcome.headers["location"] == "/?fontsize=14"
    cookie = welcome.headers["set-cookie"]
    assert cookie.startswith(f"{gate.cookie};") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    page = fetch(gate.base, Cookie=gate.cookie)
    assert page.status == 200 and b'id="terminal"' in page.body
    assert gate.token.encode() not in page.body  # the page itself does not show it
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_rebound_host_or_a_foreign_origin_is_refused(gate: Served) -> None:
    """DNS rebinding (a page whose name now resolves to 127.0.0.1 sends its own Host)
    and another site's page (its Origin) are refused, even with the token."""
    host = f"127.0.0.1:{gate.port}"
    assert fetch(gate.base, Cookie=gate.cookie, Host=f"attacker.example:{gate.port}"
                 ).status == 403
    assert fetch(gate.url, Host=f"attacker.example:{gate.port}").status == 403
    assert fetch(gate.base, Cookie=gate.cookie, Host="127.0.0.1:1").status == 403
    assert fetch(gate.base, Cookie=gate.cookie, Origin="http://attacker.example"
                 ).status == 403
    assert fetch(gate.base, Cookie=gate.cookie, Origin=f"http://{host}",
                 Host=host).status == 200
    # Every loopback name of this port is this server.
    assert fetch(gate.base, Cookie=gate.cookie, Host=f"localhost:{gate.port}"
                 ).status == 200


def _descendants(pid: int) -> list[int]:
    """Every process below PID (textual-serve's shell and the app it runs)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _app_environments(pid: int) -> list[bytes]:
    environments = []
    for child in _descendants(pid):
        try:
            if b"tui" in Path(f"/proc/{child}/cmdline").read_bytes():
                environments.append(Path(f"/proc/{child}/environ").read_bytes())
        except OSError:
            continue
    return environments


async def _websocket(served: Served, **headers: str) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                f"ws://127.0.0.1:{served.port}/ws?width=80&height=24", headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        try:
            # The app's first screen bytes: it runs, with the environment serve gave it.
            message = await asyncio.wait_for(ws.receive(), TIMEOUT)
            assert message.type == aiohttp.WSMsgType.BINARY, message
            deadline = time.monotonic() + TIMEOUT
            while not _app_environments(served.process.pid):
                assert time.monotonic() < deadline, "no app process under serve"
                await asyncio.sleep(0.05)
            return _app_environments(served.process.pid)
        finally:
            await ws.close()


SECRET_ENV = {"CLOUDRIG_SECRET_CONSUL_TOKEN": "consul-token-from-serve-env",
              "CLOUDRIG_SECRET_DB_PASSWORD": "db-password-from-serve-env",
              "CLOUDRIG_SECRETS_PASSPHRASE": "store-passphrase-from-serve-env"}


async def test_the_websocket_needs_the_token_and_the_page_origin(tmp_path: Path) -> None:
    """No cookie, a foreign Origin or a rebound Host: the handshake is refused and no
    app starts. With all three right, the app runs without any CLOUDRIG_SECRET_* or
    the store's passphrase from serve's environment (said once, by name)."""
    server = start_serve(tmp_path, **SECRET_ENV)
    try:
        wait_listening(server)
        own = f"http://127.0.0.1:{server.port}"
        assert await _websocket(server, Origin=own) == 403
        assert await _websocket(server, Cookie=server.cookie,
                                Origin="http://attacker.example") == 403
        assert await _websocket(server, Cookie=server.cookie, Origin=own,
                                Host=f"attacker.example:{server.port}") == 403
        assert _app_environments(server.process.pid) == []
        environments = await _websocket(server, Cookie=server.cookie, Origin=own)
    finally:
        stop(server)
    assert environments, "the app never started"
    for environ in environments:
        assert b"CLOUDRIG_STATE_DIR=" in environ  # the app's real environment
        names = [entry.split(b"=", 1)[0] for entry in environ.split(b"\0")]
        assert not [n for n in names if n.startswith(b"CLOUDRIG_SECRET_")
                    or n == b"CLOUDRIG_SECRETS_PASSPHRASE"], names
        for value in SECRET_ENV.values():
            assert value.encode() not in environ
    errors = server.stderr.read_text()
    assert ("cloudrig: served sessions do not get CLOUDRIG_SECRETS_PASSPHRASE, "
            "CLOUDRIG_SECRET_CONSUL_TOKEN, CLOUDRIG_SECRET_DB_PASSWORD from this environment"
            ) in errors
    assert not [v for v in SECRET_ENV.values() if v in errors]


def test_the_page_loads_nothing_from_elsewhere(page: Page, served: Served) -> None:
    """Every request the page makes (fonts included, in Chromium's own network log) goes
    to serve itself; the terminal's font is the Roboto Mono serve ships."""
    page.open(served.url)
    page.wait_for("Carbonio Mesh terminating gateway")
    assert page.driver.execute_script(
        "return document.fonts.check('16px \"Roboto Mono\"')")
    asked = [entry["message"] for entry in page.driver.get_log("performance")]
    urls = set()
    for text in asked:
        message = json.loads(text)["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.add(message["params"]["url"])
    # Network requests only: the browser's own chrome:// pages (its new tab page) are not.
    urls = {u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss")}
    assert urls, "no request was logged"
    local = re.compile(rf"^(http|ws)://127\.0\.0\.1:{served.port}/")
    assert [u for u in urls if not local.match(u)] == [], urls
    assert any(u.endswith("/static/fonts/RobotoMono-VariableFont_wght.ttf") for u in urls)
    assert any(u.startswith(f"ws://127.0.0.1:{served.port}/ws") for u in urls)
