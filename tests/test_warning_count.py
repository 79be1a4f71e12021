"""More warnings than the Collector keeps (MAX_ERRORS): the ones beyond are counted, not kept, and the count printed
after the first MAX_SHOWN is the true number of warnings given."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import cli, errors
from compiler.errors import Collector, ConfigError, MAX_ERRORS
from helpers import invoke


def _project(root: Path, repeats: int, runner: str = "base") -> Path:
    """An environment whose `run` lists one command repeats times: repeats - 1 warnings (kept once)."""
    root.mkdir()
    lines = "".join("      - echo hi\n" for _ in range(repeats))
    (root / "dockwright.yaml").write_text(f'version: 1\nproject: p\nenvironments:\n  base:\n    python: "3.11"\n'
                                          f"    run:\n{lines}runner: {{environment: {runner}}}\n", encoding="utf-8")
    return root


def test_the_count_of_warnings_beyond_the_limit_is_the_true_one(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", MAX_ERRORS + 2_001)  # 12,000 warnings
    done = invoke("validate", cwd=root)
    assert done.returncode == 0
    lines = done.stderr.splitlines()
    assert lines[-1] == "... and 11,800 more warnings"
    assert len([line for line in lines if ": warning: " in line]) == cli.MAX_SHOWN
    assert done.stdout == "dockwright.yaml: ok: 1 environment, 0 pipelines, 1 image\n"
    # with an error: the same count after the error's own lines
    broken = _project(tmp_path / "broken", MAX_ERRORS + 2_001, runner="nope")
    failed = invoke("validate", cwd=broken)
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert lines[-2:] == ["... and 11,801 more warnings", "1 error"]  # the error is one of the 200 in full
    assert len([line for line in lines if ": warning: " in line]) == cli.MAX_SHOWN - 1
    assert invoke("-q", "validate", cwd=broken).stderr.splitlines()[-1] == "1 error"


def test_warnings_are_counted_not_kept() -> None:
    sink = Collector()
    for n in range(200_000):
        sink.warn(None, f"w{n}")
    assert (len(sink.warnings), sink.unstored_warnings) == (MAX_ERRORS, 200_000 - MAX_ERRORS)
    sink.error(None, "e")
    with pytest.raises(ConfigError) as raised:
        sink.raise_if_errors()
    assert (len(raised.value.warnings), raised.value.unstored_warnings) == (MAX_ERRORS, 200_000 - MAX_ERRORS)


MORE = re.compile(r"\.\.\. and (?:([\d,]+) more errors?)?(?: and )?(?:([\d,]+) more warnings?)?")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["error", "warning"]), max_size=60), st.integers(1, 20), st.integers(1, 20))
def test_shown_plus_counted_is_what_was_given(given_: list[str], limit: int, shown: int) -> None:
    """Whatever the limits and the mix, the lines printed in full plus the counts after them are every warning
    and error given (up to the error that stops looking)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(errors, "MAX_ERRORS", limit)
        patch.setattr(cli, "MAX_SHOWN", shown)
        sink = Collector()
        given_errors = given_warnings = 0
        try:
            for n, severity in enumerate(given_):
                if severity == "error":
                    given_errors += 1
                    sink.error(None, f"e{n}")
                else:
                    given_warnings += 1
                    sink.warn(None, f"w{n}")
            sink.raise_if_errors()
            items, unstored, extra = sink.warnings, sink.unstored_warnings, 0
        except ConfigError as exc:
            items, unstored = [*exc.diagnostics, *exc.warnings], exc.unstored_warnings
            extra = 1 if given_errors >= limit else 0  # the "too many errors" line
        lines = cli._diagnostic_lines(items, unstored)
    full = [line for line in lines if not line.startswith("... and ")]
    counted = MORE.fullmatch(lines[-1]) if lines and lines[-1].startswith("... and ") else None
    more_errors = int(counted.group(1).replace(",", "")) if counted and counted.group(1) else 0
    more_warnings = int(counted.group(2).replace(",", "")) if counted and counted.group(2) else 0
    assert sum(line.startswith("warning:") for line in full) + more_warnings == given_warnings
    assert sum(line.startswith("error:") for line in full) + more_errors == given_errors + extra
