"""`cloudrig status --format prometheus`: the dashboard as node_exporter textfile metrics.

Why this shape: a fleet's CloudRig state is scraped by the node_exporter already on
every host (its textfile collector reads `*.prom` files), so no CloudRig daemon or
port is needed. Each step is a StateSet in the OpenMetrics sense — one series per
possible status, 1 for the current one — so alerts read naturally
(`cloudrig_step_status{status="failed"} == 1`) and every status stays a label value
rather than a magic number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.engine.reports import ProcedureStatus

STATUSES = ("done", "pending", "drifted", "failed", "manual", "staged", "unknown")


def _label(value: str) -> str:
    """A label value escaped as the exposition format requires (\\, ", newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def prometheus(reports: Iterable[ProcedureStatus], checked_at: float) -> str:
    """The text exposition of `cloudrig status` reports, metric families grouped."""
    step_lines: list[str] = []
    applied_lines: list[str] = []
    run_lines: list[str] = []
    for report in reports:
        procedure = report.procedure
        applied_lines.append(f"cloudrig_procedure_applied{_labels(procedure=procedure)} "
                             f"{1 if report.applied else 0}")
        for step in report.steps:
            for status in STATUSES:
                labels = _labels(procedure=procedure, step=step.step, status=status)
                step_lines.append(f"cloudrig_step_status{labels} "
                                  f"{1 if step.status.value == status else 0}")
        last = report.last_run if report.applied else None
        if last is not None and last.finished is not None:
            labels = _labels(procedure=procedure, kind=last.kind, outcome=last.outcome)
            run_lines.append(f"cloudrig_last_run_timestamp_seconds{labels} "
                             f"{last.finished.timestamp():.3f}")
    families = [
        ("cloudrig_step_status", "Each step's check: 1 for its current status.",
         step_lines),
        ("cloudrig_procedure_applied", "1 when the procedure has been applied on this host.",
         applied_lines),
        ("cloudrig_last_run_timestamp_seconds",
         "When the last apply or teardown ended, with how it ended.", run_lines),
        ("cloudrig_status_checked_timestamp_seconds", "When these checks ran.",
         [f"cloudrig_status_checked_timestamp_seconds {checked_at:.3f}"]),
    ]
    out: list[str] = []
    for name, help_text, lines in families:
        if lines:
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *lines]
    return "\n".join(out) + "\n"
