"""The compile fast path (compiler/fastpath.py): an unchanged project is answered from a record, exactly
as the full compile answers; any change to an input, an output or dockwright itself falls through."""

from __future__ import annotations

import contextlib
import io
import marshal
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler import cli, fastpath, record
from helpers import EXAMPLES, run_cli

NO_CACHE = {"DOCKWRIGHT_NO_CACHE": "1"}


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def fast(folder: Path, *args: str) -> tuple[int | None, str, str]:
    """The fast path's answer in this process: (None, "", "") when it falls through."""
    out, err = io.StringIO(), io.StringIO()
    with _in(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = fastpath._answer(list(args))
    return code, out.getvalue(), err.getvalue()


def slow(folder: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The full command in this process, recording as the console script does (what the console script
    runs when the fast path falls through: `fast` gives None)."""
    with _in(folder):
        result = CliRunner().invoke(cli.main, list(args), obj={"record": True}, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    root = tmp_path / "platform"
    shutil.copytree(EXAMPLES / "platform", root)
    return root


def test_an_unchanged_project_is_answered_exactly_as_the_full_compile(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(EXAMPLES / "quickstart", root)
    (root / "dockwright.lock").unlink()  # unlocked: the note is printed, and 'spare' needs no lock entry
    text = (root / "dockwright.yaml").read_text().replace("environments:\n", "environments:\n  spare: {python: '3.12'}\n")
    (root / "dockwright.yaml").write_text(text)  # a warning: 'spare' is used by nothing
    assert run_cli("compile", cwd=root, env=NO_CACHE).returncode == 0
    for args in (["compile"], ["compile", "--check"], ["-q", "compile", "--check"], ["compile", "-f", "."]):
        full = run_cli(*args, cwd=root, env=NO_CACHE)
        first = run_cli(*args, cwd=root)  # full, and records
        again = run_cli(*args, cwd=root)  # from the record
        assert fast(root, *args)[0] == 0, args
        for r in (first, again):
            assert (r.returncode, r.stdout, r.stderr) == (full.returncode, full.stdout, full.stderr), args
    assert "warning: environment 'spare' is not used" in full.stderr


def test_from_a_subdirectory_paths_are_shown_as_the_full_compile_shows_them(platform: Path) -> None:
    sub = platform / "envs"
    run_cli("compile", cwd=sub)
    assert fast(sub, "compile", "--check")[0] == 0
    assert run_cli("compile", "--check", cwd=sub).stdout == run_cli("compile", "--check", cwd=sub, env=NO_CACHE).stdout
    assert fast(platform, "compile", "--check")[0] is None  # another directory, another record


Mutation = Callable[[Path], None]


def _append(rel: str, text: str) -> Mutation:
    def mutate(root: Path) -> None:
        with open(root / rel, "a", encoding="utf-8") as handle:
            handle.write(text)
    return mutate


def _write(rel: str, text: str) -> Mutation:
    def mutate(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return mutate


def _remove(rel: str) -> Mutation:
    return lambda root: (root / rel).unlink()


MUTATIONS: dict[str, Mutation] = {
    "project file": _append("dockwright.yaml", "\n# a comment\n"),
    "included file": _append("envs/common.yaml", "\n# a comment\n"),
    "new file matching an include glob": _write("envs/more.yaml", "environments:\n  extra: {python: '3.12'}\n"),
    "new folder matching an include glob": _write("envs/folder.yaml/x", "hello\n"),
    "certificate": _append("certs/proxy-ca.pem", "\n"),
    "deleted certificate": _remove("certs/proxy-ca.pem"),
    "custom Dockerfile": _append("docker/cuda.Dockerfile", "\n# a comment\n"),
    "new .dockerignore": _write(".dockerignore", "build/\n"),
    "lock file": _write("dockwright.lock", "version = 1\n"),
    "edited output file": _append("build/docker/manifest.json", " "),
    "deleted output file": _remove("build/docker/manifest.json"),
    "new file in the output": _write("build/docker/images/notes.txt", "hello\n"),
}
# On examples/ml-training: requirements files and their -r children.
REQUIREMENTS: dict[str, Mutation] = {
    "requirements file": _append("requirements.txt", "\n# a comment\n"),
    "new -r child": lambda root: (_write("more.txt", "rich==13.7.1\n")(root), _append("requirements.txt", "-r more.txt\n")(root)),
    "deleted requirements file": _remove("requirements.txt"),
}


def _falls_through(root: Path, mutate: Mutation) -> None:
    assert slow(root, "compile")[0] == 0
    assert fast(root, "compile", "--check")[0] == 0
    mutate(root)
    assert fast(root, "compile", "--check") == (None, "", "")
    assert fast(root, "compile") == (None, "", "")
    # fast gave None, so the console script runs the full command: in this process here (the script as a
    # process is the first test's), it answers as with no cache at all, and records only an up-to-date output.
    full = slow(root, "compile", "--check", env=NO_CACHE)
    through = slow(root, "compile", "--check")
    assert through == full
    assert through[0] == 0 or fast(root, "compile", "--check") == (None, "", "")


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_any_change_falls_through_to_the_full_compile(platform: Path, name: str) -> None:
    _falls_through(platform, MUTATIONS[name])


@pytest.mark.parametrize("name", sorted(REQUIREMENTS))
def test_requirements_changes_fall_through(tmp_path: Path, name: str) -> None:
    root = tmp_path / "ml"
    shutil.copytree(EXAMPLES / "ml-training", root)
    (root / "dockwright.lock").unlink()  # a changed requirement would make the lock stale: an error, not a compile
    _falls_through(root, REQUIREMENTS[name])
    if name == "new -r child":  # the child is an input, too
        assert slow(root, "compile")[0] == 0 and fast(root, "compile", "--check")[0] == 0
        _append("more.txt", "# more\n")(root)
        assert fast(root, "compile", "--check")[0] is None


LOCAL_PACKAGE: dict[str, Mutation] = {
    "its pyproject.toml": _append("libs/feature/pyproject.toml", 'dependencies = ["attrs"]\n'),
    "a new setup.cfg": _write("libs/feature/setup.cfg", "[metadata]\nname = feature\n"),
    "its pyproject.toml removed, a setup.py instead": lambda root: (
        _remove("libs/feature/pyproject.toml")(root), _write("libs/feature/setup.py", "import setuptools\n")(root)),
}


@pytest.mark.parametrize("name", sorted(LOCAL_PACKAGE))
def test_a_local_packages_build_files_are_inputs(tmp_path: Path, name: str) -> None:
    """They declare the dependencies dockwright.lock resolves: any change to them (their contents, not only
    whether they are there) falls through, so a lock they make stale is an error on the next --check."""
    root = tmp_path / "p"
    _write("dockwright.yaml", "version: 1\nproject: p\nenvironments:\n  base:\n    python: '3.11'\n"
                              "    local_packages: [libs/feature]\nrunner: {environment: base}\n")(root)
    _write("libs/feature/pyproject.toml", '[project]\nname = "feature"\nversion = "1"\n')(root)
    _falls_through(root, LOCAL_PACKAGE[name])


def test_another_dockwright_falls_through(platform: Path) -> None:
    assert slow(platform, "compile")[0] == 0
    assert fast(platform, "compile", "--check")[0] == 0
    with _in(platform):
        where = record.cache_path(record.key(os.getcwd(), False, None))
    assert where is not None
    kept = marshal.loads(Path(where).read_bytes())
    version, files = kept["identity"]
    path, size, mtime = files[0]
    kept["identity"] = (version, ((path, size + 1, mtime), *files[1:]))  # one file of dockwright differs
    Path(where).write_bytes(marshal.dumps(kept))
    assert fast(platform, "compile", "--check")[0] is None
    kept["identity"] = ("3.0.0 (another Python)", files)
    Path(where).write_bytes(marshal.dumps(kept))
    assert fast(platform, "compile", "--check")[0] is None
    Path(where).write_bytes(b"not a record")
    assert fast(platform, "compile", "--check")[0] is None


def test_a_stale_output_is_never_recorded_and_other_commands_are_never_answered(platform: Path) -> None:
    (platform / "build/docker/manifest.json").unlink()
    assert slow(platform, "compile", "--check")[0] == 1
    assert fast(platform, "compile", "--check")[0] is None
    assert slow(platform, "compile")[0] == 0
    for args in (["validate"], ["compile", "--watch"], ["compile", "--help"], ["diff"], ["compile", "-x"]):
        assert fastpath.parse_args(args) is None
        assert fast(platform, *args)[0] is None


def test_no_cache_turns_it_off(platform: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert slow(platform, "compile")[0] == 0
    monkeypatch.setenv("DOCKWRIGHT_NO_CACHE", "1")
    assert fast(platform, "compile", "--check")[0] is None


# ----- the property: random changes to inputs and outputs; the fast path never answers otherwise -----

STEPS = st.sampled_from(sorted(MUTATIONS) + ["compile", "compile", "restore"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(steps=st.lists(STEPS, min_size=1, max_size=6))
def test_fast_answers_are_always_the_full_answers(tmp_path: Path, steps: list[str]) -> None:
    root = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
    shutil.copytree(EXAMPLES / "platform", root)
    slow(root, "compile")
    for step in steps:
        if step == "compile":
            slow(root, "compile")
        elif step == "restore":
            shutil.rmtree(root)
            shutil.copytree(EXAMPLES / "platform", root)
        else:
            try:
                MUTATIONS[step](root)
            except FileNotFoundError:
                continue
        for args in (("compile", "--check"), ("-q", "compile", "--check")):
            answer = fast(root, *args)
            full = slow(root, *args)
            if answer[0] is not None:
                assert answer == full, (steps, step)


def test_an_output_edited_while_compiling_is_not_recorded(platform: Path) -> None:
    assert slow(platform, "compile")[0] == 0
    assert fast(platform, "compile", "--check")[0] == 0
    # What cli.py records after the full run, had manifest.json changed between compiling and recording:
    with _in(platform):
        record.save(quiet=False, file=None, main=str(platform / "dockwright.yaml"), root=str(platform),
                      output="build/docker", probes={}, packages=[], reads={}, globs=[], check_lines=[],
                      compile_lines=[], expected={"manifest.json": "0" * 64})
    assert fast(platform, "compile", "--check")[0] is None


def test_a_file_changed_while_compiling_is_not_recorded(platform: Path) -> None:
    assert slow(platform, "compile")[0] == 0
    with _in(platform):
        record.save(quiet=False, file=None, main=str(platform / "dockwright.yaml"), root=str(platform),
                      output="build/docker", probes={}, packages=[], reads={str(platform / "dockwright.yaml"): "0" * 64},
                      globs=[], check_lines=[], compile_lines=[], expected={})
    assert fast(platform, "compile", "--check")[0] is None
