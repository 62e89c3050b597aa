"""Runs that survive the terminal: `apply --detach`, `attach`, `cancel`, the journal.

Each test holds the detached run at one request to the fake Consul (the external
service's catalog registration) and acts while it waits there: it kills the tmux pane
that started the run, attaches from elsewhere, cancels, reads /proc, SIGKILLs the run.
Nothing waits on time; every wait is for a request, a file or a process to end.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cli_rig import DB_PASSWORD, Cli, closed_port, write_answers
from fakes.consul import FakeConsul
from in_process import run_in_process
from private_cli import PASSPHRASE, assert_no_secret, secret_forms

REGISTER = "/v1/catalog/register"
HELD = {"CLOUDRIG_HTTP_TIMEOUT": "900"}  # a held request must not time out in the client
DEADLINE = 600.0  # seconds any one process or file may take on 2 loaded cores
STEP_TITLES = ("ACL policy", "Management token", "Gateway token", "External service",
               "Terminating gateway config entry", "systemd unit",
               "Database credentials in Consul KV")


def detach(cli: Cli, answers: Path, root: Path, **env: str) -> int:
    """`cloudrig apply carbonio --detach`; the run's pid from what it printed."""
    started = cli("apply", "carbonio", "--answers", str(answers), "--root", str(root),
                  "--yes", "--detach", env={**HELD, **env}, timeout=DEADLINE)
    assert started.returncode == 0, started.output
    found = re.fullmatch(r"applying carbonio as pid (\d+); follow it with: "
                         r"cloudrig attach carbonio\n", started.stdout)
    assert found, started.stdout
    return int(found[1])


def attach(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tui", "attach", *args], cwd=cli.cwd,
                            env=cli.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_gone(pid: int) -> None:
    """Until process PID has ended (it is no child of ours: poll /proc)."""
    from tui.runlock import process_start

    end = time.monotonic() + DEADLINE
    while process_start(pid) is not None:
        assert time.monotonic() < end, f"pid {pid} never ended"
        time.sleep(0.05)


def state(cli: Cli) -> dict:
    return json.loads((cli.state / "carbonio.json").read_text())


def journal(cli: Cli) -> list[dict]:
    path = cli.state / "carbonio.events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux (Debian: tmux)")
def test_detached_apply_outlives_its_pane_and_attach_follows_it(
        cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path) -> None:
    """Proof 2: `apply --detach` from a tmux pane — which asks there for the secret
    store's passphrase, the database password being in the store — then the pane is
    killed; `attach` (no PROC: the one running) prints every step and exits 0 when the
    run ends; a second apply meanwhile is refused by the lock."""
    root = tmp_path / "root"
    stored = cli("secrets", "set", "db_password", input=DB_PASSWORD,
                 env={"CLOUDRIG_SECRETS_PASSPHRASE": PASSPHRASE}, timeout=DEADLINE)
    assert stored.returncode == 0, stored.output
    hold = consul.hold("PUT", REGISTER)
    env_file = tmp_path / "env.sh"  # the pane's environment, the Consul token in it (0600)
    env_file.touch(mode=0o600)
    pane_env = {k: v for k, v in {**cli.env, **HELD}.items()
                if k != "CLOUDRIG_SECRET_DB_PASSWORD"}
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in pane_env.items()))
    said = tmp_path / "said.txt"
    command = (f". {shlex.quote(str(env_file))}; cd {shlex.quote(str(cli.cwd))}; "
               f"{shlex.quote(sys.executable)} -m tui apply carbonio --answers "
               f"{shlex.quote(str(answers_file))} --root {shlex.quote(str(root))} --yes "
               f"--detach > {shlex.quote(str(said))} 2>&1; exec sleep 3600")
    server = f"cloudrig-detach-{uuid.uuid4().hex[:12]}"
    subprocess.run(["tmux", "-L", server, "-f", "/dev/null", "new-session", "-d", "-s", "main",
                    "-x", "80", "-y", "24", command], check=True, timeout=60)
    def pane() -> str:
        return subprocess.run(["tmux", "-L", server, "capture-pane", "-p", "-t", "main"],
                              capture_output=True, text=True, timeout=60).stdout

    try:
        end = time.monotonic() + DEADLINE
        while "CloudRig secret store passphrase:" not in pane():  # asked before detaching
            assert time.monotonic() < end, f"no passphrase prompt: {pane()}"
            time.sleep(0.05)
        assert not said.read_text().strip() and not hold.arrived.is_set()  # nothing yet
        subprocess.run(["tmux", "-L", server, "send-keys", "-t", "main", "-l", PASSPHRASE],
                       check=True, timeout=60)
        subprocess.run(["tmux", "-L", server, "send-keys", "-t", "main", "Enter"], check=True,
                       timeout=60)
        while "follow it with" not in (text := said.read_text() if said.exists() else ""):
            assert time.monotonic() < end, f"apply --detach never said it was applying: {text}"
            assert "cloudrig:" not in text, text
            time.sleep(0.05)
        pid = int(re.search(r"as pid (\d+)", text)[1])  # type: ignore[index]
        assert hold.wait(DEADLINE), "the detached run never reached the registration"
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True, timeout=60)
    from tui.runlock import process_start

    follower = attach(cli)
    try:
        assert process_start(pid) is not None, "the run died with its pane"
        second = cli("apply", "carbonio", "--answers", str(answers_file), "--root", str(root),
                     "--yes", timeout=DEADLINE)
        assert second.returncode == 1, second.output
        assert f"another cloudrig (pid {pid}, started " in second.stderr
        assert "is applying carbonio; wait for it to finish" in second.stderr
        assert process_start(pid) is not None
    finally:
        hold.release()
        _out, err = follower.communicate(timeout=DEADLINE)
    assert follower.returncode == 0, err
    assert err.startswith("carbonio: apply started ") and f"as pid {pid}" in err
    for title in STEP_TITLES:  # applied, or staged: their host commands left under --root
        assert f"{title}: applied" in err or f"{title}: staged under --root" in err, \
            f"attach did not print {title}"
    wait_gone(pid)
    assert state(cli)["last_run"]["outcome"] == "done"
    assert consul.kv["carbonio-files/db-password"] == DB_PASSWORD.encode()  # from the store
    records = journal(cli)
    assert records[0]["type"] == "run" and records[0]["pid"] == pid
    assert records[-1] == {**records[-1], "type": "end", "outcome": "done", "exit_code": 0}
    assert (cli.state / "carbonio.events.jsonl").stat().st_mode & 0o777 == 0o600
    # attach after the end: the whole log again, and the run's code
    again = cli("attach", "carbonio", timeout=DEADLINE)
    assert again.returncode == 0 and "External service: applied" in again.stderr


