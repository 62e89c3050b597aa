"""Preview: everything apply would do, planned in a thread (planning may ask remotes).

Files show their final path, action, mode, owner and a coloured unified diff
against what is on disk under the app's root; then commands (those apply will run,
and those --root will not), API calls and what is left to the operator. Nothing is
changed here: the Session is a dry run. Apply is offered only when every step could
be planned and every secret apply needs is at hand; `g` jumps to a step, `x` to the
next problem, `f` opens the wizard on the page that fixes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from pydantic import BaseModel
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from screens.choice import ChoiceScreen
from screens.form import page_for_problem
from screens.keybar import KeyBar
from screens.progress import ProgressScreen
from screens.styles import stylesheets
from screens.texts import plan_summary, step_text
from screens.widgets import TitleBar, Working
from screens.workspace import Navigator, Workspace
from tui.answers import public_answers
from tui.engine import missing_secrets
from tui.model import Procedure
from tui.redact import redact
from tui.words import plural

if TYPE_CHECKING:
    from tui.engine import StepView


def shown_root(root: Path) -> str:
    """The staging directory as the preview names it."""
    return str(root)


class PreviewScreen(Screen):
    CSS_PATH = stylesheets("preview")
    BINDINGS = [
        Binding("a", "apply", "Apply"),
        Binding("g", "goto", "Go to step"),
        Binding("x", "next_problem", "Next problem"),
        Binding("f", "fix", "Fix"),
        Binding("escape", "back", "Back"),
    ]
    HELP = ("Everything apply will do, step by step: files with their diffs, the "
            "commands it will run (and those --root will not), API calls, and what is "
            "left to you. Nothing has changed yet.")

    def __init__(self, workspace: Workspace, procedure: Procedure, answers: BaseModel) -> None:
        super().__init__()
        self.workspace = workspace
        self.procedure = procedure
        self.answers = answers
        self.views: list[StepView] | None = None
        self.missing: list[str] = []
        self.problem_at = -1

    def compose(self) -> ComposeResult:
        yield TitleBar(self.procedure.title, "preview")
        yield Static("", id="plan-summary", markup=False)
        yield Working(id="planning")
        yield VerticalScroll(id="plan")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#plan").focus()
        count = len(self.procedure.steps)
        self.query_one("#planning", Working).start(f"Planning {plural(count, 'step')}…")
        self.run_worker(self._plan, thread=True, exit_on_error=False, group="preview",
                        exclusive=True, name="plan")

    def _plan(self) -> tuple[list[StepView], list[str]]:
        session = self.workspace.session(self.procedure, self.answers,
                                         root=self.workspace.root, dry_run=True)
        missing = missing_secrets(self.procedure, self.answers, session.secrets,
                                  session.active_steps())
        return session.plan_view(session.plan(), for_apply=True), missing

    @property
    def problems(self) -> list[int]:
        """Indexes of the steps that could not be planned."""
        return [i for i, step in enumerate(self.views or []) if step.error]

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "preview" or event.state not in (WorkerState.SUCCESS,
                                                                   WorkerState.ERROR):
            return
        self.query_one("#planning", Working).stop()
        summary = self.query_one("#plan-summary", Static)
        if event.state is WorkerState.ERROR:
            summary.update(f"Cannot plan: {redact(str(event.worker.error))}")
            summary.add_class("-error")
            self.refresh_bindings()
            return
        planned = event.worker.result
        assert planned is not None  # the plan worker returns (views, missing secrets)
        self.views, self.missing = planned
        assert self.views is not None
        summary.update(self._summary())
        summary.set_class(bool(self.problems or self.missing), "-error")
        plan = self.query_one("#plan", VerticalScroll)
        await plan.mount_all(
            Static(step_text(step), classes="plan-step", id=f"step-{i}")
            for i, step in enumerate(self.views)
        )
        self.refresh_bindings()

    def _summary(self) -> str:
        assert self.views is not None
        lines = []
        root = self.workspace.root
        if root is not None:
            lines.append(f"Staging under {shown_root(root)}: files are written there, not "
                         "on this host, and commands that change a host are not run.")
        lines.append(plan_summary(self.views) + ".")
        if self.missing:
            titles = [self._title(name) for name in self.missing]
            named = " and ".join([", ".join(titles[:-1]), titles[-1]] if len(titles) > 1
                                 else titles)
            verb, whose = ("are", "their page") if len(titles) > 1 else ("is", "its page")
            lines.append(f"Cannot apply yet: {named} {verb} not at hand (f opens {whose}).")
        unreachable = next((s for s in self.views if s.unreachable), None)
        if unreachable is not None:
            page = self._page_for(unreachable.error or "")
            lines.append(f"Planning stopped: {unreachable.error} "
                         f"(f: fix it on the page {self.procedure.pages[page].title}).")
        elif self.problems:
            lines.append(f"{plural(len(self.problems), 'step')} cannot be planned "
                         "(x: next, f: fix).")
        if not self.problems and not self.missing:
            lines.append("Press a to apply.")
        return "\n".join(lines)

    def _title(self, name: str) -> str:
        info = self.procedure.answers_model.model_fields.get(name)
        return info.title if info is not None and info.title else name

    def _page_for(self, message: str, fields: list[str] | None = None) -> int:
        return page_for_problem(self.procedure, public_answers(self.answers), message, fields)

    # ------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            return self.views is not None and not self.problems and not self.missing
        if action == "next_problem":
            return bool(self.problems)
        if action == "fix":
            return bool(self.problems or self.missing)
        if action == "goto":
            return bool(self.views)
        return True

    def action_apply(self) -> None:
        if not self.check_action("apply", ()):
            return
        self.app.push_screen(ProgressScreen(self.workspace, self.procedure, self.answers))

    def scroll_to_step(self, index: int) -> None:
        step = self.query_one(f"#step-{index}", Static)
        self.query_one("#plan", VerticalScroll).scroll_to_widget(step, animate=False,
                                                                  top=True)

    def action_goto(self) -> None:
        if not self.views:
            return
        choices = [(str(i), ("✗ " if step.error else "  ") + step.title)
                   for i, step in enumerate(self.views)]
        self.app.push_screen(ChoiceScreen("Go to which step?", choices),
                             lambda key: self.scroll_to_step(int(key)) if key else None)

    def action_next_problem(self) -> None:
        problems = self.problems
        if not problems:
            return
        self.problem_at = next((i for i in problems if i > self.problem_at), problems[0])
        self.scroll_to_step(self.problem_at)

    def action_fix(self) -> None:
        """The wizard on the page that fixes the first problem: a secret apply needs, a
        remote that did not answer (the page with its address), a step's error."""
        if self.missing:
            page = self._page_for("", self.missing[:1])
        elif self.views and self.problems:
            step = self.views[self.problems[0]]
            page = self._page_for(step.error or "")
        else:
            return
        cast(Navigator, self.app).open_wizard_at(
            self.workspace, self.procedure, self.answers, page)

    def action_back(self) -> None:
        self.app.pop_screen()

    def palette_commands(self) -> list[tuple[str, str, object]]:
        return [(f"Go to step: {step.title}", "Scroll the preview to it",
                 lambda i=i: self.scroll_to_step(i))
                for i, step in enumerate(self.views or [])]
