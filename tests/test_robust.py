"""Hostile input found by an attack run: each a class, never a traceback or a hang."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from compiler import lockfile
from compiler.errors import ConfigError
from helpers import run_cli


def _lock_error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        lockfile.parse(Path("dockwright.lock"), text)
    return err.value.render().splitlines()[0]


@pytest.mark.parametrize("opener, closer", [("[", "]"), ("{x = ", "}")])
def test_a_deeply_nested_lock_file_is_a_located_error(opener: str, closer: str) -> None:
    text = "version = 1\nx = " + opener * 5000 + closer * 5000 + "\n"
    col = 5 + 99 * len(opener)
    assert _lock_error(text) == (
        f"dockwright.lock:2:{col}: error: dockwright.lock is not valid TOML: arrays or tables nested too deeply "
        "(run `dockwright lock` to write it again)")


def test_a_deeply_nested_pyproject_is_a_note(tmp_path: Path) -> None:
    from compiler.init import Found, _read_toml

    path = tmp_path / "pyproject.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    found = Found("p", "3.12")
    assert _read_toml(path, found) == {}
    assert found.notes == ["pyproject.toml was not read: not valid TOML: arrays or tables nested too deeply"]


def test_a_deeply_nested_manifest_is_not_ours() -> None:
    from compiler.emit import _manifest

    assert _manifest(b"[" * 100000 + b"]" * 100000) is None


# -- build --jobs: never more threads than images, a sane maximum, a thread that cannot start ------

def _jobs(n: int) -> list[Any]:
    from compiler.builders.base import Job

    return [Job(name=f"i{k}", tag=f"p-i{k}:0", push_tag=None, dockerfile=f"out/images/i{k}/Dockerfile", context=".",
                inputs=(), parent=None, checks=(), project="p") for k in range(n)]


class _Quick:
    """A schedule whose images are all reused at once: only the threads matter."""

    @staticmethod
    def run(n: int, jobs: int) -> list[str]:
        from compiler.builders.base import Outcome
        from compiler.builders.schedule import Options, _Run

        class Quick(_Run):
            def one(self, job: Any) -> Outcome:
                return Outcome(job.name, job.tag, "reused")

        return [o.status for o in Quick(None, _jobs(n), Path("."), Options(jobs=jobs), lambda p: None).run()]  # type: ignore[arg-type]


def test_workers_never_outnumber_images(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    real = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        real(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    assert _Quick.run(1, 64) == ["reused"]
    assert started == ["dockwright-build-0"]
    started.clear()
    assert _Quick.run(3, 2) == ["reused"] * 3
    assert started == ["dockwright-build-0", "dockwright-build-1"]


def test_a_thread_that_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler.errors import BuildError

    real = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if not self.name.endswith("-0") or refuse_all:
            raise RuntimeError("can't start new thread")
        real(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    refuse_all = False
    assert _Quick.run(5, 4) == ["reused"] * 5  # the one that started builds them all
    refuse_all = True
    with pytest.raises(BuildError) as err:
        _Quick.run(5, 4)
    assert str(err.value) == "cannot start a build thread: can't start new thread"


def test_jobs_has_a_maximum(tmp_path: Path) -> None:
    done = run_cli("build", "--jobs", "100000", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == "Error: Invalid value for '--jobs' / '-j': 100000 is not in the range 1<=x<=64."


# -- only "\n" ends a Dockerfile line; the header's command pastes into a shell ---------------------

@pytest.mark.parametrize("odd", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_the_failing_instruction_is_counted_by_newlines_only(odd: str) -> None:
    from compiler.builders.context import instruction_at

    dockerfile = f'FROM python:3.12-slim\nENV A="a{odd}z" \\\n    B=b\nRUN false\n'.encode()
    assert instruction_at(dockerfile, 3) == (4, "RUN false")
    assert instruction_at(dockerfile, 2) == (2, f'ENV A="a{odd}z" B=b')


@pytest.mark.parametrize("output", ["build out", "a ~b", "plain"])
def test_the_header_command_pastes_into_a_shell(output: str, tmp_path: Path) -> None:
    import shlex

    from compiler.pipeline import compile_project

    main = tmp_path / "dockwright.yaml"
    main.write_text(f"version: 1\nproject: p\noutput: \"{output}\"\nrunner: {{environment: a}}\n"
                    "environments:\n  a:\n    python: '3.12'\n", encoding="utf-8")
    compiled = compile_project(main)
    header = compiled.files["images/a/Dockerfile"].split("\n")[1]
    prefix = "# Build from the project root: "
    assert header.startswith(prefix)
    tag = compiled.plan.images["a"].tag
    assert shlex.split(header[len(prefix):]) == ["docker", "build", "-f", f"{output}/images/a/Dockerfile", "-t", tag,
                                                 "."]