def test_cancel_stops_the_detached_run_and_the_next_apply_resumes(
        cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path) -> None:
    """Proof 3: `cloudrig cancel` mid-run: the run records interrupted at its next safe
    point, attach exits 130, and the next apply resumes from the interrupted step."""
    root = tmp_path / "root"
    hold = consul.hold("PUT", REGISTER)
    pid = detach(cli, answers_file, root)
    try:
        assert hold.wait(DEADLINE)
        cancelled = cli("cancel", "carbonio", timeout=DEADLINE)
        assert cancelled.returncode == 0, cancelled.output
        assert re.search(rf"asked the carbonio run \(pid {pid}, started \d\d:\d\d\) to stop "
                         "at its next safe point", cancelled.stderr), cancelled.stderr
    finally:
        hold.release()
    follower = attach(cli, "carbonio")
    _out, err = follower.communicate(timeout=DEADLINE)
    assert follower.returncode == 130, err
    assert "gateway-config: interrupted by SIGINT (Ctrl+C or `cloudrig cancel`); rerun to " \
           "resume" in err
    wait_gone(pid)
    run = state(cli)["last_run"]
    assert (run["outcome"], run["failed_step"]) == ("interrupted", "gateway-config")
    assert cli("cancel", "carbonio").returncode == 1  # nothing runs any more

    resumed = cli("apply", "carbonio", "--answers", str(answers_file), "--root", str(root),
                  "--yes", timeout=DEADLINE)
    assert resumed.returncode == 0, resumed.stderr
    assert "External service: done in the interrupted run" in resumed.stderr
    assert "[gateway-config] Terminating gateway config entry" in resumed.stderr
    assert len([r for r in consul.log if r.path == REGISTER]) == 1


