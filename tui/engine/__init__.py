"""Runs a procedure's steps: plan, apply (with resume), check, teardown (with
--restore), and its operator actions.

The CLI and the TUI both drive a `Session` (tui/engine/session.py), a thin facade over
modules with one job each: `options` (the frozen run options), `scope` (a session's
fixed parts; a Context made per step on one explicitly shared run), `planning`,
`views` (the typed view models of a plan the fronts read), `loop` (the guarded loop
apply, teardown and actions share), `running`, `checking` and `reports` (status, actions
and `apply --json` as typed views). None knows any procedure.
"""

from tui.engine.checking import StepCheck, confirm_step
from tui.engine.loop import RunResult
from tui.engine.options import RunOptions
from tui.engine.planning import StepPlan, missing_secrets
from tui.engine.session import Session, check_sessions
from tui.engine.views import ItemView, StepView

__all__ = [
    "ItemView",
    "RunOptions",
    "RunResult",
    "Session",
    "StepCheck",
    "StepPlan",
    "StepView",
    "check_sessions",
    "confirm_step",
    "missing_secrets",
]
