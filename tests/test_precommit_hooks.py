"""Which commits run each hook of .pre-commit-hooks.yaml, as pre-commit decides it (fast: git and pre-commit's own
file selection, no hook run; tests/test_precommit.py runs the hooks for real, slowly).

pre-commit passes a hook the staged files git names (`git diff --staged`, every change but a deletion), keeps those
its `files` pattern finds (`re.search`) and `exclude` does not, then those of its `types` (by default `file`: a
symbolic link is not one), and skips the hook when none is left, unless it is `always_run`. Every hook's answer
depends on files of any name (a requirements file, a certificate, a copy source), on a file deleted, and on a file
replaced by a link: each kind of such change must run it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest
from pre_commit.clientlib import load_manifest
from pre_commit.commands.run import Classifier
from pre_commit.git import get_staged_files

from helpers import ROOT

HOOKS: dict[str, dict[str, Any]] = {hook["id"]: hook for hook in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}

# Every kind of file compile, validate or lock reads or looks at, named as a project may name it.
INPUTS = {
    "the project file": "dockwright.yaml",
    "an included file": "envs/common.yaml",
    "an included .yml file": "envs/gpu.yml",
    "a requirements file": "requirements.txt",
    "a requirements file of another name": "deps/base.in",
    "a -r child": "deps/common.pip",
    "a certificate": "certs/proxy-ca.pem",
    "a certificate of another name": "certs/corp-root.crt",
    "a Dockerfile": "Dockerfile",
    "a custom Dockerfile": "docker/cuda.Dockerfile",
    "a Containerfile": "docker/Containerfile",
    ".dockerignore": ".dockerignore",
    "a local package's pyproject.toml": "libs/featlib/pyproject.toml",
    "a local package's setup.py": "libs/featlib/setup.py",
    "a local package's setup.cfg": "libs/featlib/setup.cfg",
    "a copied file": "conf/prod.json",
    "a file in a copied folder": "src/app/main.py",
    "a builder's tls key": "tls/client.key",
    "dockwright.lock": "dockwright.lock",
    "a generated Dockerfile": "generated/images/base/Dockerfile",
    "manifest.json": "generated/manifest.json",
}
OUTPUT = {"a generated Dockerfile", "manifest.json"}  # what compile writes: lock reads none of it
DEPENDS = {
    "dockwright-check": set(INPUTS),
    "dockwright-validate": set(INPUTS),  # it reports what compile would find in the way of its output, too
    "dockwright-lock-check": set(INPUTS) - OUTPUT,  # lock compiles the project first: any input error fails it
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _edit(repo: Path, rel: str) -> None:
    (repo / rel).write_text((repo / rel).read_text() + "# changed\n")


def _delete(repo: Path, rel: str) -> None:
    (repo / rel).unlink()


def _linked(repo: Path, rel: str) -> None:
    """rel replaced by a symbolic link to an identical copy outside the repository (which compile refuses)."""
    copy = repo.parent / "elsewhere" / rel
    copy.parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).rename(copy)
    (repo / rel).symlink_to(copy)


CHANGES: dict[str, Callable[[Path, str], None]] = {"edited": _edit, "deleted": _delete, "replaced by a link": _linked}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A git repository holding one file of each kind, committed."""
    root = tmp_path_factory.mktemp("hooks") / "proj"
    for rel in INPUTS.values():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "start")
    yield root


def runs(repo: Path, hook: dict[str, Any]) -> bool:
    """Whether `pre-commit run` (on a commit of what is staged in repo) runs hook: pre-commit's own selection, from
    the repository's top (where pre-commit runs, matching `files` against paths from there)."""
    before = os.getcwd()
    os.chdir(repo)
    try:
        chosen = list(Classifier.from_config(get_staged_files(), "", "^$").filenames_for_hook(SimpleNamespace(**hook)))
    finally:
        os.chdir(before)
    return bool(hook["always_run"] or chosen)


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_every_hook_runs_on_every_change_that_can_change_its_answer(repo: Path, kind: str, change: str) -> None:
    CHANGES[change](repo, INPUTS[kind])
    _git(repo, "add", "-A")
    try:
        skipped = [name for name, hook in sorted(HOOKS.items()) if kind in DEPENDS[name] and not runs(repo, hook)]
    finally:
        _git(repo, "reset", "-q", "--hard")
        _git(repo, "clean", "-qfd")
    assert skipped == [], f"a commit where {kind} is {change} skips {skipped}"


def test_the_selection_is_pre_commits_own(repo: Path) -> None:
    """The check above can fail: a hook with a `files` pattern (as these had) is skipped for a file it does not
    name, a deleted file, and a file replaced by a link."""
    hook = {**HOOKS["dockwright-lock-check"], "always_run": False, "files": r"\.(ya?ml|txt|pem|lock)$"}
    for change, expected in (("edited", True), ("deleted", False), ("replaced by a link", False)):
        CHANGES[change](repo, "requirements.txt")
        _git(repo, "add", "-A")
        try:
            assert runs(repo, hook) == expected, change
        finally:
            _git(repo, "reset", "-q", "--hard")
    _edit(repo, "libs/featlib/pyproject.toml")
    _git(repo, "add", "-A")
    try:
        assert not runs(repo, hook)
    finally:
        _git(repo, "reset", "-q", "--hard")


def test_every_hook_is_known() -> None:
    assert sorted(HOOKS) == sorted(DEPENDS)
