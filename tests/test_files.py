"""The file system at compile time: symbolic links at every path, every OS error on write, leftovers of a
killed compile, merge-conflicted output, .dockerignore, finding the project file, --quiet.

The attack classes are enumerated, not sampled: every path-valued key of the language and every component
of the output path gets a link to a sentinel folder outside the project; every errno at every system call
that emit makes fails once. Each run checks the sentinel (contents and mtimes) and the output tree.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import cli, emit
from compiler.dockerignore import Matcher
from helpers import ROOT, run_cli, tree
from helpers import invoke as in_process

SECRET = "secret-sentinel"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def invoke(root: Path, *args: str) -> Result:
    """dockwright in this process (so that tests may patch os), run from root."""
    old = Path.cwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def snapshot(folder: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """Every entry below folder (links not followed): kind, content or link target, mtime."""
    out: dict[str, tuple[str, bytes | str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path), st.st_mtime_ns)
            elif path.is_dir():
                out[rel] = ("dir", b"", st.st_mtime_ns)
            elif not path.is_file():
                out[rel] = ("special", b"", st.st_mtime_ns)
            else:
                out[rel] = ("file", path.read_bytes(), st.st_mtime_ns)
    return out


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# ---------------------------------------------------------------------------------------------------
# 1. Symbolic links: every path-valued key, every component of the output path

PROJECT = """version: 1
project: demo
environments:
  base:
    python: "3.11"
    requirements_files: [REQ]
    certificates: [CERT]
    copy:
      - COPY
      - from: FROM
        to: /app/conf.yaml
  custom:
    dockerfile: DOCKERFILE
    context: CONTEXT
runner: {environment: base}
server: {environment: custom}
builders:
  remote:
    type: docker
    url: tcp://127.0.0.1:2376
    tls:
      ca: CA
      cert: TLSCERT
      key: KEY
"""
DEFAULTS = {"REQ": "requirements.txt", "CERT": "certs/ca.pem", "COPY": "src/", "FROM": "conf/prod.yaml",
            "DOCKERFILE": "docker/base.Dockerfile", "CONTEXT": "docker", "CA": "certs/tls/ca.pem",
            "TLSCERT": "certs/tls/cert.pem", "KEY": "certs/tls/key.pem"}
FILES = {"requirements.txt": "-r more.txt\n", "more.txt": "numpy==1.26.4\n", "certs/ca.pem": PEM,
         "src/app.py": "print('hi')\n", "conf/prod.yaml": "a: 1\n", "docker/base.Dockerfile": "FROM python:3.11-slim\n"}
# What each key reads: a file, or a folder (context); the sentinel holds one of each, with the secret in it.
SENTINEL = {"reqs.txt": f"{SECRET}==6.6.6\n", "ca.pem": f"{SECRET}\n{PEM}", "Dockerfile": f"# {SECRET}\nFROM x\n",
            "ctx/Dockerfile": f"# {SECRET}\n"}
TARGET = {"REQ": "reqs.txt", "-r": "reqs.txt", "CERT": "ca.pem", "COPY": "reqs.txt", "FROM": "reqs.txt",
          "DOCKERFILE": "Dockerfile", "CONTEXT": "ctx", "CA": "ca.pem", "TLSCERT": "ca.pem", "KEY": "ca.pem"}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(project root, sentinel folder outside it)."""
    root, outside = tmp_path / "project", tmp_path / "outside"
    write(outside, SENTINEL)
    root.mkdir()
    yield root, outside


