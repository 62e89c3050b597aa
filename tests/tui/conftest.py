"""The TUI layer: every test here runs the app (pilot, a real terminal, a browser) with
a private state dir and fixed colours (`state_dir`, from tui_helpers, which the kit's
procedure test shares)."""

from tui_helpers import state_dir

__all__ = ["state_dir"]
