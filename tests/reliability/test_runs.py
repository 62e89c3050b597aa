"""One run at a time, no lost update of state, and signals, on a shared host.

Each test holds the first apply at one exact request to the fake Consul (the catalog
registration of the external service, after the policy and both tokens) and acts
while it waits there: a second apply, a `confirm`, a signal. Nothing waits on time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from cli_rig import Cli
from fakes.consul import FakeConsul

REGISTER = "/v1/catalog/register"
POLICY = "carbonio-gateway-policy"


# A held request must not time out in the client while the test acts (on 2 loaded
# cores a second `cloudrig` takes many seconds to start): the read deadline is lifted.
HELD = {"CLOUDRIG_HTTP_TIMEOUT": "900"}


def start_apply(cli: Cli, answers: Path, root: Path, *extra: str) -> subprocess.Popen[str]:
    """`cloudrig apply carbonio` in the background (a second operator's terminal)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "apply", "carbonio", "--answers", str(answers),
         "--root", str(root), "--yes", *extra],
        cwd=cli.cwd, env={**cli.env, **HELD}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def state(cli: Cli) -> dict:
    return json.loads((cli.state / "carbonio.json").read_text())


def gateway_tokens(consul: FakeConsul) -> list[dict]:
    policy = consul.policy_named(POLICY)
    assert policy is not None
    return [t for t in consul.tokens.values()
            if any(link.get("ID") == policy["ID"] or link.get("Name") == POLICY
                   for link in t.get("Policies") or [])]


def test_a_second_run_is_refused_at_once_naming_the_first(
        process_cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path) -> None:
    """Two operators' runs at once: both are processes (the lock is between processes),
    the second one through the real entry point, its exit status the process's."""
    cli = process_cli
    root = tmp_path / "root"
    hold = consul.hold("PUT", REGISTER)
    first = start_apply(cli, answers_file, root)
    try:
        assert hold.wait(600)
        # The first run's write in flight, as the sweep of a second run would find it.
        config = root / "etc/carbonio/gateway/service-discover"
        inflight = config / ".gateway-config.hcl.in-flight.tmp"
        inflight.write_text("half a file")
        requests = len(consul.log)
        started = datetime.fromisoformat(state(cli)["last_run"]["started"])
        expected = (f"another cloudrig (pid {first.pid}, started "
                    f"{started.astimezone():%H:%M}) is applying carbonio; wait for it to "
                    "finish")

        for args in (("apply", "carbonio", "--answers", str(answers_file), "--root",
                      str(root), "--yes"),
                     ("teardown", "carbonio", "--answers", str(answers_file), "--root",
                      str(root), "--yes")):
            second = cli(*args, timeout=600)  # at once: the first is still held
            assert second.returncode == 1, second.output
            assert expected in second.stderr, second.stderr
            assert "Traceback" not in second.stderr
        assert len(consul.log) == requests, "the refused runs called Consul"
        assert inflight.exists(), "a refused run swept the first run's temp file"
    finally:
        hold.release()
        _out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert len(gateway_tokens(consul)) == 1
    assert state(cli)["last_run"]["outcome"] == "done"


def test_the_temp_file_sweep_runs_only_under_a_lock(tmp_path: Path) -> None:
    """The temp-file sweep runs only under a lock: without one, a temp file beside a
    target may be another run's write in flight, and stays."""
    from tui.atomic import atomic_write
    from tui.runlock import brief_lock

    target = tmp_path / "x.json"
    stale = tmp_path / ".x.json.abc.tmp"
    stale.write_text("in flight")
    atomic_write(target, b"{}", 0o600)
    assert stale.exists()
    with brief_lock(tmp_path, "x"):
        atomic_write(target, b"{}", 0o600)
    assert not stale.exists()