@pytest.mark.parametrize("style", ["absolute", "relative", "through-folder", "inside"])
@pytest.mark.parametrize("key", [*DEFAULTS, "-r"])
def test_a_link_out_of_the_project_is_refused_at_every_path_key(sandbox: tuple[Path, Path], key: str,
                                                                style: str) -> None:
    root, outside = sandbox
    write(root, FILES)
    target = outside / TARGET[key]
    value = "links/x"
    if style == "absolute":
        (root / "links").mkdir()
        (root / "links/x").symlink_to(target)
    elif style == "relative":
        (root / "links").mkdir()
        (root / "links/x").symlink_to(Path("../..") / "outside" / TARGET[key])
    elif style == "through-folder":
        (root / "links").symlink_to(outside)
        value = f"links/{TARGET[key]}"
    else:  # a link that stays inside the project is read through
        inside = root / "inside" / TARGET[key]
        inside.parent.mkdir(parents=True, exist_ok=True)
        if key == "CONTEXT":
            inside.mkdir()
        else:
            inside.write_text({"reqs.txt": "numpy==1.26.4\n", "ca.pem": PEM,
                               "Dockerfile": "FROM python:3.11-slim\n"}[TARGET[key]])
        (root / "links").mkdir()
        (root / "links/x").symlink_to(Path("..") / "inside" / TARGET[key])
    values = dict(DEFAULTS)
    if key == "-r":
        (root / "requirements.txt").write_text(f"-r {value}\n")
    else:
        values[key] = value
    text = PROJECT
    for name in sorted(values, key=len, reverse=True):  # TLSCERT before CERT
        text = text.replace(name, values[name])
    number, line = next((n, t) for n, t in enumerate(text.splitlines(), 1) if value in t) if key != "-r" else (0, "")
    where = ("requirements.txt:1:1" if key == "-r"
             else f"dockwright.yaml:{number}:{line.index('from' if key == 'FROM' else value) + 1}")
    (root / "dockwright.yaml").write_text(text)
    before = snapshot(outside)

    results = [invoke(root, "compile"), invoke(root, "compile", "--check"), invoke(root, "validate"),
               invoke(root, "diff")]

    assert snapshot(outside) == before
    for result in results:
        assert SECRET not in result.output
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET not in path.read_text(errors="replace"), path
    if style == "inside":
        assert results[0].exit_code == 0, results[0].output
        return
    for result in results:
        assert result.exit_code == 1, result.output
        first = result.stderr.splitlines()[0]
        assert re.fullmatch(rf"{where}: error: .* '{re.escape(value)}' leads outside the project directory "
                            r"through a symbolic link \(dockwright reads only files inside the directory of "
                            r"dockwright.yaml; move the file into the project\)", first), first
    assert not (root / "generated").exists()


SIMPLE = """version: 1
project: demo
{output}environments:
  base:
    python: "3.11"
    requirements: [pandas==2.2.2]
  old:
    python: "3.12"
    requirements: [numpy==1.26.4]
runner: {{environment: base}}
server: {{environment: old}}
"""
# The same project one commit later: base changes, old is gone (its files are removed).
LATER = SIMPLE.replace("pandas==2.2.2", "pandas==2.2.3").replace(
    "  old:\n    python: \"3.12\"\n    requirements: [numpy==1.26.4]\n", "").replace("server: {{environment: old}}\n", "")


@pytest.mark.parametrize("output,component", [
    *[("", c) for c in ("generated", "generated/images", "generated/images/base", "generated/images/base/Dockerfile",
                        "generated/images/base/requirements.txt", "generated/manifest.json",
                        "generated/images/old", "generated/images/old/Dockerfile")],
    *[("build/docker", c) for c in ("build", "build/docker", "build/docker/images", "build/docker/images/base")],
])
def test_a_link_in_the_output_path_is_refused_and_never_followed(sandbox: tuple[Path, Path], output: str,
                                                                  component: str) -> None:
    root, outside = sandbox
    line = f"output: {output}\n" if output else ""
    write(root, {"dockwright.yaml": SIMPLE.format(output=line)})
    assert invoke(root, "compile").exit_code == 0
    # The link leads to a copy of what it replaces: following it would update or remove dockwright's files.
    moved = outside / "moved"
    shutil.move(str(root / component), str(moved))
    (root / component).symlink_to(moved)
    (root / "dockwright.yaml").write_text(LATER.format(output=line))
    before, inside = snapshot(outside), snapshot(root)

    for args in (["compile"], ["compile", "--check"], ["diff"], ["validate"]):  # validate: what compile would find
        result = invoke(root, *args)
        assert result.exit_code == 1, result.output
        at = "dockwright.yaml:3:9" if output else "dockwright.yaml:1:1"
        assert result.stderr.splitlines()[0] == (
            f"{at}: error: {component} is a symbolic link, and dockwright never writes or removes through links "
            "(move it away, or set 'output:' to another directory)")
        assert snapshot(outside) == before
        assert snapshot(root) == inside


