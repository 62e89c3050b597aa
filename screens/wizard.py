"""The wizard: one screen per procedure page, each field validated as it is typed.

Problems are pydantic's own messages (via tui.answers.field_problems), shown under
the field. Next refuses to leave a page with problems; the last page validates the
whole model and opens the preview. Secrets typed here stay in memory.
"""

from __future__ import annotations

from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Select, Static, Switch, TextArea

from screens.form import FormState
from screens.preview import PreviewScreen
from screens.widgets import FieldBox, TitleBar
from screens.workspace import Workspace
from tui.answers import AnswersError


class WizardScreen(Screen):
    # ctrl+n (and Enter below; Tab and shift+tab in the app) are priority bindings: the
    # app runs them as their key arrives, before it hands the next keys to the focused
    # input. As ordinary bindings they ran only once the key had bubbled up from the
    # input, so text typed or pasted right after them (a fast typist, a slow SSH link
    # delivering keys in one burst) landed in the field or page being left (found by
    # tests/test_ssh_terminal.py).
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("escape", "back", "Back"),
        # Before the Input sees Enter (priority), for the same reason as the app's Tab:
        # Input.Submitted arrives as a message, after keys typed straight after Enter.
        Binding("enter", "enter", show=False, priority=True),
    ]

    def __init__(self, workspace: Workspace, form: FormState, index: int) -> None:
        super().__init__()
        self.workspace = workspace
        self.form = form
        self.index = index
        self.page = form.procedure.pages[index]

    @property
    def is_last(self) -> bool:
        return self.index == len(self.form.procedure.pages) - 1

    @property
    def hint(self) -> str:
        return "Enter: next field · ctrl+n: " + ("preview" if self.is_last else "next page")

    def compose(self) -> ComposeResult:
        pages = self.form.procedure.pages
        yield TitleBar(self.form.procedure.title,
                       f"{self.index + 1}/{len(pages)} {self.page.title}")
        with VerticalScroll(id="form", can_focus=False):
            if self.page.help:
                yield Static(self.page.help, classes="page-help", markup=False)
            for name in self.page.fields:
                yield FieldBox(self.form.specs[name], self.form.display(name))
        yield Static(self.hint, id="page-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        # Focusing the first field scrolls it flush to the top, hiding the page's help and
        # the field's own title; the page opens at its top instead.
        self.call_after_refresh(self.query_one("#form", VerticalScroll).scroll_home,
                                animate=False)

    # ------------------------------------------------------------ values as typed

    def _field_name(self, widget: Widget) -> str | None:
        wid = widget.id or ""
        return wid.removeprefix("field-") if wid.startswith("field-") else None

    def _changed(self, widget: Widget, raw: object) -> None:
        name = self._field_name(widget)
        if name is None or name not in self.form.specs:
            return
        self.form.set(name, raw)
        self._show(name, self.form.problems(name))
        status = self.query_one("#page-status", Static)
        if status.has_class("-error") and not self.form.page_problems(self.page):
            status.update(self.hint)
            status.remove_class("-error")

    def _show(self, name: str, problems: list[str]) -> None:
        box = self.query_one(f"#box-{name}", FieldBox)
        box.show_problems(problems)
        if problems and box.has_focus_within:
            # The message sits under the widget: keep it on screen once laid out.
            self.call_after_refresh(box.scroll_visible, animate=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._changed(event.input, event.value)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        self._changed(event.input, event.value)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self._changed(event.switch, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        self._changed(event.select, None if event.value is Select.NULL else event.value)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._changed(event.text_area, event.text_area.text)

    def action_enter(self) -> None:
        """Enter in a text field moves on: to the next field, or to the next page from the
        last one. Elsewhere (a list, a switch, a choice) Enter keeps its own meaning."""
        field = self.focused
        if not isinstance(field, Input):
            raise SkipAction()
        if field.id == f"field-{self.page.fields[-1]}":
            self.action_next()
        else:
            self.focus_next()

    # ------------------------------------------------------------ navigation

    def _sync_page(self) -> None:
        """Take every field's value from its widget. ctrl+n is a priority binding: it
        can run before the Changed messages of the last keys typed have reached this
        screen, and must not judge the page on the values from before them."""
        for name in self.page.fields:
            widget = self.query_one(f"#field-{name}")
            if isinstance(widget, Input):
                value: object = widget.value
            elif isinstance(widget, TextArea):
                value = widget.text
            elif isinstance(widget, Select):
                value = None if widget.value is Select.NULL else widget.value
            elif isinstance(widget, Switch):
                value = widget.value
            else:
                continue
            self.form.set(name, value)

    def action_next(self) -> None:
        self._sync_page()
        problems = self.form.page_problems(self.page)
        for name in self.page.fields:
            self._show(name, problems.get(name, []))
        if problems:
            self._refuse(f"Fix the {len(problems)} marked field(s) to continue.")
            first = next(iter(problems))
            self.query_one(f"#field-{first}").focus()
            self.call_after_refresh(self.query_one(f"#box-{first}").scroll_visible,
                                    animate=False)
            return
        if not self.is_last:
            self.app.push_screen(WizardScreen(self.workspace, self.form, self.index + 1))
            return
        try:
            answers = self.form.finish()
        except AnswersError as exc:
            self._whole_model_problems(exc)
            return
        procedure = self.form.procedure
        self.workspace.secrets[procedure.id] = dict(self.form.secrets)
        self.app.push_screen(PreviewScreen(self.workspace, procedure, answers))

    def _whole_model_problems(self, exc: AnswersError) -> None:
        """Show each problem on its field; problems of other pages go in the status line."""
        elsewhere = []
        for problem in exc.problems:
            if problem.field in self.page.fields:
                self._show(problem.field, [problem.problem])
            else:
                elsewhere.append(problem.sentence())
        self._refuse("; ".join(elsewhere) or "Fix the marked fields to continue.")

    def _refuse(self, message: str) -> None:
        status = self.query_one("#page-status", Static)
        status.update(message)
        status.add_class("-error")

    def action_back(self) -> None:
        self.app.pop_screen()
