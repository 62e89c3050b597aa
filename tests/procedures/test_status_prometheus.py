"""`cloudrig status --format prometheus`, read back with prometheus_client's own parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tui.engine import StepCheck
from tui.engine.reports import AppliedReport
from tui.metrics import STATUSES, prometheus
from tui.model import Status


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_each_step_is_a_state_set_with_its_status(cli, answers_file: Path,
                                                  tmp_path: Path) -> None:
    assert cli("apply", "carbonio", "--answers", answers_file, "--root", tmp_path / "r",
               "--yes").returncode == 0
    result = cli("status", "--format", "prometheus")
    assert result.returncode == 1  # staged and manual steps remain; the exit code is status's own
    found = samples(result.stdout)
    wanted = {"policy": "done", "user": "staged", "unit": "staged", "gateway-token": "staged",
              "database": "manual"}
    for step, status in wanted.items():
        for candidate in STATUSES:
            key = ("cloudrig_step_status", (("procedure", "carbonio"), ("status", candidate),
                                            ("step", step)))
            assert found[key] == (1.0 if candidate == status else 0.0), (step, candidate)
    assert found[("cloudrig_procedure_applied", (("procedure", "carbonio"),))] == 1.0
    assert found[("cloudrig_procedure_applied", (("procedure", "cloudcasa"),))] == 0.0
    runs = [k for k in found if k[0] == "cloudrig_last_run_timestamp_seconds"]
    assert runs == [("cloudrig_last_run_timestamp_seconds",
                     (("kind", "apply"), ("outcome", "done"), ("procedure", "carbonio")))]
    # exactly one status is 1 for every step of every procedure
    ones: dict[tuple[str, str], float] = {}
    for (name, labels), value in found.items():
        if name == "cloudrig_step_status":
            d = dict(labels)
            ones[(d["procedure"], d["step"])] = ones.get((d["procedure"], d["step"]), 0) + value
    assert set(ones.values()) == {1.0}
    if shutil.which("promtool"):  # Debian's prometheus package: the linter Prometheus ships
        lint = subprocess.run(["promtool", "check", "metrics"], input=result.stdout,
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_label_values_are_escaped() -> None:
    report = AppliedReport(procedure='we"ird\\proc', title="Weird", root=None, last_run=None,
                           steps=[StepCheck(step="a\nb", title="A", status=Status.FAILED,
                                            detail="-")], actions=[])
    found = samples(prometheus([report], 1700000000.0))
    key = ("cloudrig_step_status", (("procedure", 'we"ird\\proc'), ("status", "failed"),
                                    ("step", "a\nb")))
    assert found[key] == 1.0
    assert found[("cloudrig_status_checked_timestamp_seconds", ())] == 1700000000.0
