"""Where shipped data (templates, styles, examples) is found.

In a wheel the top-level `templates/` and `assets/` directories are placed at
`tui/_data/` (see pyproject.toml); in a source checkout they sit beside `tui/`.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path


@cache
def data_dir(name: str) -> Path:
    """Return the directory of shipped data called `name` ("templates" or "assets")."""
    packaged = Path(str(files("tui"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"CloudRig's {name} directory is missing from this installation")
