"""Where the schemas/ and templates/ shipped with dockwright are, installed or in a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The folder `schemas` or `templates`: inside the wheel, or at the top of a source checkout."""
    for candidate in (_HERE / "_data" / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"dockwright is installed without its {name}/ folder (looked in {_HERE})")