def test_a_confirmation_made_during_an_apply_survives_it(
        cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path) -> None:
    hold = consul.hold("PUT", REGISTER)
    first = start_apply(cli, answers_file, tmp_path / "root")
    try:
        assert hold.wait(600)
        confirmed = cli("confirm", "carbonio", "pending-setups", timeout=600)
        assert confirmed.returncode == 0, confirmed.output
        assert "pending-setups" in state(cli)["confirmations"]
    finally:
        hold.release()
        _out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    after = state(cli)
    assert "pending-setups" in after["confirmations"], "the apply erased the confirmation"
    assert after["last_run"]["outcome"] == "done"
    assert after["steps"]["kv"]["status"] == "done"  # and the apply's own records are there
    status = json.loads(cli("status", "carbonio", "--json").stdout)
    assert {s["step"]: s["status"] for s in status["steps"]}["pending-setups"] == "done"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_stops_the_run_at_a_safe_point_and_records_it(
        cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path, how: str) -> None:
    root = tmp_path / "root"
    hold = consul.hold("PUT", REGISTER)
    first = start_apply(cli, answers_file, root)
    try:
        assert hold.wait(600)
        running = state(cli)["last_run"]
        assert (running["outcome"], running["pid"], running["host"]) == (
            "running", first.pid, socket.gethostname())
        live = cli("status", "carbonio")
        assert re.search(rf"last run +apply running \(pid {first.pid} on "
                         rf"{re.escape(socket.gethostname())} since \d\d:\d\d\)", live.stdout), \
            live.stdout
        first.send_signal(getattr(signal, how))
    finally:
        hold.release()  # the registration under way completes: a safe point follows it
        _out, err = first.communicate(timeout=600)
    assert first.returncode == 130, err
    assert "Traceback" not in err
    run = state(cli)["last_run"]
    assert run["outcome"] == "interrupted"
    assert run["failed_step"] == "gateway-config"  # stopped before the next step began
    assert run["message"].startswith(f"interrupted by {how}")
    assert run["message"].endswith("rerun to resume")
    assert f"gateway-config: interrupted by {how}" in err
    assert len([r for r in consul.log if r.path == REGISTER]) == 1  # it finished that call
    assert not (root / "etc/carbonio/gateway/service-discover/gateway-config.hcl").exists()
    shown = cli("status", "carbonio")
    assert f"last run apply interrupted at gateway-config: interrupted by {how}" in \
        re.sub(" +", " ", shown.stdout)

    resumed = cli("apply", "carbonio", "--answers", str(answers_file), "--root", str(root),
                  "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert "External service: done in the interrupted run" in resumed.stderr
    assert len([r for r in consul.log if r.path == REGISTER]) == 1
    assert len(gateway_tokens(consul)) == 1


def test_a_killed_run_reads_interrupted_not_running(
        cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path) -> None:
    hold = consul.hold("PUT", REGISTER)
    first = start_apply(cli, answers_file, tmp_path / "root")
    try:
        assert hold.wait(600)
        first.kill()
        first.wait(timeout=600)
    finally:
        hold.release()
    assert state(cli)["last_run"]["outcome"] == "running"  # it could not record its end
    report = json.loads(cli("status", "carbonio", "--json").stdout)
    assert report["last_run"]["outcome"] == "interrupted"
    assert report["last_run"]["detail"].startswith("apply interrupted after gateway-token: "
                                                   f"its process (pid {first.pid} on")
    text = cli("status", "carbonio").stdout
    assert "interrupted" in text and "running" not in text
    # and the lock died with it: the next run goes ahead and resumes
    again = cli("apply", "carbonio", "--answers", str(answers_file), "--root",
                str(tmp_path / "root"), "--yes")
    assert again.returncode == 0, again.stderr
    assert "Gateway token: done in the interrupted run" in again.stderr
    assert os.path.exists(cli.state / "carbonio.lock")


def _descriptors(server_port: int) -> dict[str, str]:
    """This process's open fds and what each is, but the fake server's own sockets
    (local port SERVER_PORT: its threads close them when they will)."""
    sockets = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
        sockets[f"socket:[{fields[9]}]"] = (local, remote)
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            what = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed since
            continue
        if sockets.get(what, (0, 0))[0] == server_port:
            continue
        found[fd] = f"{what} {sockets.get(what, '')}"
    return found


def test_an_in_process_run_leaves_no_fd_handler_thread_or_lock_behind(
        cli: Cli, answers_file: Path, consul: FakeConsul, tmp_path: Path) -> None:
    """The TUI runs applies in its own long-lived process, as the tests' in-process CLI
    does: a run must give back every descriptor (lock, journal, HTTP connections),
    the signal handlers it installed and its threads, and leave no lock held."""
    import threading
    from urllib.parse import urlsplit

    from tui.runlock import running

    port = urlsplit(consul.url).port
    assert port
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def threads() -> set[threading.Thread]:  # but the fake's request threads
        return {t for t in threading.enumerate()
                if not t.name.endswith("(process_request_thread)")}

    root = tmp_path / "root"
    args = ("apply", "carbonio", "--answers", str(answers_file), "--root", str(root), "--yes")
    assert cli(*args).returncode == 0  # first imports, caches and the like are made
    fds = _descriptors(port)
    handlers = [signal.getsignal(s) for s in stopping]
    before = threads()
    for command in (args, ("teardown", "carbonio", "--answers", str(answers_file), "--root",
                           str(root), "--yes"), args):
        done = cli(*command)
        assert done.returncode == 0, done.output
        now = _descriptors(port)
        assert now == fds, f"{command[0]} left {set(now.items()) - set(fds.items())}"
        assert [signal.getsignal(s) for s in stopping] == handlers, \
            f"{command[0]} left a signal handler installed"
        assert threads() == before, f"{command[0]} left a thread running"
        assert running(cli.state, "carbonio") is None, f"{command[0]} left its lock held"
