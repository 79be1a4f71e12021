"""Golden cases: tests/cases/<name>/ holds a project and either expected/ (the exact output tree)
or expected.txt (the exact text `dockwright compile` prints on stderr). Adding a case means adding
a folder. Regenerate after an intended change with DOCKWRIGHT_UPDATE_GOLDEN=1 and review the diff.

Each case runs in this process (helpers.invoke); a few run again through the real entry point
(`python -m compiler`, a process of its own) and must print and exit exactly alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import CASES, UPDATE, copy_project, invoke, run_cli, tree

# What compile says on stderr (after any warnings) for a project without dockwright.lock.
UNLOCKED = "note: no dockwright.lock: packages and parent images are not pinned (run `dockwright lock`)\n"
CASE_DIRS = sorted(p for p in CASES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_case(case: Path, tmp_path: Path) -> None:
    work = copy_project(case, tmp_path / case.name)
    result = invoke("compile", cwd=work, env={"NO_COLOR": "1"})
    expected_text = case / "expected.txt"
    expected_tree = case / "expected"
    expected_warnings = case / "warnings.txt"
    note = "" if (work / "dockwright.lock").exists() else UNLOCKED
    if UPDATE:
        if result.returncode == 0:
            expected_text.unlink(missing_ok=True)
            shutil.rmtree(expected_tree, ignore_errors=True)
            out = work / _output_dir(work)
            shutil.copytree(out, expected_tree)
            if result.stderr.removesuffix(note):
                expected_warnings.write_text(result.stderr.removesuffix(note), encoding="utf-8")
            else:
                expected_warnings.unlink(missing_ok=True)
        else:
            shutil.rmtree(expected_tree, ignore_errors=True)
            expected_text.write_text(result.stderr, encoding="utf-8")
    assert result.returncode in (0, 1), result.stderr
    if expected_text.exists():
        assert result.returncode == 1
        assert result.stderr == expected_text.read_text(encoding="utf-8")
        assert not (work / _output_dir(work)).exists(), "an invalid project must write nothing"
    else:
        assert result.returncode == 0, result.stderr
        assert tree(work / _output_dir(work)) == tree(expected_tree)
        warnings = expected_warnings.read_text(encoding="utf-8") if expected_warnings.exists() else ""
        assert result.stderr == warnings + note


# Valid cases (one with warnings) and invalid ones (bad YAML, an include, unknown keys): the process and the
# in-process run agree on each.
THROUGH_THE_ENTRY_POINT = ["error-include", "error-unknown-keys", "error-yaml-syntax", "out-layering", "out-no-python"]


@pytest.mark.parametrize("name", THROUGH_THE_ENTRY_POINT)
def test_case_through_the_entry_point(name: str, tmp_path: Path) -> None:
    case = CASES / name
    assert case.is_dir(), name
    process = run_cli("compile", cwd=copy_project(case, tmp_path / "process"), env={"NO_COLOR": "1"})
    in_process = invoke("compile", cwd=copy_project(case, tmp_path / "in-process"), env={"NO_COLOR": "1"})
    assert (process.returncode, process.stdout, process.stderr) == (
        in_process.returncode, in_process.stdout, in_process.stderr)
    assert tree(tmp_path / "process") == tree(tmp_path / "in-process")


def _output_dir(work: Path) -> str:
    for line in (work / "dockwright.yaml").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("output:"):
            return line.split(":", 1)[1].strip()
    return "generated"