def test_no_secret_reaches_the_detached_process_or_its_journal(
        cli: Cli, consul: FakeConsul, tmp_path: Path) -> None:
    """Proof 4: the secrets (one from the environment, one from the passphrase-locked
    file store) reach the run through a pipe: not in its argv, its environment, the
    journal, the state or the log; the run still used both."""
    env = {k: v for k, v in cli.env.items() if k != "CLOUDRIG_SECRET_DB_PASSWORD"}
    env["CLOUDRIG_SECRETS_PASSPHRASE"] = PASSPHRASE
    stored = run_in_process(env, ["secrets", "set", "db_password"], input=DB_PASSWORD,
                            cwd=cli.cwd)
    assert stored.returncode == 0, stored.stderr
    answers = write_answers(tmp_path / "answers.yaml", consul_url=consul.url,
                            external_port=closed_port())
    root = tmp_path / "root"
    secrets = [consul.management_token, DB_PASSWORD, PASSPHRASE]
    hold = consul.hold("PUT", REGISTER)
    started = subprocess.run(
        [sys.executable, "-m", "tui", "apply", "carbonio", "--answers", str(answers),
         "--root", str(root), "--yes", "--detach"], cwd=cli.cwd, env={**env, **HELD},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE)
    assert started.returncode == 0, started.stderr
    pid = int(re.search(r"as pid (\d+)", started.stdout)[1])  # type: ignore[index]
    try:
        assert hold.wait(DEADLINE)
        viewer = attach(cli, "carbonio")  # Ctrl+C stops following, not the run
        assert viewer.stderr is not None
        assert viewer.stderr.readline().startswith("carbonio: apply started ")
        viewer.send_signal(signal.SIGINT)
        _out, stopped = viewer.communicate(timeout=DEADLINE)
        assert viewer.returncode == 130
        assert "stopped following; the carbonio run goes on" in stopped, stopped
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        assert "tui.detach" in cmdline and "CLOUDRIG_STATE_DIR=" in environ
        for form in secret_forms(secrets):
            assert form not in cmdline, "a secret is in the run's argv"
            assert form not in environ, "a secret is in the run's environment"
        assert "CLOUDRIG_SECRET_" not in environ and "CLOUDRIG_SECRETS_PASSPHRASE" not in environ
    finally:
        hold.release()
    follower = attach(cli, "carbonio")
    out, err = follower.communicate(timeout=DEADLINE)
    assert follower.returncode == 0, err
    wait_gone(pid)
    assert consul.kv["carbonio-files/db-password"] == DB_PASSWORD.encode()  # it had both
    scanned = assert_no_secret(secrets, [started.stdout + started.stderr, out + err, stopped],
                               cli.state, root, holders=("token", "secrets.cfg"))
    assert scanned >= 3  # state, journal, log at least
    assert (cli.state / "carbonio.events.jsonl").exists()


def test_a_killed_detached_run_reads_interrupted_everywhere(
        cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path) -> None:
    """Proof 5 (CLI): a run whose process was SIGKILLed is `interrupted` in status and
    attach (exit 130), never running."""
    hold = consul.hold("PUT", REGISTER)
    pid = detach(cli, answers_file, tmp_path / "root")
    try:
        assert hold.wait(DEADLINE)
        live = json.loads(cli("status", "carbonio", "--json").stdout)["last_run"]
        assert live["outcome"] == "running" and live["pid"] == pid
        assert re.fullmatch(rf"apply running \(pid {pid} on \S+ since \d\d:\d\d\)",
                            live["detail"])
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    finally:
        hold.release()
    report = json.loads(cli("status", "carbonio", "--json").stdout)["last_run"]
    assert report["outcome"] == "interrupted", report
    assert f"its process (pid {pid} on" in report["detail"]
    follower = attach(cli)  # no PROC, none running: the last one to run
    _out, err = follower.communicate(timeout=DEADLINE)
    assert follower.returncode == 130, err
    assert f"the run (pid {pid} on" in err and "ended without recording how" in err


async def test_the_dashboard_and_home_tell_a_live_run_from_a_dead_one(
        cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Proof 5 (TUI): the dashboard says `running (pid N on HOST since HH:MM)` while the
    run lives; once it was SIGKILLed, home and the dashboard say interrupted."""
    from textual.pilot import Pilot
    from textual.widgets import Static

    from screens.dashboard import DashboardScreen
    from screens.home import HomeScreen
    from screens.procedure_table import ProcedureTable
    from screens.workspace import saved_run
    from tui.app import CloudRigApp
    from tui.registry import get_procedure
    from tui.state import StateStore

    for name, value in cli.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLOUDRIG_REFRESH", "0")
    hold = consul.hold("PUT", REGISTER)
    pid = detach(cli, answers_file, tmp_path / "root")
    procedure = get_procedure("carbonio")

    async def dashboard_summary(app: CloudRigApp, pilot: Pilot) -> str:
        """The dashboard's summary once its checks have been shown."""
        saved = saved_run(app.workspace.store, procedure)
        await app.push_screen(DashboardScreen(app.workspace, procedure, saved.answers,
                                              saved.root, saved.problem))
        for _ in range(2000):  # the checks' worker, then its result message
            await app.workers.wait_for_complete()
            await pilot.pause()
            summary = str(app.screen.query_one("#dash-summary", Static).content)
            if re.match(r"\d+/\d+", summary):  # the counts: the checks are shown
                return summary
        raise AssertionError(f"the dashboard never showed its checks: {summary}")

    try:
        assert hold.wait(DEADLINE)
        app = CloudRigApp(store=StateStore(cli.state))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            summary = await dashboard_summary(app, pilot)
            assert re.search(rf"Last run: apply running \(pid {pid} on \S+ since "
                             r"\d\d:\d\d\)", summary), summary
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    finally:
        hold.release()
    app = CloudRigApp(store=StateStore(cli.state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert str(app.screen.query_one(ProcedureTable).rows[0].state) == "interrupted"
        summary = await dashboard_summary(app, pilot)
        assert "Last run: apply interrupted after gateway-token: its process (pid " \
               f"{pid} on" in summary, summary
        assert "running" not in summary
