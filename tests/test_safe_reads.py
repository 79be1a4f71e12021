"""Every file dockwright reads from a project on this machine (a builder's tls files, the CA certificates a
lock trusts, the files a build sends) goes through the safe readers: the resolved path stays inside the
project (no symbolic link out), and a FIFO or a device in a file's place is an error saying what it is, never
a hang. Each reader is tested with a link out of the project and with a FIFO."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler.builders.base import Endpoint, ImageFailed, Job
from compiler.builders.context import snapshot
from compiler.builders.docker_engine import DockerBuilder
from compiler.driver import compile_project
from compiler.errors import BuildError, read_inside, regular_inside
from helpers import invoke

BAD = ("link", "fifo")


def _bad(root: Path, rel: str, how: str, outside: Path) -> None:
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    if how == "link":
        (outside / "secret.pem").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
        target.symlink_to(outside / "secret.pem")
    else:
        os.mkfifo(target)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "project", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


@pytest.mark.parametrize("how", BAD)
def test_the_readers_refuse_a_link_out_and_a_fifo(dirs: tuple[Path, Path], how: str) -> None:
    root, outside = dirs
    _bad(root, "ca.pem", how, outside)
    why = ("it leads outside the project directory through a symbolic link" if how == "link"
           else "it is a named pipe (FIFO), not a regular file")
    for reader in (read_inside, regular_inside):
        with pytest.raises(OSError) as err:
            reader(root / "ca.pem", root)
        assert err.value.strerror == why
    (root / "ok.pem").write_bytes(b"pem")
    assert read_inside(root / "ok.pem", root) == b"pem"
    assert regular_inside(root / "ok.pem", root) == os.path.realpath(root / "ok.pem")


@pytest.mark.parametrize("how", BAD)
@pytest.mark.parametrize("key", ["ca", "cert", "key"])
def test_a_builders_tls_file_is_refused_at_build_time(dirs: tuple[Path, Path], key: str, how: str) -> None:
    """Compile checks them, but a file can change between compile and build: the builder checks again."""
    root, outside = dirs
    for name in ("ca", "cert", "key"):
        (root / f"{name}.pem").write_text("x\n", encoding="utf-8")
    _bad(root, f"{key}.pem", how, outside)
    tls = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}
    builder = DockerBuilder(Endpoint("remote", "docker", "tcp://127.0.0.1:1", tls, {}, root))
    with pytest.raises(BuildError) as err:
        builder._tls()
    why = ("leads outside the project directory through a symbolic link" if how == "link"
           else "is a named pipe (FIFO), not a regular file")
    assert str(err.value) == ("cannot reach the Docker engine at tcp://127.0.0.1:1 (builder 'remote'): "
                              f"its tls {key} file {key}.pem {why}")


@pytest.mark.parametrize("how", BAD)
def test_a_tls_file_that_is_a_fifo_or_a_link_out_is_a_compile_error(dirs: tuple[Path, Path], how: str) -> None:
    root, outside = dirs
    (root / "dockwright.yaml").write_text(
        "version: 1\nproject: p\nenvironments:\n  base: {python: '3.11'}\nrunner: {environment: base}\n"
        "builders:\n  b: {url: 'tcp://h:2376', tls: {ca: ca.pem}}\n", encoding="utf-8")
    _bad(root, "ca.pem", how, outside)
    result = invoke("compile", cwd=root)
    why = ("leads outside the project directory through a symbolic link (dockwright reads only files inside the "
           "directory of dockwright.yaml; move the file into the project)" if how == "link"
           else "is not a regular file (name a PEM file)")
    assert (result.returncode, result.stderr.splitlines()[0]) == (
        1, f"dockwright.yaml:7:38: error: tls ca file 'ca.pem' {why}")


@pytest.mark.parametrize("how", BAD)
def test_a_certificate_changed_after_compile_is_not_read_by_lock(dirs: tuple[Path, Path], how: str) -> None:
    """lock reads the CA files its resolver and registry client trust (the uv CA bundle) through read_inside."""
    from compiler import lock
    root, outside = dirs
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (root / "ca.pem").write_text(pem, encoding="utf-8")
    (root / "dockwright.yaml").write_text(
        "version: 1\nproject: p\nenvironments:\n  base: {python: '3.11', certificates: [ca.pem]}\n"
        "runner: {environment: base}\n", encoding="utf-8")
    compiled = compile_project(root / "dockwright.yaml")
    assert lock.targets(compiled.plan, root, ("linux/amd64",))["base"].certificates == (pem,)
    _bad(root, "ca.pem", how, outside)
    with pytest.raises(OSError):
        lock.targets(compiled.plan, root, ("linux/amd64",))


def test_a_fifo_in_the_build_context_fails_the_image_without_a_hang(dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    (root / "src").mkdir()
    (root / "src" / "a.py").write_text("x = 1\n", encoding="utf-8")
    os.mkfifo(root / "src" / "pipe")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n", encoding="utf-8")
    job = Job("base", "p-base:x", None, "Dockerfile", ".", ("src",), None, (), "p")
    with pytest.raises(ImageFailed) as err:
        snapshot(root, job)
    assert str(err.value).startswith(f"{root / 'src' / 'pipe'} in the build context is a named pipe (FIFO), "
                                     "not a regular file; nothing was sent to the engine")
