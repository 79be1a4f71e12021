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
                    output="build/docker", paths=[], packages=[], reads={}, places={}, globs=[], check_lines=[],
                    compile_lines=[], expected={"manifest.json": "0" * 64})
    assert fast(platform, "compile", "--check")[0] is None


def test_a_file_changed_while_compiling_is_not_recorded(platform: Path) -> None:
    assert slow(platform, "compile")[0] == 0
    with _in(platform):
        record.save(quiet=False, file=None, main=str(platform / "dockwright.yaml"), root=str(platform),
                    output="build/docker", paths=[], packages=[], reads={str(platform / "dockwright.yaml"): "0" * 64},
                    places={}, globs=[], check_lines=[], compile_lines=[], expected={})
    assert fast(platform, "compile", "--check")[0] is None


def test_a_path_that_leads_elsewhere_since_compile_looked_is_not_recorded(platform: Path) -> None:
    """Where a path led when compile looked at it, not a moment later: a file swapped for a link meanwhile (the
    same bytes) leaves no record."""
    assert slow(platform, "compile")[0] == 0
    cert = str(platform / "certs/proxy-ca.pem")
    with _in(platform):
        record.save(quiet=False, file=None, main=str(platform / "dockwright.yaml"), root=str(platform),
                    output="build/docker", paths=[], packages=[], reads={},
                    places={cert: ("/elsewhere/proxy-ca.pem", "file")}, globs=[], check_lines=[], compile_lines=[],
                    expected={})
    assert fast(platform, "compile", "--check")[0] is None


# ----- links: the same bytes in another place are a change, whenever compile would judge them otherwise -----

PEM = (EXAMPLES / "quickstart" / "certs" / "proxy-ca.pem").read_text()
LINKED_PROJECT = {
    "dockwright.yaml": (
        "version: 1\nproject: p\ninclude: [envs/*.yaml]\n"
        "environments:\n  base:\n    python: '3.11'\n    requirements_files: [reqs/requirements.txt]\n"
        "    certificates: [certs/proxy-ca.pem]\n    local_packages: [libs/featlib]\n"
        "    copy:\n      - src/app\n      - {from: conf/prod.yaml, to: /srv/conf.yaml}\n"
        "runner: {environment: base}\n"
        "builders:\n  local: {type: docker}\n"
        "  ci:\n    type: docker\n    url: tcp://build.example:2376\n"
        "    tls: {ca: tls/ca.pem, cert: tls/cert.pem, key: tls/key.pem}\n"
        "default_builder: local\n"),
    "envs/gpu.yaml": ("environments:\n  cuda:\n    dockerfile: docker/cuda.Dockerfile\n    context: docker\n"
                      "    python: '3.10'\n"),
    "reqs/requirements.txt": "requests==2.32.3\n-r common/requirements-common.txt\n",
    "reqs/common/requirements-common.txt": "rich==13.7.1\n",
    "certs/proxy-ca.pem": PEM,
    "libs/featlib/pyproject.toml": '[project]\nname = "featlib"\nversion = "1"\n',
    "libs/featlib/featlib/__init__.py": "",
    "src/app/main.py": "print('hello')\n",
    "conf/prod.yaml": "level: info\n",
    "docker/cuda.Dockerfile": "FROM ubuntu:22.04\n",
    ".dockerignore": "**/__pycache__\n",
    "tls/ca.pem": PEM, "tls/cert.pem": PEM, "tls/key.pem": "not a real key\n",
}


def _linked_project(root: Path) -> Path:
    """A project with every kind of path compile reads or looks at: the project file, an included file, a
    requirements file and its -r child, a certificate, a copied file and folder, a local package, a custom
    Dockerfile and its context, .dockerignore, a builder's tls files (no lock: a -r child is resolved by lock)."""
    for rel, text in LINKED_PROJECT.items():
        _write(rel, text)(root)
    return root


def _linked(rel: str, inside: bool) -> Mutation:
    """rel (a file, or a folder on the way to some; itself a link or not) moved to a new place, outside the project
    or inside it, and a symbolic link to it left in its place: the same bytes, reached through a link."""
    def mutate(root: Path) -> None:
        base = root / "mirror" if inside else root.parent / f"{root.name}-elsewhere"
        target = base / str(len(list(base.iterdir())) if base.is_dir() else 0) / rel
        _move(root / rel, target)
        (root / rel).symlink_to(target)
    return mutate


def _unlinked(rel: str) -> Mutation:
    """A link at rel (or on the way to it) replaced by what it leads to: the same bytes, in the project again."""
    def mutate(root: Path) -> None:
        parts = Path(rel).parts
        link = next((root.joinpath(*parts[:i]) for i in range(1, len(parts) + 1)
                     if root.joinpath(*parts[:i]).is_symlink()), None)
        if link is not None:
            _move(link, root / "restored")
            (root / "restored").rename(link)
    return mutate


def _move(source: Path, target: Path) -> None:
    """What source leads to, copied to target; then source (a link, a folder or a file) removed."""
    real = source.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if real.is_dir() else shutil.copy2)(real, target)  # type: ignore[operator]
    shutil.rmtree(source) if source.is_dir() and not source.is_symlink() else source.unlink()


