"""ruff (configured in pyproject.toml) finds nothing in compiler/, tests/ and bench/, no function of compiler/
is above cyclomatic complexity 15 (radon), and the repository's own
pre-commit hooks (.pre-commit-config.yaml, all local: nothing is downloaded) pass on a copy of it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import ROOT, tool


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([tool("ruff"), "check", "--no-cache", "--output-format", "concise", "compiler", "tests",
                             "bench"], cwd=ROOT, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "All checks passed!\n"), result.stdout + result.stderr


MAX_COMPLEXITY = 15


def test_no_function_of_the_package_is_above_complexity_15() -> None:
    """radon's cyclomatic complexity of every function and method in compiler/ (what `radon cc -s -n C compiler/`
    lists): a function above 15 is split into named steps."""
    from radon.complexity import cc_visit

    found = []
    for path in sorted((ROOT / "compiler").rglob("*.py")):
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if block.complexity > MAX_COMPLEXITY:
                found.append(f"{path.relative_to(ROOT)}:{block.lineno} {block.fullname} ({block.complexity})")
    assert found == []


def test_the_complexity_check_finds_a_complex_function() -> None:
    from radon.complexity import cc_visit

    source = "def f(x):\n" + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(MAX_COMPLEXITY)) + "    return -1\n"
    assert [b.complexity for b in cc_visit(source)] == [MAX_COMPLEXITY + 1]


def _not_sources(folder: str, names: list[str]) -> set[str]:
    """What a checkout holds besides its files (git's own folder, caches, builds): not copied."""
    anywhere = shutil.ignore_patterns("__pycache__", ".*_cache", ".hypothesis", "*.egg-info")(folder, names)
    top = {".git", ".venv", "build", "dist"} if Path(folder) == ROOT else set()
    bench = {n for n in names if n == "out" or n.startswith("tmp")} if Path(folder) == ROOT / "bench" else set()
    return set(anywhere) | (top & set(names)) | bench


@pytest.mark.slow
def test_the_repositorys_pre_commit_hooks_pass(tmp_path: Path) -> None:
    """On a fresh git repository holding this checkout's files (end-of-file-fixer rewrites what it fixes: never
    the checkout itself), with this environment's commands first on PATH. The mypy hook runs `python -m mypy`,
    which test_types.py runs already: skipped here (a cold mypy would double its time)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=_not_sources)
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    scripts = str(Path(tool("pre-commit")).parent)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", ""), "SKIP": "mypy",
           "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}

    def run(*hook: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool("pre-commit"), "run", *hook, "--all-files", "--color", "never"], cwd=repo,
                              env=env, capture_output=True, text=True, timeout=600)

    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.rsplit(".", 1)[-1] for line in result.stdout.splitlines() if "..." in line] == [
        "Passed", "Skipped", "Passed", "Passed", "Passed", "Passed"], result.stdout

    project = repo / "examples" / "quickstart" / "dockwright.yaml"
    project.write_text(project.read_text(encoding="utf-8").replace("PYTHONUNBUFFERED: 1", "PYTHONUNBUFFERED: 0"),
                       encoding="utf-8")
    stale = run("examples-compile-check")
    assert stale.returncode == 1
    assert "stale: examples/quickstart/generated/images/base/Dockerfile\n" in stale.stdout, stale.stdout