def test_output_that_would_overwrite_the_project_is_refused(project) -> None:
    root = project({"dockwright.yaml": SIMPLE.format(output="output: OUT\n"), "src/a.txt": "x"})
    messages = {
        "dockwright.yaml": "output directory 'dockwright.yaml' is the project file",
        ".git": "output directory '.git' is inside .git",
        ".git/generated": "output directory '.git/generated' is inside .git",
        "dockwright.yaml/sub": "output directory 'dockwright.yaml/sub' is inside the project file",
        "a" * 5000: "output directory has a name longer than 255 bytes, more than file systems allow",
    }
    for out, message in messages.items():
        (root / "dockwright.yaml").write_text(SIMPLE.format(output=f"output: {out}\n"))
        result = invoke(root, "compile")
        assert result.exit_code == 1
        hint = ("use a shorter directory name, like 'generated'" if len(out) > 255
                else "use a directory like 'generated'")
        assert result.stderr.splitlines()[0] == f"dockwright.yaml:3:9: error: {message} ({hint})"
        assert result.stderr.splitlines()[-1] == "1 error; nothing was written"
        assert len(result.stderr.splitlines()[0]) < 200
    (root / "dockwright.yaml").write_text(SIMPLE.format(output="output: .\n"))
    assert invoke(root, "compile").exit_code == 1
    assert sorted(p.name for p in root.iterdir()) == ["dockwright.yaml", "src"]


def test_output_would_overwrite_an_input_file(project) -> None:
    text = SIMPLE.format(output="output: deps\n").replace("requirements: [pandas==2.2.2]",
                                                          "requirements_files: [deps/images/base/requirements.txt]")
    root = project({"dockwright.yaml": text, "deps/images/base/requirements.txt": "pandas==2.2.2\n"})
    result = invoke(root, "compile")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "dockwright.yaml:3:9: error: output directory 'deps' would overwrite the input file "
        "'deps/images/base/requirements.txt' (use a directory like 'generated')")
    assert (root / "deps/images/base/requirements.txt").read_text() == "pandas==2.2.2\n"


@pytest.mark.parametrize("kind", ["file", "folder", "fifo"])
def test_something_else_where_output_belongs_is_one_located_error(project, kind: str) -> None:
    root = project({"dockwright.yaml": SIMPLE.format(output="")})
    target = root / "generated/images/base/Dockerfile"
    if kind == "file":  # a file where a folder belongs
        (root / "generated").mkdir()
        (root / "generated/images").write_text("mine")
        shown, what = "generated/images", "is a file, not a directory"
    elif kind == "folder":
        target.mkdir(parents=True)
        shown, what = "generated/images/base/Dockerfile", "is a directory"
    else:
        target.parent.mkdir(parents=True)
        os.mkfifo(target)
        shown, what = "generated/images/base/Dockerfile", "is not a regular file or directory"
    before = snapshot(root)
    result = invoke(root, "compile")
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        1, f"dockwright.yaml:1:1: error: {shown} {what} (move it away, or set 'output:' to another directory)")
    assert snapshot(root) == before


# ---------------------------------------------------------------------------------------------------
# 2. Every OS error on write: one line, exit 1, the old tree byte-identical, no temp file left

NEWER = LATER.replace("runner: {{environment: base}}\n", "  fresh:\n    python: \"3.13\"\n    requirements: [rich==13.0.0]\n"
                      "runner: {{environment: base}}\nserver: {{environment: fresh}}\n")
ERRNOS = [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR,
          errno.EIO, errno.EDQUOT]
