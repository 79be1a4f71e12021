"""Hostile input found by an attack run: each a class, never a traceback or a hang."""

from __future__ import annotations

import threading
import types
from pathlib import Path
from typing import Any

import pytest

from compiler import lockfile
from compiler.errors import ConfigError
from helpers import invoke, run_cli


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

# The schedule reads only the builder's endpoint (its name and proxies) before it starts workers.
_NO_ENGINE = types.SimpleNamespace(endpoint=types.SimpleNamespace(name="local", proxy={}))


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
            def one(self, job: Any, seat: Any) -> Outcome:
                return Outcome(job.name, job.tag, "reused")

        return [o.status for o in Quick(_NO_ENGINE, _jobs(n), Path("."), Options(jobs=jobs), lambda p: None).run()]  # type: ignore[arg-type]


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
    done = invoke("build", "--jobs", "100000", cwd=tmp_path)
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

    from compiler.driver import compile_project

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


# -- Ctrl-C during compile: the output is the old tree or the new one, never a mix ------------------

def _big(n: int, python: str) -> str:
    return "version: 1\nproject: big\nrunner: {environment: e0}\nenvironments:\n" + "".join(
        f"  e{i}:\n    python: '{python}'\n    apt_packages: [pkg{i}]\n" for i in range(n))


@pytest.mark.slow
def test_ctrl_c_during_compile_leaves_the_old_output_or_the_new(tmp_path: Path) -> None:
    """SIGINT at random moments late in a compile of 1,500 environments (when the writing happens): the
    output is byte for byte the old tree or the new one, with no temp file left (a mix, and up to 3,000
    temp files, were left)."""
    import random
    import signal
    import subprocess
    import sys
    import time

    from helpers import tree

    n = 1500

    def fresh(name: str) -> tuple[Path, dict[str, bytes]]:
        project = tmp_path / name
        project.mkdir()
        (project / "dockwright.yaml").write_text(_big(n, "3.11"), encoding="utf-8")
        assert run_cli("compile", cwd=project, timeout=600).returncode == 0
        (project / "dockwright.yaml").write_text(_big(n, "3.12"), encoding="utf-8")
        return project, tree(project / "generated")

    def start(project: Path) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "compiler", "compile"], cwd=project,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    project, old = fresh("calibrate")
    began = time.monotonic()
    assert start(project).wait(timeout=600) == 0
    whole = time.monotonic() - began
    new = tree(project / "generated")
    assert new != old
    rng = random.Random(2028)
    for round_ in range(3):
        project, old = fresh(f"p{round_}")
        proc = start(project)
        time.sleep(whole * rng.uniform(0.7, 1.0))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=600)
        got = tree(project / "generated")
        assert got in (old, new), sorted(set(got) ^ set(old))[:5]
        if proc.returncode == -signal.SIGINT:  # a busy machine: still starting up, before dockwright's handler
            continue
        assert proc.returncode in (0, 130), err
        if proc.returncode == 130:
            assert err.splitlines()[-1] == "interrupted"


def test_ctrl_c_while_leaving_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A KeyboardInterrupt that arrives while the process is already leaving (it replaces the SystemExit
    on its way out, after the new tree is written; CI saw the process die of SIGINT there) is 'interrupted'
    and exit 130, never a traceback."""
    import sys

    from compiler import fastpath

    def leaving(args: list[str]) -> int:
        try:
            sys.exit(0)
        finally:
            raise KeyboardInterrupt

    monkeypatch.setattr(fastpath, "answer", leaving)
    with pytest.raises(SystemExit) as exited:
        fastpath.run()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_while_click_parses_is_interrupted(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Outside a command (click parsing the line, or the command already returned) click's standalone mode made
    a Ctrl-C 'Aborted!' and exit 1 (a new user's Ctrl-C tries); dockwright's is 'interrupted', exit 130."""
    import sys

    from compiler import cli

    def parse(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.main, "parse_args", parse)
    monkeypatch.setattr(sys, "argv", ["dockwright", "validate"])
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 130
    assert capsys.readouterr().err.splitlines()[-1] == "interrupted"


# -- a FIFO (or a device, a socket) where a file should be: one clear line, never a hang ------------

def _project(folder: Path) -> None:
    (folder / "dockwright.yaml").write_text("version: 1\nproject: p\nrunner: {environment: a}\nenvironments:\n"
                                            "  a:\n    python: '3.12'\n", encoding="utf-8")


