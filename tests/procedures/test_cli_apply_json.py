"""`cloudrig apply --json` (the machine summary automation reads) and `--version`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from cli_rig import DB_PASSWORD, REPO, after_root_apply, closed_port, write_answers

from tui import __version__


def _apply_json(cli, answers: Path, root: Path, *extra: str) -> dict:
    done = cli("apply", "carbonio", "--answers", answers, "--root", root, "--yes", "--json",
               *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # progress goes to stderr: stdout is the JSON only


def test_apply_json_says_changed_then_unchanged(cli, answers_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = _apply_json(cli, answers_file, root)
    assert first["procedure"] == "carbonio" and first["outcome"] == "done"
    assert first["exit_code"] == 0 and first["failed_step"] is None
    assert first["changed"] is True
    steps = {s["step"]: s for s in first["steps"]}
    assert steps["policy"] == {"step": "policy", "before": "pending", "after": "done"}
    assert all(s["after"] == after_root_apply(s["step"]) for s in first["steps"]), first["steps"]

    second = _apply_json(cli, answers_file, root)
    assert second["changed"] is False, [s for s in second["steps"] if s["before"] != s["after"]]
    assert all(s["before"] == s["after"] for s in second["steps"])
    for run in cli.runs:
        assert DB_PASSWORD not in run.output


def test_apply_json_dry_run_changes_nothing(cli, answers_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    summary = _apply_json(cli, answers_file, root, "--dry-run")
    assert summary["changed"] is False
    assert {s["before"] for s in summary["steps"]} >= {"pending"}
    assert not root.exists()


def test_apply_json_failure_is_in_the_summary(cli, tmp_path: Path, consul,
                                             backoff_waits: list[float]) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    answers = write_answers(tmp_path / "answers.yaml", consul_url=dead)
    done = cli("apply", "carbonio", "--answers", answers, "--root", tmp_path / "root",
               "--yes", "--json")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["outcome"] == "failed" and summary["exit_code"] == 1
    assert summary["failed_step"] and dead in summary["message"]
    assert summary["changed"] is False
    assert "Traceback" not in done.stderr
    # The dead endpoint was retried with backoff before the sentence (the waits are
    # recorded, not slept: tests/procedures/conftest.py).
    assert backoff_waits and all(wait > 0 for wait in backoff_waits)


def test_version_is_the_package_version(cli) -> None:
    done = cli("--version")
    assert done.returncode == 0, done.stderr
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert done.stdout.strip() == f"cloudrig {__version__}"
    if "version" in project:
        assert __version__ == project["version"]
