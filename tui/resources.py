"""Where shipped data (templates, styles, examples) is found.

In a wheel the top-level `templates/` and `assets/` directories are placed at
`tui/_data/` (see pyproject.toml); in a source checkout they sit beside `tui/`.
The package's directory comes from the import system (`tui.__spec__`, what
`importlib.resources.files("tui")` reads for a package on disk); importlib.resources
itself is imported only for an installation that is not plain files, because it
brings zipfile and costs the first screen several milliseconds (bench/run_all.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import tui


def _package_dir() -> Path:
    spec = tui.__spec__
    locations = list(spec.submodule_search_locations or []) if spec else []
    if locations and Path(locations[0]).is_dir():
        return Path(locations[0])
    # heavy: zipfile, only for an install that is not plain files
    from importlib.resources import files

    return Path(str(files("tui")))


@cache
def data_dir(name: str) -> Path:
    """Return the directory of shipped data called `name` ("templates" or "assets")."""
    packaged = _package_dir() / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"CloudRig's {name} directory is missing from this installation")
