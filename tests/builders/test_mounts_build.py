"""Build secrets and cache mounts on real engines: buildah (its CLI) and podman (its API) install from an index on
127.0.0.1 that needs the secret (a netrc file, HTTP basic auth), and afterwards the secret's text is nowhere: not
in the generated files, the image's config and history, any layer (`buildah push` to a directory, `podman save`),
or what dockwright printed. The classic Docker builder has no RUN --mount: a project that needs it is refused
before the engine is contacted."""

from __future__ import annotations

import gzip
import json
import secrets
import subprocess
from pathlib import Path

import pytest

from infra import Infra
from lock.servers import Dist, Index
from test_build import dockwright, statuses, unique


def _project(project: str, python_image: str, index: Index, secret_file: Path, podman_url: str) -> str:
    return (f"version: 1\nproject: {project}\n"
            "builders:\n  buildah: {type: buildah}\n  local: {type: docker}\n"
            f"  podman: {{type: podman, url: '{podman_url}', network: host}}\n"
            "default_builder: buildah\n"
            "environments:\n  app:\n"
            f"    parent_image: {python_image}\n    python: \"3.11\"\n    labels: {{dockwright-test: {project}}}\n"
            f"    index_url: {index.url}\n    requirements: ['private==1.0']\n"
            "    cache_mounts: true\n"
            f"    secrets:\n      netrc: {{file: {secret_file}}}\n"
            "    checks: [\"python -c 'import private; print(private.VERSION)'\"]\n"
            "runner: {environment: app}\n")


def _blobs(engine: str, image: str, into: Path) -> list[bytes]:
    """Every blob of the image (layers decompressed), from `buildah push` to a directory, or `podman save` of it
    as an OCI layout."""
    save = (["buildah", "push", "--quiet", image, f"dir:{into}"] if engine == "buildah" else
            ["podman", "save", "--quiet", "--format", "oci-dir", "--output", str(into), image])
    subprocess.run(save, check=True, capture_output=True, timeout=600)
    out = []
    for path in sorted(p for p in into.rglob("*") if p.is_file()):
        data = path.read_bytes()
        out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return out


@pytest.mark.parametrize("engine", ["buildah", "podman"])
def test_a_secret_reaches_the_install_and_is_nowhere_afterwards(engine: str, infra: Infra, podman_url: str,
                                                                tmp_path: Path) -> None:
    password = "pw-" + secrets.token_hex(12)
    index = Index(auth=("dwuser", password))
    try:
        index.add(Dist("private", "1.0"))
        project = unique("dwsecret")
        root = tmp_path / "p"
        root.mkdir()
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1 login dwuser password {password}\n")
        (root / "dockwright.yaml").write_text(_project(project, infra.python, index, netrc, podman_url))
        built = dockwright("build", "--builder", engine, "--json", "-v", cwd=root)
        assert built.returncode == 0, built.stderr[-4000:]
        assert statuses(built) == {"app": "built"}
        assert any(p.startswith("/files/private-1.0") for p in index.authorized), index.requests
        tag = json.loads(built.stdout)["images"][0]["tag"]
        # a second run reuses it: the secret is not part of the build key
        again = dockwright("build", "--builder", engine, "--json", cwd=root)
        assert again.returncode == 0 and statuses(again) == {"app": "reused"}, again.stderr[-2000:]

        printed = built.stdout + built.stderr + again.stdout + again.stderr
        generated = b"".join(p.read_bytes() for p in (root / "generated").rglob("*") if p.is_file())
        inspected = subprocess.run(["buildah", "inspect", "--type", "image", tag], capture_output=True, text=True,
                                   check=True).stdout
        blobs = _blobs(engine, tag, tmp_path / "pushed")
        assert len(blobs) >= 3  # config, manifest, layers
        # podman's service takes the secret as a file of the request's context and removes it with the context
        left = b"".join(p.read_bytes() for p in Path("/var/tmp").glob("libpod_builder*/**/*") if p.is_file())
        for where, text in [("output", printed.encode()), ("generated", generated), ("podman's temp", left),
                            ("inspect", inspected.encode()), *((f"blob {i}", b) for i, b in enumerate(blobs))]:
            assert password.encode() not in text, where
        assert "--mount=type=secret,id=netrc,required=true" in inspected  # the history says the mount, by id
    finally:
        index.close()


def test_a_project_with_mounts_on_the_classic_docker_builder_is_refused_before_the_engine(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "dockwright.yaml").write_text(
        "version: 1\nproject: dwmounts-refused\n"
        # nothing answers on this port: the refusal must come first
        "builders:\n  local: {type: docker, url: 'tcp://127.0.0.1:9'}\n"
        "environments:\n"
        "  app: {python: '3.11', requirements: [requests], cache_mounts: true}\n"
        "  web: {python: '3.11', requirements: [flask], secrets: {netrc: {env: NETRC_TEXT}}}\n"
        "  plain: {python: '3.11', requirements: [numpy]}\n"
        "runner: {environment: app}\nserver: {environment: web}\n"
        "pipelines: {p: {environment: plain, steps: {s: {}}}}\n")
    result = dockwright("build", cwd=root, env={"NETRC_TEXT": "machine x login u password p"})
    assert result.returncode == 2
    assert result.stderr.splitlines()[-2:] == [
        "error: builder 'local' (type docker) cannot build RUN --mount (cache mounts) and build secrets, which "
        "images 'app', 'web' need",
        "hint: build on a builder of type buildah or podman (builders: in the project file, then --builder NAME), "
        "or remove cache_mounts and secrets"]
    assert result.stdout == ""


def test_cache_mounts_build_on_podman_and_stay_out_of_the_image(infra: Infra, podman_url: str,
                                                                tmp_path: Path) -> None:
    index = Index()
    try:
        index.add(Dist("cached", "1.0"))
        project = unique("dwcache")
        root = tmp_path / "p"
        root.mkdir()
        (root / "dockwright.yaml").write_text(
            f"version: 1\nproject: {project}\n"
            f"builders:\n  podman: {{type: podman, url: '{podman_url}', network: host}}\n"
            "environments:\n  app:\n"
            f"    parent_image: {infra.python}\n    python: \"3.11\"\n    labels: {{dockwright-test: {project}}}\n"
            f"    index_url: {index.url}\n    requirements: ['cached==1.0']\n    cache_mounts: true\n"
            "    checks: [\"python -c 'import cached'\", \"test ! -e /root/.cache/pip/http-v2\"]\n"
            "runner: {environment: app}\n")
        built = dockwright("build", "--json", cwd=root)
        assert built.returncode == 0, built.stderr[-4000:]
        assert statuses(built) == {"app": "built"}
        assert "--mount=type=cache,target=/root/.cache/pip,sharing=locked" in \
            (root / "generated/images/app/Dockerfile").read_text()
    finally:
        index.close()
