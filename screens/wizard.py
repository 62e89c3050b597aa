"""The wizard: one screen per procedure page, each field validated as it is typed.

Problems are pydantic's own messages (via tui.answers.field_problems), shown under
the field. Next refuses to leave a page with problems; the last page validates the
whole model and opens the preview. Pages that do not apply to the answers so far
(another mode's) are skipped. Secrets typed here stay in memory; answers typed and
left (Escape on the first page, ctrl+q) are kept as a draft, offered next time.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from textual.actions import SkipAction
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Select, Static, Switch, TextArea
from textual.worker import Worker, WorkerState

from screens.confirm import ConfirmScreen
from screens.form import FormState, operator_text
from screens.keybar import KeyBar
from screens.preview import PreviewScreen
from screens.styles import stylesheets
from screens.widgets import (
    FieldBox,
    ListEditor,
    MappingEditor,
    RowInput,
    RowsEditor,
    TitleBar,
    Working,
)
from screens.workspace import Workspace
from tui.answers import AnswersError
from tui.drafts import save_draft
from tui.model import Procedure
from tui.redact import redact
from tui.words import plural


def editor_of(widget: Widget | None) -> RowsEditor | None:
    """The list/mapping editor a focused row input belongs to."""
    node = widget.parent if widget is not None else None
    while node is not None and not isinstance(node, RowsEditor):
        node = node.parent
    return node


class WizardScreen(Screen):
    CSS_PATH = stylesheets("fields", "wizard")
    # ctrl+n (and Enter below; Tab and shift+tab in the app) are priority bindings: the
    # app runs them as their key arrives, before it hands the next keys to the focused
    # input. As ordinary bindings they ran only once the key had bubbled up from the
    # input, so text typed or pasted right after them (a fast typist, a slow SSH link
    # delivering keys in one burst) landed in the field or page being left (found by
    # tests/test_ssh_terminal.py).
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", priority=True),
        Binding("ctrl+t", "test_connection", "Test connection"),
        Binding("escape", "back", "Back"),
        # Before the Input sees Enter (priority), for the same reason as the app's Tab:
        # Input.Submitted arrives as a message, after keys typed straight after Enter.
        Binding("enter", "enter", "Next field", show=False, priority=True),
    ]
    HELP = ("Answer the page's questions; each is checked as you type. Tab and Enter move "
            "between fields, ctrl+n to the next page (the last opens the preview).")

    def __init__(self, workspace: Workspace, form: FormState, index: int) -> None:
        super().__init__()
        self.workspace = workspace
        self.form = form
        self.index = index
        self.page = form.procedure.pages[index]
        form.secret_available = workspace.secret_source(form.procedure, typed=False).available

    @property
    def is_last(self) -> bool:
        return self.form.next_page(self.index) is None

    def hint(self) -> str:
        """What Enter and Space do in the focused field, and where ctrl+n leads."""
        focused = self.focused
        onward = "ctrl+n: " + ("preview" if self.is_last else "next page")
        if isinstance(focused, TextArea):
            return f"Enter: new line · Tab: next field · {onward}"
        if isinstance(focused, Switch):
            return f"Space: on/off · Enter: next field · {onward}"
        if isinstance(focused, Select):
            return f"Space: open the list · Enter: next field · {onward}"
        if isinstance(focused, RowInput):
            return f"Enter: next row (a new one at the end) · Tab: next field · {onward}"
        return f"Enter: next field · {onward}"

    def compose(self) -> ComposeResult:
        pages = self.form.pages()
        number = pages.index(self.index) + 1 if self.index in pages else self.index + 1
        yield TitleBar(self.form.procedure.title,
                       f"{number}/{len(pages)} {self.page.title}")
        needed = self._needed_secrets()
        with VerticalScroll(id="form", can_focus=False):
            model = self.form.model
            if self.page.help:
                yield Static(operator_text(self.page.help, model), classes="page-help",
                             markup=False)
            for name in self.page.fields:
                spec = self.form.specs[name]
                spec = spec.model_copy(update={"help": operator_text(spec.help, model, name)})
                where = self.workspace.secret_where(self.form.procedure, name) \
                    if spec.kind == "secret" else ""
                yield FieldBox(spec, self.form.display(name), where,
                               required=spec.required or name in needed)
        yield Working(id="testing")
        yield Static(self.hint(), id="page-status", markup=False)
        yield KeyBar()

    def _needed_secrets(self) -> set[str]:
        if not any(self.form.specs[n].kind == "secret" for n in self.page.fields):
            return set()
        return self.form.needed_secrets()

    def on_mount(self) -> None:
        # Focusing the first field scrolls it flush to the top, hiding the page's help and
        # the field's own title; the page opens at its top instead.
        self.call_after_refresh(self.query_one("#form", VerticalScroll).scroll_home,
                                animate=False)
        for name in self.page.fields:  # problems an answers file had, marked at once
            if name in self.form.given_problems:
                self._show(name, self.form.problems(name))
        if self.form.file_problems and self.index == self.form.pages()[0]:
            self._refuse("The answers file: " + "; ".join(self.form.file_problems))
        elif self.form.given_problems and self.index == self.form.first_problem_page():
            self._refuse(f"The answers file has {plural(len(self.form.given_problems), 'problem')}"
                         ": they are marked on their fields.")

    def on_descendant_focus(self) -> None:
        status = self.query_one("#page-status", Static)
        if not status.has_class("-error"):
            status.update(self.hint())

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
            status.update(self.hint())
            status.remove_class("-error")

    def _show(self, name: str, problems: list[str]) -> None:
        box = self.query_one(f"#box-{name}", FieldBox)
        box.show_problems(problems)
        if problems and box.has_focus_within:
            # The message sits under the widget: keep it on screen once laid out.
            self.call_after_refresh(box.scroll_visible, animate=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        if not isinstance(event.input, RowInput):
            self._changed(event.input, event.value)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        if not isinstance(event.input, RowInput):
            self._changed(event.input, event.value)

    def on_rows_editor_changed(self, event: RowsEditor.Changed) -> None:
        editor = event.editor
        if isinstance(editor, ListEditor | MappingEditor):
            self._changed(editor, editor.value)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self._changed(event.switch, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        self._changed(event.select, None if event.value is Select.NULL else event.value)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._changed(event.text_area, event.text_area.text)

    async def action_enter(self) -> None:
        """Enter moves on, from every kind of field: to the next field, or to the next
        page from the last one. A text editor keeps Enter for its new lines; a list or
        mapping moves down its rows first; an open choice list picks with it."""
        field = self.focused
        editor = editor_of(field)
        if editor is not None:
            if await editor.enter():
                return
            field = editor
        elif not isinstance(field, Input | Switch | Select):
            raise SkipAction()  # a TextArea's new line, a Select's open list
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
            elif isinstance(widget, (Switch, ListEditor | MappingEditor)):
                value = widget.value
            else:
                continue
            if name not in self.form.given_problems or value != self.form.display(name):
                self.form.set(name, value)

    def action_next(self) -> None:
        self._sync_page()
        problems = self.form.page_problems(self.page)
        for name in self.page.fields:
            self._show(name, problems.get(name, []))
        if problems:
            self._refuse(f"Fix the {plural(len(problems), 'marked field')} to continue.")
            first = next(iter(problems))
            self._focus_field(first)
            self.call_after_refresh(self.query_one(f"#box-{first}").scroll_visible,
                                    animate=False)
            return
        following = self.form.next_page(self.index)
        if following is not None:
            self.app.push_screen(WizardScreen(self.workspace, self.form, following))
            return
        try:
            answers = self.form.finish()
        except AnswersError as exc:
            self._whole_model_problems(exc)
            return
        procedure = self.form.procedure
        self.workspace.secrets[procedure.id] = dict(self.form.secrets)
        self.app.push_screen(PreviewScreen(self.workspace, procedure, answers))

    def _focus_field(self, name: str) -> None:
        widget = self.query_one(f"#field-{name}")
        if isinstance(widget, RowsEditor):
            widget.query(RowInput).first().focus()
        else:
            widget.focus()

    def _whole_model_problems(self, exc: AnswersError) -> None:
        """Show each problem on its field; problems of other pages go in the status line,
        named by the field's title and its page."""
        elsewhere = []
        for problem in exc.problems:
            name = problem.field.split(".")[0]
            if name in self.page.fields:
                self._show(name, [problem.problem])
                continue
            spec = self.form.specs.get(name)
            page = self.form.page_of(name)
            where = f" (page {self.form.procedure.pages[page].title})" if page is not None \
                else ""
            elsewhere.append(f"{spec.title if spec else name}{where}: {problem.problem}")
        self._refuse("; ".join(elsewhere) or "Fix the marked fields to continue.")

    def _refuse(self, message: str) -> None:
        status = self.query_one("#page-status", Static)
        status.update(message)
        status.add_class("-error")

    def action_back(self) -> None:
        if self._first_page() and self.form.dirty:
            self._ask_to_leave(lambda: self.app.pop_screen())
            return
        self.app.pop_screen()

    def _first_page(self) -> bool:
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        return not (isinstance(below, WizardScreen) and below.form is self.form)

    def _ask_to_leave(self, then: Any) -> None:
        """Leave only when the operator says so; the answers typed are kept as a draft."""
        self._sync_page()

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                save_draft(self.workspace.directory, self.form.procedure.id,
                           dict(self.form.values))
            except OSError as exc:
                self.notify(f"The draft was not kept: {exc}", severity="error")
            then()

        secrets = " Secrets typed are not kept." if self.form.secrets else ""
        self.app.push_screen(ConfirmScreen(
            f"Leave the {self.form.procedure.title} wizard? The answers typed are kept as "
            f"a draft and offered the next time you open it.{secrets}"), answered)

    def request_quit(self) -> bool:
        """ctrl+q with answers typed: ask first, keep them as a draft."""
        if not self.form.dirty:
            return False
        self._ask_to_leave(lambda: self.app.exit(0))
        return True

    # ------------------------------------------------------------ test connection

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "test_connection":
            return self.page.probe is not None
        return True

    def action_test_connection(self) -> None:
        """The page's probe with its answers and secrets, in a thread: one sentence."""
        probe = self.page.probe
        if probe is None:
            return
        self._sync_page()
        problems = self.form.page_problems(self.page)
        if problems:
            self._refuse("Fix the marked fields before testing the connection.")
            for name, found in problems.items():
                self._show(name, found)
            return
        values = dict(self.form.values)
        for name, spec in self.form.specs.items():
            if spec.default is not None:
                values.setdefault(name, spec.default)
        self.workspace.secrets[self.form.procedure.id] = dict(self.form.secrets)
        source = self.workspace.secret_source(self.form.procedure)
        self.query_one("#testing", Working).start("Testing the connection…")
        self.run_worker(lambda: probe(values, source), thread=True, exit_on_error=False,
                        group="probe", exclusive=True, name="test connection")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "probe" or event.state not in (WorkerState.SUCCESS,
                                                                 WorkerState.ERROR):
            return
        self.query_one("#testing", Working).stop()
        status = self.query_one("#page-status", Static)
        if event.state is WorkerState.SUCCESS:
            status.remove_class("-error")
            status.update(f"✓ {redact(str(event.worker.result))}")
        else:
            error = event.worker.error
            self._refuse(f"✗ {redact(str(getattr(error, 'sentence', error)))}")

    # ------------------------------------------------------------ palette

    def palette_commands(self) -> list[tuple[str, str, object]]:
        pages = self.form.pages()
        return [(f"Go to page {number}: {self.form.procedure.pages[index].title}",
                 "Open that page of the wizard (answers typed so far are kept)",
                 lambda index=index: open_wizard_at(self.app, self.workspace,
                                                    self.form.procedure, None, index,
                                                    form=self.form))
                for number, index in enumerate(pages, 1)]


def open_wizard_at(app: App, workspace: Workspace, procedure: Procedure,
                   answers: BaseModel | None, index: int, form: FormState | None = None
                   ) -> None:
    """The wizard of PROCEDURE on page INDEX, Escape leading back page by page: back
    down the screen stack when that page is in it, else opened anew (from ANSWERS or
    FORM) over home with the pages before it beneath."""
    for position, screen in enumerate(app.screen_stack):
        if (isinstance(screen, WizardScreen) and screen.form.procedure.id == procedure.id
                and screen.index == index and (form is None or screen.form is form)):
            while len(app.screen_stack) > position + 1:
                app.pop_screen()
            return
    while len(app.screen_stack) > 1:
        app.pop_screen()
    if form is None:
        form = FormState.start(procedure, given=answers,
                               secrets=workspace.secrets.get(procedure.id))
    for page in [p for p in form.pages() if p <= index] or [index]:
        app.push_screen(WizardScreen(workspace, form, page))
