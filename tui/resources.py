"""Where shipped data (templates, styles, examples) is found.

In a wheel the top-level `templates/` and `assets/` directories are placed at
`tui/_data/` (see pyproject.toml); in a source checkout they sit beside `tui/`.
The package's directory comes from the import system (`tui.__spec__`, what
`importlib.resources.files("tui")` reads for a package on disk). CloudRig ships as
plain files (a wheel unpacked by pip), whose templates Jinja reads from a directory:
an installation inside a zip file has no directory to give, so it is refused with
the same sentence as a missing directory. (importlib.resources is not used: it brings
zipfile and costs the first screen several milliseconds, bench/run_all.py.)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import tui


def _package_dir() -> Path:
    spec = tui.__spec__
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else Path(tui.__file__).parent


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
