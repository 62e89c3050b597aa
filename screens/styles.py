"""Where the stylesheets are (assets/*.tcss).

The app's sheet (cloudrig.tcss) holds home's rules and what every screen uses; each
other screen names its own sheets in CSS_PATH, which Textual reads the first time the
screen is shown. So the first paint parses only what home shows — Textual's CSS parser
is a large part of its start-up — and each later screen pays for its own rules once.
"""

from __future__ import annotations

from pathlib import PurePath

from tui.resources import data_dir


def stylesheets(*names: str) -> list[str | PurePath]:
    """The paths of the named sheets (assets/NAME.tcss), for a CSS_PATH."""
    folder = data_dir("assets")
    return [folder / f"{name}.tcss" for name in names]
