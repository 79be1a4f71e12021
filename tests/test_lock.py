"""`dockwright lock` against a local index of generated wheels and a local token-flow registry (real HTTP,
real uv): pins, hashes, sizes, platforms, digests, keeping pins, upgrades, --check, and every failure."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import pytest

from click.testing import CliRunner

from compiler import cli, lockfile
from helpers import invoke, run_cli
from lock.servers import Dist, Index, Registry, make_ca

PY = "python:3.11-slim"


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = Registry()
    reg.push("library/python", "3.11-slim", ("linux/amd64", "linux/arm64"))
    reg.push("library/python", "3.12-slim", ("linux/amd64", "linux/arm64"))
    try:
        yield reg
    finally:
        reg.close()


def _dists() -> list[Dist]:
    return [
        Dist("alpha", "1.0"), Dist("alpha", "2.0"), Dist("alpha", "3.0", yanked=True),
        Dist("beta", "1.0", requires=("alpha>=1", 'gamma; extra == "fast"', 'epsilon; platform_machine == "aarch64"'),
             extras=("fast",)),
        Dist("gamma", "1.0", sdist=True, wheels=False), Dist("epsilon", "1.0"),
        Dist("delta", "1.0", tags=("py3-none-manylinux_2_17_x86_64", "py3-none-manylinux_2_17_aarch64"), sdist=True),
        Dist("zeta", "1.0", requires=("alpha<2",)),
    ]


@pytest.fixture(scope="module")
def index() -> Iterator[Index]:
    idx = Index()
    idx.add(*_dists())
    try:
        yield idx
    finally:
        idx.close()


@pytest.fixture(scope="module")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


def lock_cli(root: Path, registry: Registry, uv_cache: Path, *args: str,
             env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    """`dockwright lock` in this process (a process start per call would double the time), from root."""
    env = {"DOCKWRIGHT_REGISTRY_MIRRORS": f"docker.io={registry.host}", "UV_CACHE_DIR": str(uv_cache),
           "NO_COLOR": "1", **(env or {})}
    here = Path.cwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(cli.main, ["lock", *args], env=env, catch_exceptions=False)
    finally:
        os.chdir(here)
    return result.exit_code, result.stdout, result.stderr


def yaml(index_url: str, requirements: list[str], *, extra: str = "", python: str = '"3.11"') -> str:
    reqs = ", ".join(f"'{r}'" for r in requirements)
    return (f"version: 1\nproject: locked\nenvironments:\n  base:\n    python: {python}\n"
            f"    index_url: {index_url}\n    requirements: [{reqs}]\n{extra}runner: {{environment: base}}\n")


def test_lock_pins_every_package_with_hashes_sizes_and_platforms(project, index: Index, registry: Registry,
                                                                 uv_cache: Path) -> None:
    root = project({"dockwright.yaml": yaml(index.url, ["beta[fast]", "delta"],
                                            extra="platforms: [linux/arm64, linux/amd64]\n")})
    code, out, err = lock_cli(root, registry, uv_cache)
    assert (code, err) == (0, ""), err
    text = (root / "dockwright.lock").read_text()
    lock = lockfile.parse(root / "dockwright.lock", text)
    base = lock.images["base"]
    assert base.platforms == ("linux/amd64", "linux/arm64")
    assert base.parent is not None and base.parent.ref == PY
    assert base.parent.digest == registry.push("library/python", "3.11-slim", ("linux/amd64", "linux/arm64"))
    assert [p for p, _ in base.parent.platforms] == ["linux/amd64", "linux/arm64"]
    pkgs = {p.name: p for p in base.packages}
    assert {n: (p.version, p.platforms, p.via) for n, p in pkgs.items()} == {
        "alpha": ("2.0", (), ("beta[fast]",)),  # 3.0 is yanked
        "beta": ("1.0", (), ("beta[fast]",)),
        "delta": ("1.0", (), ("delta",)),
        "epsilon": ("1.0", ("linux/arm64",), ("beta[fast]",)),  # a marker on the machine
        "gamma": ("1.0", (), ("beta[fast]",)),  # the extra
    }
    assert [(f.name, f.platforms) for f in pkgs["delta"].files] == [
        ("delta-1.0-py3-none-manylinux_2_17_aarch64.whl", ("linux/arm64",)),
        ("delta-1.0-py3-none-manylinux_2_17_x86_64.whl", ("linux/amd64",)),
        ("delta-1.0.tar.gz", ())]
    assert [f.name for f in pkgs["gamma"].files] == ["gamma-1.0.tar.gz"]  # only an sdist
    served = {f["filename"]: f for files in index.projects.values() for f in files}
    for pkg in base.packages:
        for f in pkg.files:
            assert f.hash == "sha256:" + served[f.name]["hashes"]["sha256"]
            assert f.size == served[f.name]["size"]
    assert "/tmp" not in text and "127.0.0.1" not in text  # no machine paths, no index or mirror addresses
    assert out.splitlines()[-1] == "dockwright.lock: written; resolved base"


def test_lock_is_the_same_from_two_directories_and_runs(tmp_path: Path, index: Index, registry: Registry,
                                                        uv_cache: Path) -> None:
    texts = []
    for n in range(2):
        root = tmp_path / f"copy{n}" / ("deeper/" * n)
        root.mkdir(parents=True, exist_ok=True)
        (root / "dockwright.yaml").write_text(yaml(index.url, ["zeta", "delta"]))
        for _ in range(2):
            (root / "dockwright.lock").unlink(missing_ok=True)
            code, _, err = lock_cli(root, registry, uv_cache)
            assert code == 0, err
            texts.append((root / "dockwright.lock").read_bytes())
    assert len(set(texts)) == 1


def test_nothing_to_resolve_is_fast_and_writes_nothing(project, index: Index, registry: Registry,
                                                       uv_cache: Path) -> None:
    root = project({"dockwright.yaml": yaml(index.url, ["zeta"])})
    assert lock_cli(root, registry, uv_cache)[0] == 0
    before = (root / "dockwright.lock").stat().st_mtime_ns
    index.requests.clear()
    registry.requests.clear()
    started = time.monotonic()
    code, out, err = lock_cli(root, registry, uv_cache)
    assert (code, out, err) == (0, "dockwright.lock: unchanged\n", "")
    assert time.monotonic() - started < 1  # about 0.1 s: compile, then 11 ms for the lock (2 loaded cores)
    # And as a user runs it, in its own process, with a registry that cannot be reached:
    done = run_cli("lock", cwd=root, env={"DOCKWRIGHT_REGISTRY_MIRRORS": "docker.io=127.0.0.1:1"})
    assert (done.returncode, done.stdout, done.stderr) == (0, "dockwright.lock: unchanged\n", "")
    assert index.requests == [] and registry.requests == []
    assert index.requests == [] and registry.requests == []
    assert (root / "dockwright.lock").stat().st_mtime_ns == before


def test_plain_lock_keeps_pins_and_upgrade_package_moves_only_its_lines(project, registry: Registry,
                                                                        uv_cache: Path) -> None:
    idx = Index()
    try:
        idx.add(Dist("alpha", "1.0"), Dist("omega", "1.0"), Dist("kappa", "1.0", requires=("alpha", "omega")))
        root = project({"dockwright.yaml": yaml(idx.url, ["kappa"])})
        assert lock_cli(root, registry, uv_cache)[0] == 0
        first = (root / "dockwright.lock").read_text()
        idx.add(Dist("alpha", "1.1"), Dist("omega", "1.1"))
        # A change to the YAML resolves again, keeping every pin that still fits.
        (root / "dockwright.yaml").write_text(yaml(idx.url, ["kappa", "omega>=1"]))
        code, out, err = lock_cli(root, registry, uv_cache)
        assert code == 0, err
        second = (root / "dockwright.lock").read_text()
        assert {p.name: p.version for p in lockfile.parse(root / "x", second).images["base"].packages} == {
            "alpha": "1.0", "kappa": "1.0", "omega": "1.0"}
        code, out, err = lock_cli(root, registry, uv_cache, "--check", "--upgrade-package", "alpha")
        assert (code, out, err) == (1, "", "would change: base: alpha 1.0 -> 1.1\n"
                                           "dockwright.lock is out of date; run 'dockwright lock'\n")
        assert (root / "dockwright.lock").read_text() == second
        code, out, err = lock_cli(root, registry, uv_cache, "--upgrade-package", "alpha")
        assert (code, err) == (0, "")
        third = (root / "dockwright.lock").read_text()
        changed = [(a, b) for a, b in zip(second.splitlines(), third.splitlines()) if a != b]
        assert len(second.splitlines()) == len(third.splitlines())
        # the checksum of what follows it, alpha's version and its file
        assert [a.split("=")[0].strip() for a, _ in changed] == ["checksum", "version", "{ name"]
        assert 'name = "alpha-1.1-py3-none-any.whl"' in changed[2][1]
        assert first != second
    finally:
        idx.close()


def test_upgrade_moves_a_repushed_parent_digest(project, index: Index, uv_cache: Path) -> None:
    reg = Registry()
    try:
        old = reg.push("library/python", "3.11-slim", ("linux/amd64",))
        root = project({"dockwright.yaml": yaml(index.url, ["alpha"])})
        assert lock_cli(root, reg, uv_cache)[0] == 0
        new = reg.push("library/python", "3.11-slim", ("linux/amd64",), salt="rebuilt")
        assert lock_cli(root, reg, uv_cache)[1] == "dockwright.lock: unchanged\n"  # a plain lock keeps it
        code, out, err = lock_cli(root, reg, uv_cache, "--upgrade")
        assert code == 0, err
        assert out == f"base: parent {PY} {old[:19]} -> {new[:19]}\ndockwright.lock: written; resolved base\n"
        parent = lockfile.parse(root / "x", (root / "dockwright.lock").read_text()).images["base"].parent
        assert parent is not None and parent.digest == new
    finally:
        reg.close()


# uv wraps its explanation at $COLUMNS when it is set (pytest-xdist's workers set COLUMNS=80): the text
# must not depend on the terminal it is run from.
@pytest.mark.parametrize("columns", [None, "30"], ids=["no COLUMNS", "COLUMNS=30"])
def test_unsatisfiable_requirements_point_at_the_yaml_lines(project, index: Index, registry: Registry,
                                                            uv_cache: Path, columns: str | None) -> None:
    root = project({"dockwright.yaml": yaml(index.url, ["zeta", "alpha>=2"])})
    code, out, err = lock_cli(root, registry, uv_cache, env={"COLUMNS": columns})
    assert code == 1 and out == ""
    assert err.splitlines()[0] == (
        "dockwright.yaml:7:28: error: cannot lock image 'base' for linux/amd64: no solution found when "
        "resolving dependencies")
    assert err.splitlines()[1:] == [
        "    7 |     requirements: ['zeta', 'alpha>=2']",
        "      |                            ^",
        "      = note: Because all versions of zeta depend on alpha<2 and you require alpha>=2, we can conclude "
        "that your requirements and all versions of zeta are incompatible.",
        "      = note: And because you require zeta, we can conclude that your requirements are unsatisfiable.",
        "      = note: 'alpha>=2' is asked for here at dockwright.yaml:7:28",
        "      = note: 'zeta' is asked for here at dockwright.yaml:7:20",
        "1 error"]
    assert not (root / "dockwright.lock").exists()


def test_a_package_missing_from_the_index_is_located(project, index: Index, registry: Registry,
                                                     uv_cache: Path) -> None:
    root = project({"dockwright.yaml": yaml(index.url, ["alpha", "no-such-thing"])})
    code, _, err = lock_cli(root, registry, uv_cache)
    assert code == 1
    assert err.splitlines()[0] == ("dockwright.yaml:7:29: error: cannot lock image 'base' for linux/amd64: "
                                   "no solution found when resolving dependencies")
    assert ("      = note: Because no-such-thing was not found in the package registry and you require "
            "no-such-thing, we can conclude that your requirements are unsatisfiable.") in err.splitlines()
    assert err.splitlines()[-1] == "1 error"


def test_a_layered_child_keeps_its_parents_pins(project, index: Index, registry: Registry, uv_cache: Path) -> None:
    extra = ("  child:\n    extends: base\n    requirements: ['zeta']\n"
             "pipelines:\n  p:\n    environment: child\n    steps: {s: {}}\n")
    root = project({"dockwright.yaml": yaml(index.url, ["alpha==1.0"], extra=extra)})
    code, _, err = lock_cli(root, registry, uv_cache)
    assert code == 0, err
    lock = lockfile.parse(root / "x", (root / "dockwright.lock").read_text())
    assert {p.name: p.version for p in lock.images["child"].packages} == {"alpha": "1.0", "zeta": "1.0"}
    assert lock.images["child"].parent is None  # built FROM base's image
    # A child that asks for another version of its parent's package: located at the child's requirement.
    extra = extra.replace("['zeta']", "['alpha==2.0']")
    (root / "dockwright.yaml").write_text(yaml(index.url, ["alpha==1.0"], extra=extra))
    code, _, err = lock_cli(root, registry, uv_cache)
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith("dockwright.yaml:10:20: error: cannot lock image 'child' for linux/amd64: ")
    assert first.endswith("(it conflicts with the pins of image 'base' (alpha 1.0), which this image is built on; "
                          "move the pin to the parent environment, or stop layering this environment on it)")


def test_an_image_of_unknown_python_is_a_located_error(project, index: Index, registry: Registry,
                                                       uv_cache: Path) -> None:
    text = yaml(index.url, ["alpha"]).replace('python: "3.11"', "parent_image: debian:12-slim")
    root = project({"dockwright.yaml": text})
    code, out, err = lock_cli(root, registry, uv_cache)
    assert (code, out) == (1, "")
    assert err == (
        "dockwright.yaml:5:19: error: cannot lock the requirements of image 'base': the Python version of parent "
        "image 'debian:12-slim' is not known (state it with `python: \"X.Y\"` beside `parent_image:`/`dockerfile:`)\n"
        "    5 |     parent_image: debian:12-slim\n"
        "      |                   ^\n"
        "1 error\n")


def test_an_unreachable_registry_is_one_line_naming_it(project, index: Index, uv_cache: Path) -> None:
    reg = Registry()
    reg.close()  # its port now refuses connections
    root = project({"dockwright.yaml": yaml(index.url, ["alpha"])})
    code, _, err = lock_cli(root, reg, uv_cache)
    assert code == 1
    assert err.splitlines()[0] == (
        f"dockwright.yaml:5:13: error: cannot lock parent image '{PY}' of image 'base': cannot reach registry "
        f"{reg.host}: [Errno 111] Connection refused (check the network or proxy) (or `dockwright lock "
        "--skip-parents` to lock the Python packages now; parents stay unpinned, each named by a warning, until a "
        "lock with the registry in reach pins them)")
    assert not (root / "dockwright.lock").exists()


def test_a_registry_that_answers_no_gets_no_skip_parents_hint(project, index: Index, registry: Registry,
                                                               uv_cache: Path) -> None:
    missing = f"{registry.host}/team/none:1"
    root = project({"dockwright.yaml": yaml(index.url, ["alpha"], python=f'"3.11"\n    parent_image: {missing}')})
    code, _, err = lock_cli(root, registry, uv_cache)
    assert code == 1
    assert err.splitlines()[0] == (f"dockwright.yaml:6:19: error: cannot lock parent image '{missing}' of image "
                                   f"'base': registry {registry.host} has no image {missing}")
    assert not (root / "dockwright.lock").exists()


LOCAL_PACKAGE = """[project]
name = "Feature_Lib"
version = "0.1"
dependencies = ["zeta", "beta[fast]>=1"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
"""


def test_local_packages_dependencies_are_locked_and_a_change_to_them_makes_the_lock_stale(
        project, index: Index, registry: Registry, uv_cache: Path) -> None:
    root = project({"dockwright.yaml": yaml(index.url, ["delta"], extra="    local_packages: [libs/feature]\n"),
                    "libs/feature/pyproject.toml": LOCAL_PACKAGE, "libs/feature/feature_lib/__init__.py": ""})
    code, _, err = lock_cli(root, registry, uv_cache)
    assert (code, err) == (0, ""), err
    text = (root / "dockwright.lock").read_text()
    lock = lockfile.parse(root / "dockwright.lock", text)
    assert {p.name: (p.version, p.via) for p in lock.images["base"].packages} == {
        "alpha": ("1.0", ("local_packages: libs/feature",)),  # zeta wants alpha<2
        "beta": ("1.0", ("local_packages: libs/feature",)),
        "delta": ("1.0", ("delta",)),
        "gamma": ("1.0", ("local_packages: libs/feature",)),  # beta's extra; epsilon is aarch64's
        "zeta": ("1.0", ("local_packages: libs/feature",)),
    }  # the package itself is not pinned: it installs from its directory
    assert "feature" not in text.replace("local_packages: libs/feature", "") and str(root) not in text
    assert invoke("compile", cwd=root).returncode == 0
    requirements = (root / "generated/images/base/requirements.txt").read_text()
    assert [line.split(" ")[0] for line in requirements.splitlines() if "==" in line] == [
        "alpha==1.0", "beta==1.0", "delta==1.0", "gamma==1.0", "zeta==1.0"]
    assert "--require-hashes --no-deps /opt/dockwright/local/libs/feature/" not in (
        root / "generated/images/base/Dockerfile").read_text()  # the package: --no-deps, no hashes
    assert " --no-deps /opt/dockwright/local/libs/feature/" in (root / "generated/images/base/Dockerfile").read_text()

    pyproject = root / "libs/feature/pyproject.toml"
    pyproject.write_text(LOCAL_PACKAGE.replace('"zeta", ', ""))
    stale = invoke("compile", "--check", cwd=root)
    assert stale.returncode == 1
    assert stale.stderr.splitlines()[0] == (
        "dockwright.yaml:4:3: error: environment 'base' has changed since dockwright.lock was written (or is not in "
        "it) (run `dockwright lock`, then compile again)")
    code, _, err = lock_cli(root, registry, uv_cache)
    assert (code, err) == (0, ""), err
    lock = lockfile.read(root / "dockwright.lock")
    assert lock is not None
    assert {p.name: p.version for p in lock.images["base"].packages} == {
        "alpha": "1.0", "beta": "1.0", "delta": "1.0", "gamma": "1.0"}  # alpha 1.0 still holds: kept


def test_a_bad_lock_file_is_located_and_nothing_is_written(project, index: Index, registry: Registry,
                                                           uv_cache: Path) -> None:
    root = project({"dockwright.yaml": yaml(index.url, ["alpha"]), "dockwright.lock": "version = 2\n"})
    code, _, err = lock_cli(root, registry, uv_cache)
    assert code == 1
    assert err.splitlines()[0] == (
        "dockwright.lock:1:1: error: dockwright.lock has format version 2, newer than this dockwright reads (1) "
        "(upgrade dockwright, or remove it and run `dockwright lock` to write it in this version's format)")
    assert (root / "dockwright.lock").read_text() == "version = 2\n"


@pytest.mark.parametrize("text", ["", "garbage\n", "version = 1\nextra = 1\n", "EDIT", "\udcff\udcfe"])
def test_a_lock_that_cannot_be_read_is_written_anew_by_lock(project, index: Index, registry: Registry,
                                                          uv_cache: Path, text: str) -> None:
    """compile's error says to run `dockwright lock`; lock then writes it anew (it does not send people back to
    the same error), says why, and keeps none of its pins: a hand edit is not taken over."""
    root = project({"dockwright.yaml": yaml(index.url, ["alpha"])})
    code, _, err = lock_cli(root, registry, uv_cache)
    assert (code, err) == (0, ""), err
    good = (root / "dockwright.lock").read_text()
    if text == "EDIT":  # a pin changed in the file's own shape: the checksum gives it away
        text = good.replace('version = "2.0"', 'version = "2.1"', 1)
        assert text != good
    (root / "dockwright.lock").write_bytes(text.encode("utf-8", "surrogateescape"))  # the last one: not UTF-8
    error = invoke("compile", cwd=root).stderr.splitlines()[0]
    assert "run `dockwright lock`" in error
    code, _, err = lock_cli(root, registry, uv_cache)
    assert code == 0
    assert err.splitlines()[0].replace("dockwright.lock:", "", 1) == error.replace("dockwright.lock:", "", 1)
    assert err.splitlines()[-1] == ("note: dockwright.lock cannot be read, so `lock` writes it anew from the YAML; "
                                    "none of its pins is kept")
    assert (root / "dockwright.lock").read_text() == good
    assert invoke("compile", cwd=root).returncode == 0


def test_the_environments_certificates_let_uv_trust_a_private_index(project, tmp_path_factory: pytest.TempPathFactory,
                                                                    registry: Registry, uv_cache: Path) -> None:
    ca, cert, key = make_ca(tmp_path_factory.mktemp("ca"))
    idx = Index(tls=(cert, key))
    try:
        idx.add(Dist("alpha", "1.0"))
        extra = "    certificates: [certs/ca.pem]\n"
        root = project({"dockwright.yaml": yaml(idx.url, ["alpha"]), "certs/ca.pem": ca.read_text()})
        code, _, err = lock_cli(root, registry, uv_cache)
        assert code == 1  # not trusted without the certificate
        assert err.splitlines() == [
            f"dockwright.yaml:7:20: error: cannot lock image 'base' for linux/amd64: failed to fetch: "
            f"{idx.url}/alpha/ (if the index's certificate is signed by a private CA, list that CA in the "
            "environment's `certificates:`)",
            "    7 |     requirements: ['alpha']",
            "      |                    ^",
            f"      = note: error sending request for url ({idx.url}/alpha/)",
            "      = note: client error (Connect)",
            "      = note: invalid peer certificate: UnknownIssuer",
            "      = note: 'alpha' is asked for here at dockwright.yaml:7:20",
            "1 error"]
        (root / "dockwright.yaml").write_text(yaml(idx.url, ["alpha"], extra=extra))
        code, _, err = lock_cli(root, registry, uv_cache)
        assert (code, err) == (0, ""), err
        assert [p.version for p in lockfile.read(root / "dockwright.lock").images["base"].packages] == ["1.0"]
    finally:
        idx.close()


def test_an_index_that_refuses_is_located_at_the_environment(project, registry: Registry, uv_cache: Path) -> None:
    idx = Index(reject=401)
    try:
        root = project({"dockwright.yaml": yaml(idx.url, ["alpha"])})
        code, _, err = lock_cli(root, registry, uv_cache)
        assert code == 1
        assert err.splitlines() == [
            "dockwright.yaml:7:20: error: cannot lock image 'base' for linux/amd64: no solution found when resolving "
            "dependencies (give uv this machine's credentials for the index, e.g. in ~/.netrc; they are never "
            "written into the lock or the image)",
            "    7 |     requirements: ['alpha']",
            "      |                    ^",
            "      = note: Because alpha was not found in the package registry and you require alpha, we can conclude "
            "that your requirements are unsatisfiable.",
            f"      = note: hint: An index URL ({idx.url}) could not be queried due to a lack of valid authentication "
            "credentials (401 Unauthorized)",
            "      = note: 'alpha' is asked for here at dockwright.yaml:7:20",
            "1 error"]
        assert not (root / "dockwright.lock").exists()
    finally:
        idx.close()


def test_a_lock_that_no_longer_matches_the_yaml_is_found_offline(project, index: Index, registry: Registry,
                                                                 uv_cache: Path) -> None:
    from compiler import lock as locking
    from compiler.driver import compile_project

    extra = ("  other:\n    python: '3.12'\n    index_url: " + index.url + "\n    requirements: [delta]\n"
             "  child:\n    extends: base\n    requirements: [epsilon]\n"
             "pipelines:\n  p:\n    steps:\n      a: {environment: other}\n      b: {environment: child}\n")
    root = project({"dockwright.yaml": yaml(index.url, ["beta"], extra=extra)})
    code, out, err = lock_cli(root, registry, uv_cache)
    assert (code, err) == (0, ""), err
    assert out.splitlines()[-1] == "dockwright.lock: written; resolved base, child, other"
    lock = lockfile.read(root / "dockwright.lock")
    assert lock is not None and sorted(lock.images) == ["base", "child", "other"]
    assert lock.images["other"].python == "3.12" and lock.images["other"].parent.ref == "python:3.12-slim"
    def stale() -> list[str]:
        compiled = compile_project(root / "dockwright.yaml", use_lock=False)  # compile itself refuses a stale lock
        return locking.stale(compiled.plan, compiled.source.root, lock)

    assert stale() == []
    assert lock_cli(root, registry, uv_cache, "--check") == (0, "dockwright.lock is up to date (3 images)\n", "")
    # Changing base's requirements makes base and the child built on it stale; other is untouched.
    (root / "dockwright.yaml").write_text(yaml(index.url, ["beta", "delta"], extra=extra))
    assert stale() == ["base", "child"]
    code, out, err = lock_cli(root, registry, uv_cache, "--check")
    assert (code, out, err) == (1, "", "would change: base: delta 1.0 (new)\nwould change: child: delta 1.0 (new)\n"
                                       "dockwright.lock is out of date; run 'dockwright lock'\n")


def test_upgrade_package_must_name_a_package_and_f_finds_the_project(project, tmp_path: Path, index: Index,
                                                                    registry: Registry, uv_cache: Path) -> None:
    root = project({"sub/dockwright.yaml": yaml(index.url, ["alpha"])})
    code, out, err = lock_cli(root, registry, uv_cache, "-f", "sub/dockwright.yaml", "--upgrade-package", "Nope_X")
    assert (code, out, err) == (2, "", "error: --upgrade-package nope-x: no image requires or locks a package of "
                                       "that name\n")
    code, out, err = lock_cli(root, registry, uv_cache, "-f", "sub/dockwright.yaml")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "sub/dockwright.lock: written; resolved base"
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["dockwright.lock", "dockwright.yaml"]


def test_the_lock_is_never_written_through_a_symlink(project, index: Index, registry: Registry,
                                                     uv_cache: Path) -> None:
    root = project({"dockwright.yaml": yaml(index.url, ["alpha"]), "elsewhere.txt": ""})
    (root / "dockwright.lock").symlink_to(root / "elsewhere.txt")
    refused = ("error: dockwright.lock is a symbolic link; dockwright does not write through links (replace the "
               "link with the file it leads to, or remove it: lock writes a regular file there)")
    code, out, err = lock_cli(root, registry, uv_cache)
    assert code == 1  # an empty file is not a lock: said, and written anew, but not through the link
    assert err.splitlines()[0] == ("dockwright.lock:1:1: error: dockwright.lock has no format version (run "
                                   "`dockwright lock` to write it again)")
    assert err.splitlines()[-2:] == [refused, "1 error"] and (root / "elsewhere.txt").read_text() == ""
    (root / "elsewhere.txt").unlink()
    code, out, err = lock_cli(root, registry, uv_cache)
    assert (code, out, err) == (1, "", refused + "\n1 error\n")
    assert not (root / "elsewhere.txt").exists()


def test_a_lock_that_leads_out_of_the_project_is_not_read(project, tmp_path_factory: pytest.TempPathFactory) -> None:
    """As every file the project names: a link out is an error, and nothing outside is read."""
    outside = tmp_path_factory.mktemp("outside") / "dockwright.lock"
    outside.write_text(lockfile.render(lockfile.Lock(images={})))
    root = project({"dockwright.yaml": yaml("https://pypi.example/simple", ["alpha"])})
    (root / "dockwright.lock").symlink_to(outside)
    for args in (("compile",), ("compile", "--check"), ("lock", "--check", "--offline")):
        result = invoke(*args, cwd=root)
        assert (result.returncode, result.stdout) == (1, ""), args
        assert result.stderr.splitlines()[0] == (
            "error: dockwright.lock leads outside the project directory through a symbolic link; dockwright reads "
            "nothing outside the project (replace the link with the lock file itself (dockwright lock writes it))")


def test_this_machines_uv_settings_do_not_change_the_lock(project, tmp_path_factory: pytest.TempPathFactory,
                                                          index: Index, registry: Registry, uv_cache: Path) -> None:
    root = project({"dockwright.yaml": yaml(index.url, ["alpha", "delta"])})
    assert lock_cli(root, registry, uv_cache)[0] == 0
    clean = (root / "dockwright.lock").read_text()
    (root / "dockwright.lock").unlink()
    config = tmp_path_factory.mktemp("xdg")
    (config / "uv").mkdir()
    (config / "uv" / "uv.toml").write_text('index-url = "http://127.0.0.1:1/simple"\nresolution = "lowest"\n')
    (root / "uv.toml").write_text('resolution = "lowest"\n')
    code, _, err = lock_cli(root, registry, uv_cache, env={
        "XDG_CONFIG_HOME": str(config), "UV_INDEX_URL": "http://127.0.0.1:1/simple", "UV_RESOLUTION": "lowest",
        "UV_EXTRA_INDEX_URL": "http://127.0.0.1:1/other", "UV_PYTHON": "3.8"})
    assert (code, err) == (0, "")
    assert (root / "dockwright.lock").read_text() == clean


@pytest.mark.parametrize(("image", "python"), [
    ("python:3.11-slim", "3.11"), ("docker.io/library/python:3.12.4-bookworm", "3.12"),
    ("python:3.10@sha256:" + "a" * 64, "3.10"),
    ("zenmldocker/zenml:0.98.0-py3.11", "3.11"),  # what `import zenml` writes: lock knows its Python
    ("docker.io/zenmldocker/zenml:0.98.0rc1-py3.12", "3.12"),
    ("zenmldocker/zenml:0.98.0", None), ("zenmldocker/zenml-server:0.98.0-py3.11", None),
    ("debian:12-slim", None), ("mypython:3.11", None), ("python:3.11\n", None), ("python:latest", None),
])
def test_the_python_version_a_parents_name_says(image: str, python: str | None) -> None:
    from compiler.lock import python_of

    assert python_of(image) == python


def test_a_zenml_parent_locks_without_python_beside_it(project) -> None:
    """`import zenml` writes `parent_image: zenmldocker/zenml:V-pyX.Y` alone: lock takes the Python from it."""
    from compiler.driver import compile_project
    from compiler.lock import targets

    root = project({"dockwright.yaml": "version: 1\nproject: z\nenvironments:\n  base:\n"
                                       "    parent_image: zenmldocker/zenml:0.98.0-py3.11\n    requirements: [alpha]\n"
                                       "runner: {environment: base}\n"})
    compiled = compile_project(root / "dockwright.yaml")
    found = targets(compiled.plan, root, ("linux/amd64",))["base"]
    assert (found.python, found.python_problem) == ("3.11", None)


def test_a_layered_child_s_entry_holds_its_parent_s_local_package_dependencies(
        project, index: Index, registry: Registry, uv_cache: Path) -> None:
    """The child image holds what its parent installed: its entry says so (as its requirements repeat the
    parent's), explain shows where each came from, and the child installs none of them again."""
    text = yaml(index.url, ["delta"], extra="    local_packages: [libs/feature]\n").replace(
        "runner:", "  child:\n    extends: base\n    requirements: [gamma]\nrunner:") + (
        "pipelines:\n  p:\n    environment: child\n    steps: {a: {}}\n")
    root = project({"dockwright.yaml": text, "libs/feature/pyproject.toml": LOCAL_PACKAGE,
                    "libs/feature/feature_lib/__init__.py": ""})
    code, _, err = lock_cli(root, registry, uv_cache)
    assert (code, err) == (0, ""), err
    lock = lockfile.parse(root / "dockwright.lock", (root / "dockwright.lock").read_text())
    base = {p.name: (p.version, p.via) for p in lock.images["base"].packages}
    child = {p.name: (p.version, p.via) for p in lock.images["child"].packages}
    assert child == {**base, "gamma": ("1.0", ("gamma", "local_packages: libs/feature"))}
    assert invoke("compile", "--check", cwd=root).returncode == 1  # not compiled yet: would write
    assert invoke("compile", cwd=root).returncode == 0
    # every package the child holds is installed in the parent: the child installs nothing
    assert sorted(p.name for p in (root / "generated/images/child").iterdir()) == ["Dockerfile"]
    explained = invoke("explain", "child", cwd=root).stdout
    assert explained.split("locked packages (dockwright.lock)\n", 1)[1] == (
        "  alpha==1.0  via local_packages: libs/feature  dockwright.yaml:8  via extends base\n"
        "  beta==1.0   via local_packages: libs/feature  dockwright.yaml:8  via extends base\n"
        "  delta==1.0  via delta  dockwright.yaml:7  via extends base\n"
        "  gamma==1.0  via gamma  dockwright.yaml:11\n"
        "              via local_packages: libs/feature  dockwright.yaml:8  via extends base\n"
        "  zeta==1.0   via local_packages: libs/feature  dockwright.yaml:8  via extends base\n")