CALLS = ["open", "read", "write", "close", "rename", "mkdir", "unlink", "rmdir", "stat", "listdir", "fchmod", "fstat"]
TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) below folder."""
    return {p.relative_to(folder).as_posix(): (None if p.is_dir() else p.read_bytes()) for p in folder.rglob("*")}


@contextlib.contextmanager
def failing(monkeypatch: pytest.MonkeyPatch, at: int | None, code: int) -> Iterator[list[str]]:
    """Make the at-th os call that compiler/emit.py makes fail with code; yield the calls made."""
    calls: list[str] = []
    emit_file = emit.__file__

    def wrap(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if sys._getframe(1).f_code.co_filename == emit_file:
                calls.append(name)
                if len(calls) - 1 == at:
                    raise OSError(code, os.strerror(code))
            return real(*args, **kwargs)
        return call

    with monkeypatch.context() as patch:
        for name in CALLS:
            patch.setattr(os, name, wrap(name, getattr(os, name)))
        yield calls


def test_every_os_error_at_every_call_leaves_the_old_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write(tmp_path / "project", {"dockwright.yaml": SIMPLE.format(output="")})
    assert invoke(root, "compile").exit_code == 0
    pristine = tmp_path / "pristine"
    shutil.copytree(root / "generated", pristine)
    old = listing(pristine)
    (root / "dockwright.yaml").write_text(NEWER.format(output=""))
    compiled = cli.compile_project(root / "dockwright.yaml")
    clean = write(tmp_path / "clean", {"dockwright.yaml": NEWER.format(output="")})
    assert invoke(clean, "compile").exit_code == 0
    expected = listing(clean / "generated")
    monkeypatch.setattr(cli, "compile_project", lambda path, **_: compiled)

    def run(at: int | None, code: int) -> tuple[Result, list[str]]:
        shutil.rmtree(root / "generated")
        shutil.copytree(pristine, root / "generated")
        with failing(monkeypatch, at, code) as calls:
            result = invoke(root, "compile")
        return result, calls

    result, trace = run(None, 0)
    assert result.exit_code == 0 and listing(root / "generated") == expected
    assert {"open", "write", "rename", "mkdir", "unlink", "rmdir", "read", "stat"} <= set(trace)
    outcomes = set()
    for at in range(len(trace)):
        for code in ERRNOS:
            result, _ = run(at, code)
            now = listing(root / "generated")
            assert not [p for p in now if TEMP.fullmatch(p.rsplit("/", 1)[-1])], (at, trace[at], code)
            if result.exit_code == 0:  # a call whose failure loses nothing: closing a folder, pruning one
                assert trace[at] in ("close", "rmdir") and {k: v for k, v in now.items() if v is not None} == \
                    {k: v for k, v in expected.items() if v is not None}, (at, trace[at], code)
                outcomes.add("ok")
                continue
            lines = result.stderr.splitlines()
            assert (result.exit_code, len(lines)) == (1, 1), (at, trace[at], code, result.output)
            assert re.fullmatch(rf"error: cannot (read|write|remove) generated\S*: {re.escape(os.strerror(code))} "
                                r"\(.+\)", lines[0]), lines[0]
            assert now == old, (at, trace[at], code)
            outcomes.add(lines[0].split()[2])
    assert outcomes >= {"read", "write", "remove"}


def _real_failure(root: Path, message: str) -> None:
    before = listing(root / "generated")
    (root / "dockwright.yaml").write_text(NEWER.format(output=""))
    result = in_process("compile", cwd=root)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == message + "\n"
    assert listing(root / "generated") == before


def test_a_full_disk(tmp_path: Path, mounted: Callable[..., None]) -> None:
    root = write(tmp_path / "project", {"dockwright.yaml": SIMPLE.format(output="")})
    assert in_process("compile", cwd=root).returncode == 0
    shutil.move(str(root / "generated"), str(tmp_path / "saved"))
    (root / "generated").mkdir()
    mounted("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(root / "generated"))
    for path in (tmp_path / "saved").iterdir():
        shutil.move(str(path), str(root / "generated" / path.name))
    with open(root / "generated/filler.bin", "wb", buffering=0) as filler:  # a file of the user's, left alone
        with contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 1024)
    _real_failure(root, "error: cannot write generated/images/base/Dockerfile: No space left on device (free some "
                        "disk space; nothing was changed; run 'dockwright compile' again)")
    (root / "generated/filler.bin").unlink()
    assert in_process("compile", cwd=root).returncode == 0


def test_a_read_only_output_directory(tmp_path: Path, mounted: Callable[..., None]) -> None:
    root = write(tmp_path / "project", {"dockwright.yaml": SIMPLE.format(output="")})
    assert in_process("compile", cwd=root).returncode == 0
    mounted("--bind", "-o", "ro", str(root / "generated"), str(root / "generated"))
    _real_failure(root, "error: cannot write generated/images/base/Dockerfile: Read-only file system (the file system "
                        "is read-only: make it writable, or set 'output:' to another directory; nothing was changed; "
                        "run 'dockwright compile' again)")


def test_an_immutable_output_directory(tmp_path: Path) -> None:
    root = write(tmp_path / "project", {"dockwright.yaml": SIMPLE.format(output="")})
    assert in_process("compile", cwd=root).returncode == 0
    folder = root / "generated/images/base"
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        _real_failure(root, "error: cannot write generated/images/base/Dockerfile: Operation not permitted (check the "
                            "permissions of the output directory, and `lsattr` for the immutable flag; nothing was "
                            "changed; run 'dockwright compile' again)")
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_path_longer_than_the_system_limit_is_written_through_folders(project) -> None:
    deep = "/".join(["d" * 200] * 25)  # 5,024 characters: more than PATH_MAX, each part within NAME_MAX
    root = project({"dockwright.yaml": SIMPLE.format(output=f"output: {deep}\n")})
    first = invoke(root, "compile")
    assert (first.exit_code, first.stdout) == (0, f"{deep}/: 5 created, 0 updated, 0 unchanged, 0 removed\n")
    assert invoke(root, "compile", "--check").exit_code == 0


# ---------------------------------------------------------------------------------------------------
# 3. A compile killed while writing: its temp files are removed next time, and --check reports them

SLOW_WRITES = """import os, sys, time
real = os.write
def slow(fd, data):
    time.sleep(0.01)
    return real(fd, data)