@pytest.mark.parametrize("args", [["lock"], ["lock", "--check"], ["lock", "--check", "--offline"], ["compile"],
                                  ["validate"]])
def test_a_fifo_lock_file(args: list[str], tmp_path: Path) -> None:
    """Every command that reads the lock reads it the same way: a lock that cannot be read is one line and
    exit 2, as for the project file."""
    import os

    _project(tmp_path)
    os.mkfifo(tmp_path / "dockwright.lock")
    done = run_cli(*args, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == \
        "error: cannot read dockwright.lock: it is a named pipe (FIFO), not a regular file"


def test_read_regular_says_what_is_there(tmp_path: Path) -> None:
    import os

    from compiler.errors import read_regular

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError) as err:
        read_regular(tmp_path / "fifo")
    assert err.value.strerror == "it is a named pipe (FIFO), not a regular file"
    with pytest.raises(OSError) as err:
        read_regular("/dev/null")
    assert err.value.strerror == "it is a character device, not a regular file"
    with pytest.raises(IsADirectoryError):
        read_regular(tmp_path)
    (tmp_path / "f").write_bytes(b"x")
    assert read_regular(tmp_path / "f") == b"x"


def test_a_fifo_run_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    pytest.importorskip("zenml")
    from compiler.zenml_import import ImportFailed, read_target

    os.mkfifo(tmp_path / "run.yaml")
    with pytest.raises(ImportFailed) as err:
        read_target("run.yaml", tmp_path)
    assert str(err.value) == "cannot read run.yaml: it is a named pipe (FIFO), not a regular file"


def test_a_fifo_python_version_is_a_note(tmp_path: Path) -> None:
    import os

    from compiler.init import detect

    os.mkfifo(tmp_path / ".python-version")
    found = detect(tmp_path)
    assert ".python-version was not read: it is a named pipe (FIFO), not a regular file" in found.notes


# -- messages: say what is wrong ---------------------------------------------------------------------

def test_dash_f_says_what_is_there(tmp_path: Path) -> None:
    import os

    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "fifo.yaml")
    done = invoke("validate", "-f", "empty", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, "error: no dockwright.yaml in directory empty\n")
    done = run_cli("validate", "-f", "fifo.yaml", cwd=tmp_path, timeout=60)
    assert (done.returncode, done.stderr) == (2, "error: project file fifo.yaml is not a regular file\n")
    done = invoke("validate", "-f", "none.yaml", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, "error: no such project file: none.yaml\n")


@pytest.mark.parametrize(("line", "message"), [
    ("-r", "requirements.txt:1:1: error: option '-r' needs a file name (write -r FILE)"),
    ("--requirement=", "requirements.txt:1:1: error: option '--requirement' needs a file name (write --requirement FILE)"),
    ("-rmissing.txt", "requirements.txt:1:1: error: requirements file 'missing.txt' does not exist (a -r path is "
                      "relative to the file that names it)"),
])
def test_dash_r_says_what_is_wrong(line: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text("version: 1\nproject: p\nrunner: {environment: a}\nenvironments:\n"
                                              "  a:\n    python: '3.12'\n    requirements_files: [requirements.txt]\n",
                                              encoding="utf-8")
    (tmp_path / "requirements.txt").write_text(line + "\n", encoding="utf-8")
    done = invoke("validate", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == message


def test_the_rfile_form_is_read_as_pip_reads_it(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text("version: 1\nproject: p\nrunner: {environment: a}\nenvironments:\n"
                                              "  a:\n    python: '3.12'\n    requirements_files: [requirements.txt]\n",
                                              encoding="utf-8")
    (tmp_path / "requirements.txt").write_text("-rmore.txt\n", encoding="utf-8")
    (tmp_path / "more.txt").write_text("pandas==2.2.2\n", encoding="utf-8")
    done = invoke("validate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args", ["init", "import zenml run.yaml"])
def test_a_deleted_current_directory_is_named(args: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "gone").mkdir()
    done = subprocess.run(["sh", "-c", f'cd gone && rmdir ../gone && exec "$0" -m compiler {args}', sys.executable],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert (done.returncode, done.stderr) == (1, "error: the current directory no longer exists: No such file or "
                                                 "directory\n")
