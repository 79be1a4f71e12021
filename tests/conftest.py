"""Fixtures shared by every test folder, and how much hypothesis runs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# The compile fast path's records (compiler/fastpath.py) of this test run: never the user's own cache.
os.environ["DOCKWRIGHT_CACHE_DIR"] = tempfile.mkdtemp(prefix="dockwright-test-cache-")

# Each property test names its own max_examples: CI (CI set, as .ci/run is run) and DOCKWRIGHT_FULL=1 run
# exactly that many. Any other run (the quick loop on a developer's machine) runs a tenth, at least 10.
FULL = bool(os.environ.get("CI")) or os.environ.get("DOCKWRIGHT_FULL") == "1"
QUICK_SHARE, QUICK_MINIMUM = 10, 10


def quick_examples(n: int) -> int:
    return n if n <= QUICK_MINIMUM else max(QUICK_MINIMUM, n // QUICK_SHARE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    for item in items:
        test = getattr(item, "obj", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)  # what @settings gave @given's wrapper
        if own is None or getattr(test, "_dockwright_quick", False):
            continue
        test._hypothesis_internal_use_settings = settings(own, max_examples=quick_examples(own.max_examples))
        test._dockwright_quick = True


def pytest_report_header(config: pytest.Config) -> str:
    return ("hypothesis: every test's own max_examples" if FULL else
            f"hypothesis: a {QUICK_SHARE}th of each test's max_examples (CI=1 or DOCKWRIGHT_FULL=1 runs them all)")


@pytest.fixture
def project(tmp_path: Path):
    """Write a project from {relative path: text} and return its folder."""

    def make(files: dict[str, str]) -> Path:
        for rel, text in files.items():
            target = tmp_path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return tmp_path

    return make
