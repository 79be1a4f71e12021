"""Bounded work on hostile or merely large input: error reporting scales linearly, the CLI prints a capped
number of diagnostics, alias bombs stop before they expand. Figures in seconds are in bench/ (bench.py
--limits); these tests compare sizes and ratios, which do not depend on the machine."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Callable

import pytest

from compiler.errors import ConfigError, _suggest
from compiler.driver import compile_project
from helpers import invoke


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
        _suggest.cache_clear()  # each run as cold as the first: 1,000 typos would fit the cache, 8,000 not
        start = time.process_time()
        with pytest.raises(ConfigError) as info:
            compile_project(main)
        best = min(best, time.process_time() - start)
        count = len(info.value.diagnostics)
    return count, best


@pytest.mark.slow
@pytest.mark.parametrize("make", [unknown_keys, typo_per_environment], ids=["unknown-keys", "typo-per-environment"])
def test_error_reporting_is_near_linear(make: Callable[[int], str], tmp_path: Path) -> None:
    """8x the errors takes well under 64x (quadratic) the time: Cerberus re-sorted its whole error list on
    every insert (4,000 unknown keys took 82 s)."""
    small, t_small = _errors(make(1000), tmp_path)
    large, t_large = _errors(make(8000), tmp_path)
    assert (small, large) == (1000, 8000)
    assert t_large / t_small < 24, f"1,000 errors {t_small:.2f} s, 8,000 errors {t_large:.2f} s"


def test_cli_prints_the_first_200_diagnostics_then_a_count(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(unknown_keys(1000), encoding="utf-8")
    proc = invoke("validate", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    heads = [ln for ln in lines if ": error: " in ln]
    assert len(heads) == 200 and heads[0] == "dockwright.yaml:3:1: error: unknown key 'unknown0'"
    assert heads[-1] == "dockwright.yaml:202:1: error: unknown key 'unknown199'"
    assert lines[-2:] == ["... and 800 more errors", "1000 errors"]
    assert len(lines) == 3 * 200 + 2


def test_cli_prints_everything_up_to_200(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(unknown_keys(200), encoding="utf-8")
    lines = invoke("validate", cwd=tmp_path).stderr.splitlines()
    assert len(lines) == 3 * 200 + 1 and lines[-1] == "200 errors"


def laughs(levels: int = 9) -> str:
    lines = ["version: 1", "project: demo", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def nested_maps(levels: int = 9) -> str:
    lines = ["version: 1", "project: demo", "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    lines += [f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(9)) + "}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def merge_keys(levels: int = 9) -> str:
    lines = ["version: 1", "project: demo", "m0: &m0 {a: [1, 2, 3, 4, 5, 6, 7, 8, 9]}"]
    lines += [f"m{i}: &m{i} {{" + ", ".join(f"k{j}: {{<<: *m{i - 1}}}" for j in range(9)) + "}"
              for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("make,line,total", [(laughs, 11, "4,412,961,520"), (nested_maps, 11, "8,825,923,015"),
                                             (merge_keys, 11, "6,755,644,755")],
                         ids=["billion-laughs", "nested-mappings", "merge-keys"])
def test_alias_bombs_are_refused_before_they_expand(make: Callable[[], str], line: int, total: str,
                                                   tmp_path: Path) -> None:
    main = tmp_path / "dockwright.yaml"
    main.write_text(make(), encoding="utf-8")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            compile_project(main)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (d,) = info.value.diagnostics
    assert d.location is not None and (d.location.line, d.location.col) == (line, 5), d.format()
    assert d.message == (f"document too large: aliases expand it to {total} values, more than the 100,000 aliases "
                         "may add")
    assert d.hint == "this value is used 9 times through aliases; write it out where it is needed"
    assert peak < 20_000_000, f"{peak:,} bytes"


def test_aliases_below_the_limit_are_read(tmp_path: Path) -> None:
    """Anchors shared by many environments (the reason aliases exist) stay well below the limit."""
    text = ("version: 1\nproject: demo\nx-common: &common {python: '3.11', env: {A: '1', B: '2'}}\n"
            "environments:\n" + "".join(f"  e{i}: {{<<: *common, labels: {{n: '{i}'}}}}\n" for i in range(300))
            + "runner: {environment: e0}\n")
    main = tmp_path / "dockwright.yaml"
    main.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:  # x-common is no key of the language; everything else is fine
        compile_project(main)
    assert [d.message for d in info.value.diagnostics] == ["unknown key 'x-common'"]


def test_a_recursive_alias_is_still_located(tmp_path: Path) -> None:
    main = tmp_path / "dockwright.yaml"
    main.write_text("version: 1\nproject: demo\na: &a [1, *a]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        compile_project(main)
    assert [(d.location.line if d.location else 0, d.message) for d in info.value.diagnostics] == [
        (3, "recursive alias: a value contains itself")]


def identical_environments(n: int) -> str:
    return "version: 1\nproject: demo\nrunner: {environment: e0}\nenvironments:\n" + "".join(
        f"  e{i}:\n    python: '3.11'\n    requirements: [pandas]\n" for i in range(n))


@pytest.mark.slow
def test_deduplication_is_near_linear(tmp_path: Path) -> None:
    """8x identical environments (one image serving them all) takes well under 64x the time: each one
    attached re-sorted the image's growing list of environments (20,000 took over 120 s)."""
    times = []
    for n in (1000, 8000):
        main = tmp_path / f"{n}" / "dockwright.yaml"
        main.parent.mkdir()
        main.write_text(identical_environments(n), encoding="utf-8")
        start = time.process_time()
        compiled = compile_project(main)
        times.append(time.process_time() - start)
        assert [len(img.environments) for img in compiled.plan.images.values()] == [n]
    assert times[1] / times[0] < 16, f"1,000 environments {times[0]:.2f} s, 8,000 {times[1]:.2f} s"


