"""`cloudrig confirm PROC STEP`: the operator's word for a manual step, kept in state."""

from __future__ import annotations

import json
import os
import subprocess

from in_process import run_in_process


def _cli(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDRIG_")}
    env.update(CLOUDRIG_STATE_DIR=str(tmp_path / "state"), NO_COLOR="1")
    return run_in_process(env, args)


def test_confirm_records_the_time_and_undo_withdraws_it(tmp_path):
    result = _cli(tmp_path, "confirm", "carbonio", "pending-setups")
    assert result.returncode == 0, result.stderr
    assert "pending-setups: confirmed 20" in result.stderr
    state = json.loads((tmp_path / "state" / "carbonio.json").read_text())
    assert list(state["confirmations"]) == ["pending-setups"]
    assert "confirmed by the operator" in (tmp_path / "state" / "cloudrig.log").read_text()
    assert _cli(tmp_path, "confirm", "carbonio", "pending-setups", "--undo").returncode == 0
    state = json.loads((tmp_path / "state" / "carbonio.json").read_text())
    assert state["confirmations"] == {}


def test_confirm_unknown_step_is_a_usage_error_naming_the_steps(tmp_path):
    result = _cli(tmp_path, "confirm", "carbonio", "no-such-step")
    assert result.returncode == 2
    assert "no step 'no-such-step'" in result.stderr and "pending-setups" in result.stderr
    assert not (tmp_path / "state" / "carbonio.json").exists()