LINKED_PATHS = {
    "the project file": "dockwright.yaml",
    "an included file": "envs/gpu.yaml",
    "the folder of included files": "envs",
    "a requirements file": "reqs/requirements.txt",
    "a -r child": "reqs/common/requirements-common.txt",
    "the folder of a -r child": "reqs/common",
    "the folder of a requirements file and its children": "reqs",
    "a certificate": "certs/proxy-ca.pem",
    "the folder of a certificate": "certs",
    "a copied file": "conf/prod.yaml",
    "a copied folder": "src/app",
    "the folder of a copied folder": "src",
    "a local package's build file": "libs/featlib/pyproject.toml",
    "a local package": "libs/featlib",
    "the folder of a local package": "libs",
    "a custom Dockerfile": "docker/cuda.Dockerfile",
    "a build context (and the Dockerfile in it)": "docker",
    ".dockerignore": ".dockerignore",
    "a builder's tls file": "tls/ca.pem",
    "the folder of a builder's tls files": "tls",
}
LINKS = {f"{name}, {'inside' if inside else 'outside'}": _linked(rel, inside)
         for name, rel in LINKED_PATHS.items() for inside in (False, True)}
# What compile wrote (which the watch does not watch: it writes it): never written through a link.
OUTPUT_PATHS = {"the output folder": "generated", "a generated Dockerfile": "generated/images/base/Dockerfile"}
OUTPUT_LINKS = {f"{name}, {'inside' if inside else 'outside'}": _linked(rel, inside)
                for name, rel in OUTPUT_PATHS.items() for inside in (False, True)}


def _same_as_the_full_compile(root: Path, context: object) -> None:
    """The fast path answers exactly as the full compile (with no cache at all) answers, or falls through."""
    answers = {args: fast(root, *args) for args in (("compile", "--check"), ("-q", "compile", "--check"),
                                                     ("compile",))}
    for args, answer in answers.items():
        full = slow(root, *args, env=NO_CACHE)
        assert answer[0] is None or answer == full, (context, args, answer, full)


@pytest.mark.parametrize("name", sorted(LINKS) + sorted(OUTPUT_LINKS))
def test_a_path_swapped_for_a_link_is_answered_as_the_full_compile_answers(tmp_path: Path, name: str) -> None:
    """Every path compile reads or looks at, and every folder on the way to one, replaced by a link to an identical
    copy outside the project (which the full compile refuses) or inside it (which it accepts): the fast path never
    answers otherwise than the full compile."""
    full = _swapped(_linked_project(tmp_path / "p"), {**LINKS, **OUTPUT_LINKS}[name], name)
    if name in OUTPUT_LINKS:
        assert full[0] == 1, full  # compile writes nothing through a link
    elif name.endswith("outside") and name != "the project file, outside":
        assert full[0] == 1 or "warning: .dockerignore leads outside" in full[2], full  # the full compile objects


def _swapped(root: Path, mutate: Mutation, name: str) -> tuple[int, str, str]:
    """The full `compile --check` after mutate, which the fast path never answers (it compiled another place),
    and answers as the full compile once that compile has recorded again."""
    assert slow(root, "compile")[0] == 0
    assert fast(root, "compile", "--check")[0] == 0
    mutate(root)
    full = slow(root, "compile", "--check", env=NO_CACHE)
    assert fast(root, "compile", "--check") == (None, "", "")
    _same_as_the_full_compile(root, name)
    slow(root, "compile")  # records again when the output is up to date: answered as the full compile from then on
    _same_as_the_full_compile(root, name)
    return full


LOCKED_PATHS = {"the lock": "dockwright.lock", "a requirements file": "requirements.txt",
                "a certificate": "certs/proxy-ca.pem", "the folder of a certificate": "certs",
                "a copied folder": "src", "a copied file": "conf/prod.yaml"}


@pytest.mark.parametrize("inside", [False, True], ids=["outside", "inside"])
@pytest.mark.parametrize("name", sorted(LOCKED_PATHS))
def test_a_locked_projects_path_swapped_for_a_link(tmp_path: Path, name: str, inside: bool) -> None:
    """The same with dockwright.lock (examples/ml-training), which compile reads and checks the inputs against."""
    root = tmp_path / "ml"
    shutil.copytree(EXAMPLES / "ml-training", root)
    full = _swapped(root, _linked(LOCKED_PATHS[name], inside), name)
    assert full[0] == (0 if inside else 1), full  # the lock too: nothing outside the project is read


STEPS_WITH_LINKS = st.sampled_from(sorted(LINKS) + sorted(OUTPUT_LINKS)
                                   + [f"{name}, back" for name in sorted(LINKED_PATHS) + sorted(OUTPUT_PATHS)]
                                   + ["compile"] * 4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(steps=st.lists(STEPS_WITH_LINKS, min_size=1, max_size=6))
def test_fast_answers_are_the_full_answers_whatever_leads_where(tmp_path: Path, steps: list[str]) -> None:
    """Any sequence of paths swapped for links (to a copy outside or inside the project, the link itself or a folder
    on the way to it moved again) and back, and compiles: after each, the fast path answers as the full compile."""
    root = _linked_project(tmp_path / f"p{len(list(tmp_path.iterdir()))}")
    slow(root, "compile")
    for step in steps:
        if step == "compile":
            slow(root, "compile")
        elif step.endswith(", back"):
            _unlinked({**LINKED_PATHS, **OUTPUT_PATHS}[step[:-len(", back")]])(root)
        else:
            {**LINKS, **OUTPUT_LINKS}[step](root)
        _same_as_the_full_compile(root, (steps, step))