os.write = slow
from compiler.cli import main
main(["compile"], prog_name="dockwright")
"""


def many(n: int, pin: str) -> str:
    envs = "".join(f"  e{i}:\n    python: \"3.11\"\n    requirements: [pkg{i}=={pin}]\n" for i in range(n))
    steps = "".join(f"      s{i}: {{environment: e{i}}}\n" for i in range(n))
    return f"version: 1\nproject: demo\nenvironments:\n{envs}pipelines:\n  p:\n    steps:\n{steps}"


def temps(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if TEMP.fullmatch(p.name)}


@pytest.mark.slow
def test_a_compile_killed_mid_write_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    root = write(tmp_path / "project", {"dockwright.yaml": many(40, "1.0")})
    assert run_cli("compile", cwd=root).returncode == 0
    out = root / "generated"
    # Not dockwright's: a link named like a temp file, and a file whose name is no file dockwright writes.
    (out / "images/e0/.Dockerfile.abcdefgh.tmp").symlink_to(tmp_path / "elsewhere")
    (out / "images/e0/.notes.abcdefgh.tmp").write_text("mine")
    theirs = {"images/e0/.Dockerfile.abcdefgh.tmp", "images/e0/.notes.abcdefgh.tmp"}
    for attempt in range(3):
        (root / "dockwright.yaml").write_text(many(40, f"2.{attempt}"))
        proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITES], cwd=root, env={**os.environ,
                                "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not temps(out) - theirs and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.3))  # a random moment of the write phase
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = temps(out) - theirs
        assert left, "the compile was killed before it wrote anything"
        check = run_cli("compile", "--check", cwd=root)
        assert check.returncode == 1
        reported = {line.split(": ", 1)[1] for line in check.stderr.splitlines() if line.startswith("leftover: ")}
        assert reported == {f"generated/{p}" for p in left}
        assert check.stderr.splitlines()[-1].endswith(
            f", {len(left)} leftover temp file{'s' if len(left) != 1 else ''} to remove); run 'dockwright compile'")
        done = run_cli("compile", cwd=root)
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip().endswith(f", {len(left)} leftover temp file{'s' if len(left) != 1 else ''} removed")
        assert temps(out) == theirs
        assert run_cli("compile", "--check", cwd=root).returncode == 0
    assert (out / "images/e0/.notes.abcdefgh.tmp").read_text() == "mine"
    assert (out / "images/e0/.Dockerfile.abcdefgh.tmp").is_symlink()


# ---------------------------------------------------------------------------------------------------
# 4. Generated files with git merge conflicts are dockwright's: compile regenerates them

def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null"}
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True)
    return done.stdout + done.stderr


MERGED = """version: 1
project: demo
environments:
  base:
    python: "3.11"
    requirements: [pandas==2.2.2]
    workdir: /app
    user: app
    env: {A: "1"}
  old:
    python: "3.12"
    requirements: [numpy==1.26.4]
