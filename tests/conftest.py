"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The compile fast path's records (compiler/fastpath.py) of this test run: never the user's own cache.
os.environ["DOCKWRIGHT_CACHE_DIR"] = tempfile.mkdtemp(prefix="dockwright-test-cache-")


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
