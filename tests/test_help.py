"""Every option a command's --help offers is one it accepts: given alone (with the partners it documents), on a valid
project, it is never a usage error. -f/--file is not offered by the commands that read no project file (init,
schema, import zenml), which refuse it in words."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import click
import pytest

from compiler import cli
from helpers import invoke
from lock.servers import Dist, Index

PROJECT = """\
version: 1
project: p
registry: 127.0.0.1:9/p
environments:
  base: {python: "3.11"}
runner: {environment: base}
pipelines:
  daily:
    environment: base
    steps: {a: {}}
builders:
  gone: {type: docker, url: "tcp://127.0.0.1:9"}
"""

RUN_YAML = "steps:\n  train:\n    settings:\n      docker:\n        parent_image: python:3.11-slim\n"

# command -> the arguments every run of it takes (a fresh folder is made per run where it writes one)
BASE: dict[tuple[str, ...], list[str]] = {
    ("build",): ["--builder", "gone"], ("compile",): [], ("diff",): [], ("explain",): ["base"],
    ("export", "bake"): [], ("export", "zenml"): ["--local"], ("graph",): [], ("import", "zenml"): ["run.yaml"],
    ("init",): [], ("lock",): ["--skip-parents"], ("schema",): [], ("validate",): [],
}
# option -> what it is given with (its value, and the options it goes with)
GIVEN: dict[str, list[str]] = {
    "--file": ["-f", "dockwright.yaml"], "--quiet": ["-q"], "--help": ["--help"],
    "--check": ["--check"], "--watch": ["--watch"], "--exit-code": ["--exit-code"], "--format": ["--format", "dot"],
    "--json": ["--json"], "--builder": ["--builder", "gone"], "--push": ["--push"], "--jobs": ["-j", "2"],
    "--no-reuse": ["--no-reuse"], "--verbose": ["-v"], "--output": ["-o", "elsewhere"],
    "--from": ["--from", "build.json"], "--local": ["--local"], "--upgrade": ["--upgrade"],
    "--upgrade-package": ["--upgrade-package", "pandas"], "--offline": ["--offline", "--check"],
    "--skip-parents": ["--skip-parents"], "--include": ["--include"], "--project": ["--project", "named"],
    "--python": ["--python", "3.12"], "--directory": ["-C", "into"],
}
# options that replace one of the base arguments
INSTEAD = {"--from": "--local", "--offline": "--skip-parents"}


def _leaves(group: click.Group = cli.main, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for name, command in sorted(group.commands.items()):
        out += _leaves(command, (*path, name)) if isinstance(command, click.Group) else [((*path, name), command)]
    return out


LEAVES = dict(_leaves())


def offered(names: tuple[str, ...]) -> list[str]:
    """The long option names the command's --help lists."""
    text = invoke(*names, "--help", cwd=Path.cwd()).stdout
    options = text.split("\nOptions:\n", 1)[1]
    return sorted(set(re.findall(r"^ {2}(?:-\w, )?(--[a-z-]+)", options, flags=re.M)))


@pytest.mark.parametrize("names", [("init",), ("schema",), ("import", "zenml")], ids=" ".join)
def test_commands_that_read_no_project_file_do_not_offer_f(names: tuple[str, ...]) -> None:
    assert "--file" not in offered(names)
    assert "-f" not in invoke(*names, "--help", cwd=Path.cwd()).stdout.split("\nOptions:\n", 1)[1]


def test_every_command_has_its_runs() -> None:
    assert sorted(BASE) == sorted(LEAVES)
    assert {o for names in LEAVES for o in offered(names)} <= set(GIVEN)


@pytest.fixture(scope="module")
def index() -> Any:
    """A local package index with pandas (for `lock --upgrade-package pandas`)."""
    idx = Index()
    idx.add(Dist("pandas", "1.0"))
    try:
        yield idx
    finally:
        idx.close()


def _project(tmp_path: Path, index: Index) -> Path:
    root = tmp_path
    root.mkdir(exist_ok=True)
    base = f'{{python: "3.11", index_url: "{index.url}", requirements: [pandas]}}'
    (root / "dockwright.yaml").write_text(PROJECT.replace('{python: "3.11"}', base), encoding="utf-8")
    (root / "run.yaml").write_text(RUN_YAML, encoding="utf-8")
    (root / "build.json").write_text('{"images": []}', encoding="utf-8")
    (root / "into").mkdir()
    return root


@pytest.mark.parametrize("names", sorted(BASE), ids=" ".join)
def test_every_option_help_offers_is_accepted(names: tuple[str, ...], tmp_path: Path, index: Index,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for env, value in {"ZENML_CONFIG_PATH": str(tmp_path / "zenml-config"), "ZENML_ANALYTICS_OPT_IN": "false",
                       "ZENML_LOGGING_VERBOSITY": "ERROR", "AUTO_OPEN_DASHBOARD": "false",
                       "UV_CACHE_DIR": str(tmp_path / "uv-cache")}.items():
        monkeypatch.setenv(env, value)
    for n, option in enumerate(offered(names)):
        root = _project(tmp_path / f"run{n}", index)
        if names in (("init",), ("import", "zenml")):
            (root / "dockwright.yaml").unlink()  # they write it
        args = list(BASE[names])
        if option in INSTEAD:
            args.remove(INSTEAD[option])
        args += [a for a in GIVEN[option] if a not in args]

        def stop(seconds: float) -> None:  # compile --watch: one round, then Ctrl-C (exit 0)
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            patch.setattr(time, "sleep", stop)
            done = invoke(*names, *args, cwd=root)
        assert done.returncode != 2, (names, args, done.stderr)
        assert "does not apply" not in done.stderr and "No such option" not in done.stderr, (names, args)