runner: {environment: base}
server: {environment: old}
"""


@pytest.mark.parametrize("style", ["merge", "diff3"])
def test_merge_conflicts_in_generated_files_are_resolved_by_compiling(tmp_path: Path, style: str) -> None:
    root = write(tmp_path / "project", {"dockwright.yaml": MERGED})
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "merge.conflictStyle", style)
    assert in_process("compile", cwd=root).returncode == 0
    git(root, "add", "-A")
    git(root, "commit", "-qm", "one")
    git(root, "checkout", "-qb", "other")
    # other: base gets another env value and a twin (one image, two environments: the first line changes)
    (root / "dockwright.yaml").write_text(MERGED.replace('{A: "1"}', '{A: "2"}').replace(
        "runner:", "  twin:\n    extends: base\nrunner:") + "pipelines:\n  p:\n    steps:\n      a: {environment: twin}\n")
    assert in_process("compile", cwd=root).returncode == 0
    git(root, "commit", "-qam", "twin")
    git(root, "checkout", "-q", "main")
    (root / "dockwright.yaml").write_text(MERGED.replace("pandas==2.2.2", "pandas==2.2.3"))
    assert in_process("compile", cwd=root).returncode == 0
    git(root, "commit", "-qam", "pins")
    merged = git(root, "merge", "other")
    assert "Automatic merge failed" in merged, merged
    conflicted = {p: (root / p).read_bytes() for p in git(root, "diff", "--name-only", "--diff-filter=U").split()}
    assert "dockwright.yaml" not in conflicted and b"pandas==2.2.3" in (root / "dockwright.yaml").read_bytes()
    assert "generated/manifest.json" in conflicted
    assert any(data.startswith(b"<<<<<<<") for data in conflicted.values())  # a first line in conflict, too
    (root / "generated/images/old/notes.txt").write_text("mine")

    result = in_process("compile", cwd=root)
    assert result.returncode == 0, result.stderr
    for path in conflicted:
        assert b"<<<<<<<" not in (root / path).read_bytes()
    assert in_process("compile", "--check", cwd=root).returncode == 0
    clean = write(tmp_path / "clean", {"dockwright.yaml": (root / "dockwright.yaml").read_text()})
    assert in_process("compile", cwd=clean).returncode == 0
    assert (root / "generated/images/old/notes.txt").read_text() == "mine"
    (root / "generated/images/old/notes.txt").unlink()
    assert tree(clean / "generated") == tree(root / "generated")


def test_a_conflicted_file_is_ours_only_when_every_side_is(tmp_path: Path) -> None:
    header = "# Generated by dockwright from dockwright.yaml\n"
    target = tmp_path / "images/a/Dockerfile"
    target.parent.mkdir(parents=True)
    new = {"images/a/Dockerfile": header + "FROM c\n"}
    for text, ours in [(f"<<<<<<< HEAD\n{header}FROM a\n=======\n{header}FROM b\n>>>>>>> other\n", True),
                       (f"<<<<<<< HEAD\n{header}FROM a\n||||||| base\n{header}\n=======\n{header}FROM b\n>>>>>>> o\n",
                        True),
                       (f"<<<<<<< HEAD\nFROM mine\n=======\n{header}FROM b\n>>>>>>> other\n", False),
                       (f"<<<<<<< HEAD\n{header}FROM a\n=======\n{header}FROM b\n", False)]:  # not a conflict
        target.write_text(text)
        if ours:
            assert [c.status for c in emit.changes(tmp_path, new)] == ["updated"]
        else:
            with pytest.raises(emit.OutputConflict):
                emit.changes(tmp_path, new)


# ---------------------------------------------------------------------------------------------------
# 5. .dockerignore that leaves out what a generated Dockerfile copies

IGNORED = """version: 1
project: demo
environments:
  base:
    python: "3.11"
    requirements: [pandas==2.2.2]
    certificates: [certs/ca.pem]
    copy: [src/, {from: conf/prod.yaml, to: /app/conf.yaml}]
