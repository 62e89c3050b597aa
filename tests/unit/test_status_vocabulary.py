"""One vocabulary for where a step stands: apply, state, `status` text and JSON agree.

Staged: under --root a step whose host commands were not run (useradd, systemctl) is
"staged" — not "done" (nothing happened on any host) and not "pending" on this one.
Unknown: a check that cannot run for lack of a secret says "unknown — needs <secret>"
and names it, instead of calling the step failed.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_rig import Cli, statuses

from tui.state import StateStore


def test_steps_whose_host_commands_were_skipped_are_staged_everywhere(
        cli: Cli, answers_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    applied = cli("apply", "carbonio", "--answers", answers_file, "--root", root, "--yes")
    assert applied.returncode == 0, applied.stderr
    # The run's own words: the step is staged, with what is left to do, in the right number.
    assert "[user] Service user and group: staged under --root: 2 host commands to run " \
           "on the target host" in applied.stderr
    assert "[unit] systemd unit: staged under" in applied.stderr
    assert ("staged (host commands not run under --root): user, gateway-token, unit"
            in applied.stderr)

    state = StateStore(cli.state).load("carbonio")
    assert state is not None
    assert state.steps["user"].status == "staged"
    assert state.steps["unit"].status == "staged"
    assert state.steps["policy"].status == "done"  # only API calls and files: done

    report = cli("status", "carbonio", "--json")
    found = statuses(report.stdout)
    assert {k for k, v in found.items() if v == "staged"} == {"user", "gateway-token", "unit"}
    assert found["policy"] == "done"
    text = cli("status", "carbonio")
    assert any(line.split()[:1] == ["staged"] and "Service user and group" in line
               for line in text.stdout.splitlines()), text.stdout
    assert text.returncode == 1  # staged is not done


def test_a_check_without_its_secret_is_unknown_and_names_it(
        cli: Cli, answers_file: Path, tmp_path: Path) -> None:
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", tmp_path / "root",
               "--yes").returncode == 0
    # No token in the environment, no passphrase for the file store, no terminal.
    result = cli("status", "carbonio", "--json", env={"CLOUDRIG_SECRET_CONSUL_TOKEN": ""})
    report = json.loads(result.stdout)
    steps = {s["step"]: s for s in report["steps"]}
    token = steps["management-token"]
    assert token["status"] == "unknown", token
    assert token["needs"] == ["consul_token"]
    assert token["detail"].startswith("needs Consul management token: set "
                                      "CLOUDRIG_SECRET_CONSUL_TOKEN")
    assert "failed" not in {s["status"] for s in report["steps"]}, report["steps"]
    text = cli("status", "carbonio", env={"CLOUDRIG_SECRET_CONSUL_TOKEN": ""})
    assert any(line.split()[:1] == ["unknown"] and "needs Consul management token" in line
               for line in text.stdout.splitlines()), text.stdout
