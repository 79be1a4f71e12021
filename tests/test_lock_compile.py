"""compile reads dockwright.lock (offline): hashed pins with --require-hashes, parent digests in FROM, the heavy
layer, a layered child's additions only, stale and malformed locks as located errors, unpinned parents, and a
project without a lock compiled exactly as before (with one note)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest

from compiler import lockfile
from compiler.driver import compile_project
from compiler.plan import HEAVY_BYTES
from helpers import invoke
from lock.servers import Dist, Index, Registry
from dockerfile_check import check_output
from test_lock import lock_cli
from test_lock import uv_cache as _uv_cache

uv_cache = _uv_cache  # test_lock.py's fixture, used here under the same name

TWO = "platforms: [linux/amd64, linux/arm64]\n"


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = Registry()
    reg.push("library/python", "3.11-slim", ("linux/amd64", "linux/arm64"))
    reg.push("library/debian", "12-slim", ("linux/amd64", "linux/arm64"))
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="module")
def index() -> Iterator[Index]:
    idx = Index()
    idx.add(Dist("alpha", "1.0"), Dist("epsilon", "1.0"),
            Dist("beta", "1.0", requires=("alpha>=1", 'epsilon; platform_machine == "aarch64"')),
            Dist("big", "1.0"), Dist("small", "1.0"), Dist("small", "2.0"),
            Dist("delta", "1.0", tags=("py3-none-manylinux_2_17_x86_64", "py3-none-manylinux_2_17_aarch64")))
    try:
        yield idx
    finally:
        idx.close()


def _project(index: Index, body: str, *, top: str = "") -> str:
    return (f"version: 1\nproject: locked\n{top}environments:\n{body}"
            "pipelines:\n  p:\n    steps:\n      train: {environment: child}\n      other: {environment: base}\n")


BASE = "  base:\n    python: \"3.11\"\n    index_url: {url}\n    requirements: [beta, delta]\n"
CHILD = "  child:\n    extends: base\n    requirements: [small==1.0]\n"


def _sha(index: Index, fname: str) -> str:
    return "sha256:" + hashlib.sha256(index.files[fname]).hexdigest()


def _locked(project, index: Index, registry: Registry, uv_cache: Path, text: str) -> Path:  # type: ignore[no-untyped-def]
    root = project({"dockwright.yaml": text})
    code, _, err = lock_cli(root, registry, uv_cache)
    assert (code, err) == (0, ""), err
    return root


def test_compile_pins_every_package_with_hashes_and_the_parent_by_digest(project, index: Index, registry: Registry,
                                                                         uv_cache: Path) -> None:
    text = _project(index, BASE.format(url=index.url) + CHILD, top=TWO)
    root = _locked(project, index, registry, uv_cache, text)
    digest = registry.push("library/python", "3.11-slim", ("linux/amd64", "linux/arm64"))
    done = invoke("compile", cwd=root)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr  # no "unlocked" note
    reqs = (root / "generated/images/base/requirements.txt").read_text()
    sha = {n: _sha(index, n) for n in index.files}
    delta = sorted([sha["delta-1.0-py3-none-manylinux_2_17_aarch64.whl"],
                    sha["delta-1.0-py3-none-manylinux_2_17_x86_64.whl"]])
    assert reqs.splitlines()[1:] == [
        f"alpha==1.0 --hash={sha['alpha-1.0-py3-none-any.whl']}",
        f"beta==1.0 --hash={sha['beta-1.0-py3-none-any.whl']}",
        f"delta==1.0 --hash={delta[0]} --hash={delta[1]}",  # every file of every locked platform
        f'epsilon==1.0 ; platform_machine == "aarch64" --hash={sha["epsilon-1.0-py3-none-any.whl"]}',
    ]
    # The layered child installs only its additions: its parent's pins are in the parent image.
    child = (root / "generated/images/child/requirements.txt").read_text()
    assert child.splitlines()[1:] == [f"small==1.0 --hash={sha['small-1.0-py3-none-any.whl']}"]
    dockerfile = (root / "generated/images/base/Dockerfile").read_text()
    assert f"\nFROM python:3.11-slim@{digest}\n" in dockerfile
    assert ("RUN python -m pip install --no-cache-dir --disable-pip-version-check --index-url "
            f"{index.url} --require-hashes --no-deps -r /opt/dockwright/requirements.txt\n") in dockerfile
    compiled = compile_project(root / "dockwright.yaml")
    check_output(compiled)  # BuildKit and pip read back exactly the spec, hashes included
    assert compiled.manifest.images["base"].requirements == ("beta", "delta")  # as the YAML asks
    assert compiled.manifest.images["base"].from_ref == f"python:3.11-slim@{digest}"
    # The tag follows the lock: the same project unlocked has other tags.
    (root / "dockwright.lock").rename(root / "away.lock")
    unlocked = compile_project(root / "dockwright.yaml")
    assert unlocked.plan.images["base"].tag != compiled.plan.images["base"].tag
    assert unlocked.plan.images["child"].tag != compiled.plan.images["child"].tag


def test_a_stale_lock_is_a_located_error_at_each_changed_environment(project, index: Index, registry: Registry,
                                                                     uv_cache: Path) -> None:
    text = _project(index, BASE.format(url=index.url) + CHILD)
    root = _locked(project, index, registry, uv_cache, text)
    assert invoke("compile", cwd=root).returncode == 0
    (root / "dockwright.yaml").write_text(text.replace("[small==1.0]", "[small==2.0]"))
    for args in (("compile",), ("compile", "--check"), ("validate",)):
        done = invoke(*args, cwd=root, env={"NO_COLOR": "1"})
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert done.stderr.startswith(
            "dockwright.yaml:8:3: error: environment 'child' has changed since dockwright.lock was written (or is "
            "not in it) (run `dockwright lock`, then compile again)\n"
            "    8 |   child:\n"
            "      |   ^\n"
            "1 error"), done.stderr
    # A parent's change makes its layered child stale, too.
    (root / "dockwright.yaml").write_text(text.replace("[beta, delta]", "[beta]"))
    done = invoke("compile", "--check", cwd=root, env={"NO_COLOR": "1"})
    assert done.returncode == 1
    assert re.findall(r"error: (environment '\w+')", done.stderr) == ["environment 'base'", "environment 'child'"]


def test_a_malformed_lock_is_the_lock_files_located_error(project, index: Index, registry: Registry,
                                                         uv_cache: Path) -> None:
    root = _locked(project, index, registry, uv_cache, _project(index, BASE.format(url=index.url) + CHILD))
    text = (root / "dockwright.lock").read_text()
    (root / "dockwright.lock").write_text(text.replace('name = "alpha"', 'name =  "alpha"', 1))
    done = invoke("compile", cwd=root, env={"NO_COLOR": "1"})
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t == 'name = "alpha"')
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"dockwright.lock:{line}:1: error: dockwright.lock was edited by hand: line {line} "
                                  "is not what dockwright writes (run `dockwright lock` to write it again)\n"), done.stderr
    assert not (root / "generated").exists()


def test_heavy_packages_get_their_own_layer_by_size_or_by_name(project, index: Index, registry: Registry,
                                                               uv_cache: Path) -> None:
    body = "  base:\n    python: \"3.11\"\n    index_url: {url}\n    requirements: [big, small==1.0, alpha]\n"
    text = _project(index, body.format(url=index.url) + "  child:\n    extends: base\n")
    root = _locked(project, index, registry, uv_cache, text)
    assert not (root / "generated").exists()
    # The size rule: a package whose largest file is >= 50 MB (the index's sizes, kept in the lock).
    lock = lockfile.read(root / "dockwright.lock")
    assert lock is not None
    base = lock.images["base"]
    big = [replace(p, files=tuple(replace(f, size=HEAVY_BYTES) for f in p.files)) if p.name == "big" else p
           for p in base.packages]
    sized = lockfile.Lock(images={**lock.images, "base": replace(base, packages=tuple(big))})
    (root / "dockwright.lock").write_text(lockfile.render(sized))
    assert invoke("compile", cwd=root).returncode == 0
    out = root / "generated/images/base"
    sha = {n: _sha(index, n) for n in index.files}
    assert (out / "requirements-heavy.txt").read_text().splitlines()[1:] == [
        f"big==1.0 --hash={sha['big-1.0-py3-none-any.whl']}"]
    assert (out / "requirements.txt").read_text().splitlines()[1:] == [
        f"alpha==1.0 --hash={sha['alpha-1.0-py3-none-any.whl']}",
        f"small==1.0 --hash={sha['small-1.0-py3-none-any.whl']}"]
    dockerfile = (out / "Dockerfile").read_text()
    heavy_at = dockerfile.index("COPY generated/images/base/requirements-heavy.txt /opt/dockwright/requirements-heavy.txt\n"
                                "RUN python -m pip install --no-cache-dir --disable-pip-version-check --index-url "
                                f"{index.url} --require-hashes --no-deps -r /opt/dockwright/requirements-heavy.txt\n")
    assert heavy_at < dockerfile.index("COPY generated/images/base/requirements.txt")
    check_output(compile_project(root / "dockwright.yaml"))
    # By name: heavy_packages overrides the rule (here: none heavy, then alpha only).
    for key, heavy in (("[]", None), ("[Alpha]", "alpha")):
        (root / "dockwright.yaml").write_text(text.replace("requirements: [big", f"heavy_packages: {key}\n    "
                                                                                 "requirements: [big"))
        # heavy_packages does not change what is resolved: the lock still matches.
        assert invoke("lock", cwd=root).stdout == "dockwright.lock: unchanged\n"
        assert invoke("compile", cwd=root).returncode == 0
        heavy_file = out / "requirements-heavy.txt"
        assert (heavy_file.read_text().splitlines()[1:] if heavy_file.exists() else None) == (
            None if heavy is None else [f"alpha==1.0 --hash={sha['alpha-1.0-py3-none-any.whl']}"])
        check_output(compile_project(root / "dockwright.yaml"))


def test_python_beside_parent_image_states_its_version_for_lock(project, index: Index, registry: Registry,
                                                                uv_cache: Path) -> None:
    body = ("  base:\n    parent_image: debian:12-slim\n    python: \"3.11\"\n    index_url: {url}\n"
            "    requirements: [alpha]\n  child:\n    extends: base\n")
    root = _locked(project, index, registry, uv_cache, _project(index, body.format(url=index.url)))
    lock = lockfile.read(root / "dockwright.lock")
    assert lock is not None and lock.images["base"].python == "3.11"
    compiled = compile_project(root / "dockwright.yaml")
    assert compiled.plan.environments["base"].base is not None
    assert compiled.plan.environments["base"].base.value.python == "3.11"
    digest = registry.push("library/debian", "12-slim", ("linux/amd64", "linux/arm64"))
    assert compiled.files["images/base/Dockerfile"].count(f"\nFROM debian:12-slim@{digest}\n") == 1


def test_skip_parents_leaves_parents_unpinned_and_compile_says_which(project, index: Index,
                                                                     uv_cache: Path) -> None:
    gone = Registry()
    gone.close()  # a registry that cannot be reached: --skip-parents asks none
    root = project({"dockwright.yaml": _project(index, BASE.format(url=index.url) + CHILD)})
    code, out, err = lock_cli(root, gone, uv_cache, "--skip-parents")
    assert (code, err) == (0, ""), err
    assert '[images.base.parent]\nref = "python:3.11-slim"\n\n[[images.base.packages]]' in (
        root / "dockwright.lock").read_text()
    done = invoke("compile", cwd=root, env={"NO_COLOR": "1"})
    assert done.returncode == 0
    assert done.stderr == (
        "dockwright.yaml:5:13: warning: parent image 'python:3.11-slim' of image 'base' is not pinned to a digest in "
        "dockwright.lock (run `dockwright lock` where its registry can be reached)\n"
        "    5 |     python: \"3.11\"\n"
        "      |             ^\n")
    assert "\nFROM python:3.11-slim\n" in (root / "generated/images/base/Dockerfile").read_text()


def test_without_a_lock_compile_says_so_in_one_line_unless_quiet(project) -> None:
    root = project({"dockwright.yaml": "version: 1\nproject: p\nenvironments:\n  e: {python: \"3.11\"}\n"
                                       "runner: {environment: e}\n"})
    done = invoke("compile", cwd=root)
    assert (done.returncode, done.stderr) == (0, "note: no dockwright.lock: packages and parent images are not "
                                                 "pinned (run `dockwright lock`)\n")
    quiet = invoke("--quiet", "compile", cwd=root)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_explain_shows_each_locked_package_and_the_requirement_that_pulled_it_in(project, index: Index,
                                                                                 registry: Registry,
                                                                                 uv_cache: Path) -> None:
    text = _project(index, BASE.format(url=index.url) + CHILD)
    root = _locked(project, index, registry, uv_cache, text)
    done = invoke("explain", "child", cwd=root)
    assert done.returncode == 0, done.stderr
    locked = done.stdout[done.stdout.index("locked packages"):]
    assert locked == (
        "locked packages (dockwright.lock)\n"
        "  alpha==1.0  via beta  dockwright.yaml:7  via extends base\n"
        "  beta==1.0   via beta  dockwright.yaml:7  via extends base\n"
        "  delta==1.0  via delta  dockwright.yaml:7  via extends base\n"
        "  small==1.0  via small==1.0  dockwright.yaml:10\n")
    data = json.loads(invoke("explain", "--json", "child", cwd=root).stdout)
    assert data["locked"][0] == {"name": "alpha", "version": "1.0", "platforms": ["linux/amd64"],
                                 "via": [{"requirement": "beta", "origin": {"file": "dockwright.yaml", "line": 7,
                                                                            "via": ["extends base"]}}]}
