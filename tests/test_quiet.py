"""`-q` prints only errors (docs/commands.md): no summary line, no note, no warning; what a command exists to print
(a diff, a graph, an explanation, the schema, `--json`, the lines `--check` lists) is still printed. Every command
of the command line is run here, quiet, on a valid project: a new command must be added to RUNS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import pytest

from compiler import cli
from helpers import invoke

PROJECT = """\
version: 1
project: p
environments:
  base: {python: "3.11"}
  spare: {python: "3.12"}
runner: {environment: base}
pipelines:
  daily:
    environment: base
    steps: {a: {}}
builders:
  gone: {type: docker, url: "tcp://127.0.0.1:9"}
"""

RUN_YAML = """\
settings:
  docker:
    parent_image: python:3.11-slim
    requirements: [pandas==2.2.2]
steps:
  train:
    settings:
      docker:
        requirements: [scikit-learn==1.5.0]
"""


def _leaves(group: click.Group = cli.main, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        out += _leaves(command, (*path, name)) if isinstance(command, click.Group) else [(*path, name)]
    return out


# (the command, its arguments, what it exists to print on stdout: "same" as without -q, or "" for nothing)
RUNS: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (("init",), ("fresh",), ""),
    (("validate",), (), ""),
    (("lock",), ("--skip-parents",), ""),
    (("lock",), ("--check", "--skip-parents"), ""),
    (("lock",), ("--check", "--offline"), ""),
    (("compile",), (), ""),
    (("compile",), ("--check",), ""),
    (("compile",), ("--watch",), ""),
    (("diff",), (), ""),
    (("graph",), (), "same"),
    (("explain",), ("base",), "same"),
    (("schema",), (), "same"),
    (("export", "bake"), (), ""),
    (("export", "zenml"), ("--local",), ""),
    (("import", "zenml"), ("run.yaml", "-C", "imported"), ""),
]


def test_every_command_is_run() -> None:
    assert sorted({names for names, _, _ in RUNS} | {("build",)}) == _leaves()  # build: the test after the next


@pytest.fixture
def zenml_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in {"ZENML_CONFIG_PATH": str(tmp_path / "zenml-config"), "ZENML_ANALYTICS_OPT_IN": "false",
                       "ZENML_LOGGING_VERBOSITY": "ERROR", "ZENML_ENABLE_RICH_TRACEBACK": "false",
                       "AUTO_OPEN_DASHBOARD": "false"}.items():
        monkeypatch.setenv(key, value)


def _run(root: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    if "--watch" in args:  # one round, then Ctrl-C (how a watch ends: exit 0)
        def stop(seconds: float) -> None:
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            patch.setattr(time, "sleep", stop)
            return invoke(*args, cwd=root)
    return invoke(*args, cwd=root)


def _fresh(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "dockwright.yaml").write_text(PROJECT, encoding="utf-8")
    (root / "fresh").mkdir()
    (root / "fresh/requirements.txt").write_text("pandas==2.2.2\n-e .\n", encoding="utf-8")
    (root / "fresh/pyproject.toml").write_text('[project]\nname = "x"\n[build-system]\nrequires = ["setuptools"]\n',
                                               encoding="utf-8")
    (root / "imported").mkdir()
    (root / "run.yaml").write_text(RUN_YAML, encoding="utf-8")
    return root


def test_quiet_prints_only_what_a_command_exists_to_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          zenml_env: None) -> None:
    loud_root, quiet_root = _fresh(tmp_path, "loud"), _fresh(tmp_path, "quiet")
    for names, args, printed in RUNS:
        loud = _run(loud_root, [*names, *args], monkeypatch)
        quiet = _run(quiet_root, ["-q", *names, *args], monkeypatch)
        assert loud.returncode == quiet.returncode == 0, (names, args, loud.stderr)
        assert (quiet.stdout, quiet.stderr) == (loud.stdout if printed == "same" else "", ""), (names, args)
        if printed == "":  # there was something to keep quiet: a summary, a note or a warning
            assert loud.stdout or loud.stderr, (names, args)
    assert sorted(p.name for p in quiet_root.rglob("*")) == sorted(p.name for p in loud_root.rglob("*"))


def test_quiet_build_and_lock_print_only_errors(tmp_path: Path) -> None:
    root = _fresh(tmp_path, "p")
    build = invoke("-q", "build", "--builder", "gone", cwd=root)
    assert (build.returncode, build.stdout) == (3, "")
    assert build.stderr.startswith("error: cannot reach the Docker engine at tcp://127.0.0.1:9") and \
        len(build.stderr.splitlines()) == 1, build.stderr
    assert invoke("-q", "lock", "--skip-parents", cwd=root).stdout == ""
    (root / "dockwright.yaml").write_text(PROJECT.replace("  spare: {python: \"3.12\"}\n", ""), encoding="utf-8")
    stale = invoke("-q", "lock", "--check", "--skip-parents", cwd=root)  # what --check lists, and the error
    assert (stale.returncode, stale.stdout, stale.stderr) == (
        1, "", "would change: spare: removed\ndockwright.lock is out of date; run 'dockwright lock'\n")