@pytest.mark.slow
def test_compile_stops_looking_after_10000_errors(tmp_path: Path) -> None:
    """200,000 errors took 140 s and 1.7 GB: past 10,000 the rest are not collected."""
    main = tmp_path / "dockwright.yaml"
    main.write_text(unknown_keys(12000), encoding="utf-8")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            compile_project(main)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    diagnostics = info.value.diagnostics
    assert len(diagnostics) == 10001
    assert (diagnostics[0].location, diagnostics[0].message, diagnostics[0].hint) == (
        None, "too many errors: stopped looking after 10,000", "fix these first")
    assert peak < 400_000_000, f"{peak:,} bytes"


def test_a_huge_value_is_shown_by_its_ends(tmp_path: Path) -> None:
    """A value of megabytes (a one-line requirements file here) is neither printed whole in the message nor in
    the source line under it: each is bounded, the caret still under the column, the hint still at the end."""
    (tmp_path / "big.txt").write_text("a/" * 2_000_000 + "\n")
    (tmp_path / "dockwright.yaml").write_text("version: 1\nproject: big\nenvironments:\n"
                                              "  base: {python: '3.11', requirements_files: [big.txt]}\n"
                                              "runner: {environment: base}\n")
    done = invoke("compile", cwd=tmp_path)
    assert done.returncode == 1
    head, line, caret, summary = done.stderr.splitlines()
    message = "requirement '" + "a/" * 2_000_000 + "' is a local path (list the package directory under `local_packages:` instead)"
    assert head.startswith("big.txt:1:1: error: requirement 'a/a/")
    assert f"...[{len(message) - 800:,} characters]..." in head
    assert head.endswith("a/' is a local path (list the package directory under `local_packages:` instead)")
    assert len(head) < 1100
    assert line == "    1 | " + "a/" * 100 + "..."
    assert caret == "      | ^"
    assert summary == "1 error; nothing was written"


def test_a_long_source_line_is_shown_around_the_caret() -> None:
    from compiler.errors import Diagnostic, Location

    source = "x" * 1000 + "^here" + "y" * 1000
    loc = Location(file=Path("f.yaml"), line=3, col=1001, source_line=source)  # 1-based: the '^'
    out = Diagnostic(loc, "bad").format(cwd=Path("/"))
    _, line, caret = out.splitlines()
    shown = line[len("    3 | "):]
    assert shown == "..." + source[901:1101] + "..."
    assert line[caret.index("^"):].startswith("^here")  # the caret is under the column it names