runner: {environment: base}
"""


def test_dockerignore_that_leaves_out_a_copied_file_warns_where_it_is_copied(project) -> None:
    root = project({"dockwright.yaml": IGNORED, "certs/ca.pem": PEM, "src/app.py": "", "conf/prod.yaml": "",
                    ".dockerignore": "# data stays out\n**/*.pem\nsrc\nconf/\n!conf/prod.yaml\ngenerated/\n"})
    result = invoke(root, "compile")
    assert result.exit_code == 0
    assert result.stderr == (
        "dockwright.yaml:1:1: warning: .dockerignore leaves out 'generated/images/base/requirements.txt', which the "
        "generated Dockerfiles copy, so building them fails (remove the pattern that matches it, or add "
        "'!generated/' after it)\n"
        "    1 | version: 1\n"
        "      | ^\n"
        "dockwright.yaml:7:20: warning: .dockerignore leaves out certificate 'certs/ca.pem', so building the "
        "generated Dockerfiles fails (remove the pattern that matches it, or add '!certs/ca.pem' after it)\n"
        "    7 |     certificates: [certs/ca.pem]\n"
        "      |                    ^\n"
        "dockwright.yaml:8:12: warning: .dockerignore leaves out copy source 'src/', so building the generated "
        "Dockerfiles fails (remove the pattern that matches it, or add '!src' after it)\n"
        "    8 |     copy: [src/, {from: conf/prod.yaml, to: /app/conf.yaml}]\n"
        "      |            ^\n"
        "note: no dockwright.lock: packages and parent images are not pinned (run `dockwright lock`)\n")
    assert invoke(root, "-q", "compile").stderr == ""
    (root / ".dockerignore").write_text("certs/*.pem\n!certs/ca.pem\nsrc/*.pyc\n")
    assert invoke(root, "validate").stderr == ""
    (root / ".dockerignore").write_text("src/[b-a]\n")
    assert invoke(root, "validate").stderr == (
        "warning: .dockerignore: pattern 'src/[b-a]' is invalid: bad character range b-a at position 5; docker build "
        "fails on it (fix or remove the pattern)\n")


names = st.text(st.sampled_from("ab.*?[]!/-_\\"), min_size=1, max_size=6)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(patterns=st.lists(st.one_of(names, names.map(lambda p: "!" + p), st.sampled_from(["**", "**/a", "a/**", ".",
                                                                                           "..", "../a", "/a"])),
                         max_size=5),
       path=st.lists(st.text(st.sampled_from("ab.-_[]*?!"), min_size=1, max_size=4), min_size=1, max_size=4))
def test_dockerignore_matching_is_docker_pys(patterns: list[str], path: list[str]) -> None:
    """docker-py's rules on lowercase names (docker-py lowercases both sides; the Docker CLI does not: see
    test_dockerignore_reads_like_the_docker_cli)."""
    from docker.utils.build import PatternMatcher

    rel = "/".join(path)
    ours = Matcher(patterns)
    try:
        theirs = PatternMatcher(patterns).matches(rel)
    except re.error:  # docker-py fails on a pattern that is no valid expression: dockwright says which
        assert ours.errors
        return
    assert not ours.errors
    assert ours.matches(rel) == theirs


@pytest.mark.parametrize(("text", "path", "left_out"), [
    ("SRC\n", "src/app.py", False),  # case-sensitive, as `docker build` on Linux
    ("SRC\n", "SRC/app.py", True),
    ("*.PEM\n", "ca.pem", False),
    ("\ufeffsrc\n", "src/app.py", True),  # a UTF-8 BOM is no part of the first pattern
    ("  # src\n", "# src", True),  # `#` starts a comment only in the first column
    ("# src\n", "src/app.py", False),
    ("a\u2028src\n", "a\u2028src", True),  # only "\n" ends a line
    ("src\r\n", "src/app.py", True),
])
def test_dockerignore_reads_like_the_docker_cli(text: str, path: str, left_out: bool) -> None:
    from compiler.dockerignore import parse

    assert Matcher(parse(text)).matches(path) is left_out


# ---------------------------------------------------------------------------------------------------
# 6. The project file in a parent directory; --quiet

def test_the_project_file_is_found_in_a_parent_directory(project) -> None:
    root = project({"dockwright.yaml": SIMPLE.format(output=""), "src/deep/er/x.py": ""})
    result = in_process("compile", cwd=root / "src/deep/er")
    assert (result.returncode, result.stdout) == (0, f"{root}/generated/: 5 created, 0 updated, 0 unchanged, 0 removed\n")
    (root / "dockwright.yaml").write_text(SIMPLE.format(output="").replace("requirements:", "requirments:"))
    bad = in_process("validate", cwd=root / "src")
    assert bad.returncode == 1 and bad.stderr.startswith(f"{root}/dockwright.yaml:6:5: error: unknown key")
    (root / "src/dockwright.yaml").write_text(SIMPLE.format(output=""))  # the nearest one wins
    assert in_process("validate", cwd=root / "src/deep").stdout == (
        f"{root}/src/dockwright.yaml: ok: 2 environments, 0 pipelines, 2 images\n")  # named from here, as above
    outside = in_process("-f", f"{root.name}/src/dockwright.yaml", "validate", cwd=root.parent)
    assert outside.stdout == f"{root.name}/src/dockwright.yaml: ok: 2 environments, 0 pipelines, 2 images\n"


def test_no_traceback_when_the_project_file_cannot_be_looked_for(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    code = f"import os, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); from compiler.cli import run; run()"
    result = subprocess.run([sys.executable, "-c", code, "validate"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (result.returncode, result.stderr) == (2, "error: the current directory no longer exists\n"
                                                     "hint: cd to your project directory\n")
    long = in_process("-f", "a" * 5000, "validate", cwd=tmp_path)
    assert (long.returncode, long.stderr) == (2, "error: cannot look for the project file: File name too long\n")


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_only_errors(project, where: str) -> None:
    text = SIMPLE.format(output="").replace("runner:", "  spare: {python: '3.12'}\nrunner:")
    root = project({"dockwright.yaml": text})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return in_process(*(["-q", *args] if where == "before" else [args[0], "--quiet", *args[1:]]), cwd=root)

    for args in (["validate"], ["compile"], ["compile", "--check"], ["diff"]):
        result = run(*args)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), args
    assert run("graph").stdout.startswith("flowchart LR")  # what a command is for is still printed
    (root / "dockwright.yaml").write_text(text.replace("pandas==2.2.2", "pandas==2.2.3"))
    stale = run("compile", "--check")
    assert stale.returncode == 1 and stale.stderr.splitlines()[0] == "stale: generated/images/base/Dockerfile"
    (root / "dockwright.yaml").write_text("version: 1\nproject: demo\nenvironments:\n  base: {parent_image: debian}\n"
                                          "runner: {environment: nope}\n")
    assert "warning" in in_process("validate", cwd=root).stderr
    bad = run("validate")
    assert bad.returncode == 1 and "warning" not in bad.stderr and bad.stderr.endswith("\n1 error\n")


def test_quiet_build_prints_only_the_error(project) -> None:
    root = project({"dockwright.yaml": SIMPLE.format(output="") + "builders:\n  local: {type: docker, url: "
                                                                   "'tcp://127.0.0.1:9'}\n"})
    loud = in_process("build", cwd=root)
    assert loud.returncode == 3 and loud.stderr.startswith("generated/: 5 created, 0 updated, 0 unchanged, 0 removed\n")
    (root / "dockwright.yaml").write_text((root / "dockwright.yaml").read_text().replace("2.2.2", "2.2.3"))
    quiet = in_process("-q", "build", cwd=root)
    assert (quiet.returncode, quiet.stdout, len(quiet.stderr.splitlines())) == (3, "", 1), quiet.stderr
    assert quiet.stderr.startswith("error: cannot reach the Docker engine at tcp://127.0.0.1:9")


@pytest.mark.parametrize("pattern", ["links/envs.yaml", "links/*.yaml"])
@pytest.mark.parametrize("style", ["absolute", "relative", "through-folder"])
def test_an_include_through_a_link_out_of_the_project_is_refused(sandbox: tuple[Path, Path], style: str,
                                                                 pattern: str) -> None:
    """The error names the file a pattern matched (the one that leads out), and never reads it."""
    root, outside = sandbox
    (outside / "envs.yaml").write_text(f"environments:\n  {SECRET}: {{python: '3.11'}}\n")
    value = "links/envs.yaml"
    if style == "through-folder":
        (root / "links").symlink_to(outside)
    else:
        (root / "links").mkdir()
        (root / value).symlink_to(outside / "envs.yaml" if style == "absolute" else Path("../../outside/envs.yaml"))
    (root / "dockwright.yaml").write_text(f"version: 1\nproject: demo\ninclude: ['{pattern}']\n")
    before = snapshot(outside)
    result = invoke(root, "validate")
    assert result.exit_code == 1 and SECRET not in result.output
    matched = "" if pattern == value else f" matches '{value}', which"
    assert result.stderr.splitlines()[0] == (
        f"dockwright.yaml:3:11: error: include '{pattern}'{matched} leads outside the project directory through a "
        "symbolic link (keep included files under the directory of dockwright.yaml)")
    assert snapshot(outside) == before


@pytest.mark.parametrize("pattern", ["../outside/envs.yaml", "../outside/*.yaml", "../*/envs.yaml"])
def test_an_include_up_out_of_the_project_is_refused(sandbox: tuple[Path, Path], pattern: str) -> None:
    root, outside = sandbox
    (outside / "envs.yaml").write_text(f"environments:\n  {SECRET}: {{python: '3.11'}}\n")
    (root / "dockwright.yaml").write_text(f"version: 1\nproject: demo\ninclude: ['{pattern}']\n")
    before = snapshot(outside)
    result = invoke(root, "validate")
    assert result.exit_code == 1 and SECRET not in result.output
    assert result.stderr.splitlines()[0] == (
        f"dockwright.yaml:3:11: error: include '{pattern}' reaches outside the project directory (keep included "
        "files under the directory of dockwright.yaml)")
    assert snapshot(outside) == before
