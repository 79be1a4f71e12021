"""ruff (configured in pyproject.toml) finds nothing in compiler/, tests/ and bench/."""

from __future__ import annotations

import subprocess

from helpers import ROOT, tool


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([tool("ruff"), "check", "--no-cache", "--output-format", "concise", "compiler", "tests",
                             "bench"], cwd=ROOT, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "All checks passed!\n"), result.stdout + result.stderr
