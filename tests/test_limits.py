"""Bounded work on hostile or merely large input: error reporting scales linearly, the CLI prints a capped
number of diagnostics, alias bombs stop before they expand. Figures in seconds are in bench/ (bench.py
--limits); these tests compare sizes and ratios, which do not depend on the machine."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Callable

import pytest

from compiler.errors import ConfigError
from compiler.pipeline import compile_project
from helpers import run_cli


def unknown_keys(n: int) -> str:
    return "version: 1\nproject: demo\n" + "".join(f"unknown{i}: 1\n" for i in range(n))


def typo_per_environment(n: int) -> str:
    return "version: 1\nproject: demo\nenvironments:\n" + "".join(
        f"  e{i}:\n    python: '3.11'\n    requirments: [pandas]\n" for i in range(n))


def _errors(text: str, tmp: Path) -> tuple[int, float]:
    """(number of errors, CPU seconds of the fastest of two compiles)."""
    main = tmp / "dockwright.yaml"
    main.write_text(text, encoding="utf-8")
    best = float("inf")
    count = 0
    for _ in range(2):
        start = time.process_time()
        with pytest.raises(ConfigError) as info:
            compile_project(main)
        best = min(best, time.process_time() - start)
        count = len(info.value.diagnostics)
    return count, best


@pytest.mark.parametrize("make", [unknown_keys, typo_per_environment], ids=["unknown-keys", "typo-per-environment"])
def test_error_reporting_is_near_linear(make: Callable[[int], str], tmp_path: Path) -> None:
    """8x the errors takes well under 64x (quadratic) the time: Cerberus re-sorted its whole error list on
    every insert (4,000 unknown keys took 82 s)."""
    small, t_small = _errors(make(1000), tmp_path)
    large, t_large = _errors(make(8000), tmp_path)
    assert (small, large) == (1000, 8000)
    assert t_large / t_small < 20, f"1,000 errors {t_small:.2f} s, 8,000 errors {t_large:.2f} s"


def test_cli_prints_the_first_200_diagnostics_then_a_count(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(unknown_keys(1000), encoding="utf-8")
    proc = run_cli("validate", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    heads = [ln for ln in lines if ": error: " in ln]
    assert len(heads) == 200 and heads[0] == "dockwright.yaml:3:1: error: unknown key 'unknown0'"
    assert heads[-1] == "dockwright.yaml:202:1: error: unknown key 'unknown199'"
    assert lines[-2:] == ["... and 800 more errors", "1000 errors"]
    assert len(lines) == 3 * 200 + 2


def test_cli_prints_everything_up_to_200(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(unknown_keys(200), encoding="utf-8")
    lines = run_cli("validate", cwd=tmp_path).stderr.splitlines()
    assert len(lines) == 3 * 200 + 1 and lines[-1] == "200 errors"
