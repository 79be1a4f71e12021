"""The examples on the engines: every example on the local dockerd; quickstart also on the TLS dockerd, podman (its
API) and buildah (its CLI), and one large example each on podman and buildah (MATRIX).

On each: every image is built and its checks pass, every pinned package is importable at its pinned version, the
Dockerfiles built are the ones committed (the relocked examples: the ones their lock gives), a second run reuses
every image (its time printed, for bench/README.md), and a changed copied file rebuilds exactly the
same images on each engine.

The packages come through a caching proxy on 127.0.0.1 (package_proxy.py, reached with the builder's `proxy:` and
`network: host`): a machine's first run fills its cache from PyPI and Debian's mirror, later ones install from
this machine's disk. Each run gives every image a new build key without touching a Dockerfile (_this_run), so each
image is built by the engine, whose layer cache serves the steps an earlier run on this machine already ran;
DOCKWRIGHT_TEST_COLD=1 builds every step again. No image can be pulled here, so the parents the examples name are
tags of the Debian image infra makes (docs/building.md, "Parent images"). Figures: bench/README.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from helpers import EXAMPLES, tree
from infra import CACHE_DIR, Infra, tag_as
from package_proxy import PackageProxy
from test_build import KEY_LABEL, dockwright, statuses
from test_examples_build import NETWORK, PARENTS, on_the_stand_in, pins

ENGINES = ("docker", "tls", "podman", "buildah")
# A copied file each example changes, and the images that copy it or are built on one that does.
CHANGED = {
    "quickstart": ("src/quickstart/report.py", {"base"}),
    "ml-training": ("conf/prod.yaml", {"base", "server", "training.evaluate"}),
    "platform": ("docker/nvidia-smi-wrapper.sh", {"cuda.parent", "cuda"}),
}
# DOCKWRIGHT_TEST_COLD=1: every step runs again (--no-reuse: no layer cache), as on a machine that never built
# the examples; by default the engine's layer cache from an earlier run serves the steps whose inputs did not change.
COLD = ("--no-reuse",) if os.environ.get("DOCKWRIGHT_TEST_COLD") == "1" else ()
IMPORTS = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"


@pytest.fixture(scope="module")
def package_proxy(infra: Infra) -> Iterator[PackageProxy]:
    proxy = PackageProxy(CACHE_DIR / "package-proxy", infra.ca_bundle)
    yield proxy
    print(f"package proxy: {len(proxy.fetched)} fetched, {len(proxy.served)} from the cache, "
          f"tunnelled: {sorted(set(proxy.tunnelled))}")
    proxy.close()


@pytest.fixture(scope="module")
def every_parent(infra: Infra, docker_client: docker.DockerClient, remote_docker_client: docker.DockerClient,
                 podman_url: str) -> str:
    """The examples' parents as tags of the Debian image on both dockerds and in buildah's (podman's) store."""
    tag_as(docker_client, infra.python, *PARENTS)
    tag_as(remote_docker_client, infra.python, *PARENTS)
    for parent in PARENTS:
        full = parent if "/" in parent else f"docker.io/library/{parent}"
        subprocess.run(["buildah", "tag", infra.python, full], check=True, capture_output=True)
    return podman_url


@pytest.fixture(scope="module")
def relocked(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example copied once, with its lock for the stand-in parents' Python where it needs one."""
    out = {}
    for example in CHANGED:
        root = tmp_path_factory.mktemp("examples") / example
        shutil.copytree(EXAMPLES / example, root)
        shutil.copy(infra.ca_bundle, root / "certs" / "proxy-ca.pem")
        assert on_the_stand_in(root, infra.ca_bundle) == (example != "quickstart")
        compiled = dockwright("compile", cwd=root)
        assert compiled.returncode == 0, compiled.stderr
        if example == "quickstart":  # built from its committed lock and Dockerfile as they are
            output = json.loads((root / "generated/manifest.json").read_text())["output"]
            assert tree(root / output) == tree(EXAMPLES / example / output)
        out[example] = root
    return out


def _on(root: Path, infra: Infra, proxy: PackageProxy, podman_url: str) -> None:
    """The copy builds through the proxy on each engine: its CA file also trusts the proxy's CA, and its
    builders (any it had are replaced) are the four engines, on the host's network, with the proxy."""
    ca = root / "certs" / "proxy-ca.pem"
    ca.write_text(infra.ca_bundle.read_text() + "\n" + proxy.ca.read_text())
    engine = root / "certs" / "engine"
    engine.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        shutil.copy(infra.remote_tls_dir / name, engine / name)
    project = root / "dockwright.yaml"
    text = re.sub(r"^builders:\n(?:  .*\n)+|^default_builder: .*\n", "", project.read_text(), flags=re.MULTILINE)
    through = f"network: host, proxy: {{http: '{proxy.url}', https: '{proxy.url}', no_proxy: localhost}}"
    project.write_text(text + "builders:\n"
                       f"  docker: {{type: docker, url: '{infra.local_url}', {through}}}\n"
                       f"  tls: {{type: docker, url: '{infra.remote_url}', {through},\n"
                       "        tls: {ca: certs/engine/ca.pem, cert: certs/engine/cert.pem, key: certs/engine/key.pem}}\n"
                       f"  podman: {{type: podman, url: '{podman_url}', {through}}}\n"
                       f"  buildah: {{type: buildah, proxy: {{http: '{proxy.url}', https: '{proxy.url}'}}}}\n")


def _this_run(root: Path) -> None:
    """Make every build key of the copy new, so that each image is built (not reused from an earlier run), while
    the Dockerfiles, requirements and copied files stay as they are, so the engine's layer cache from an earlier
    run still serves the steps whose inputs did not change: one more check on each environment (checks count in
    the key, not in the Dockerfile), and a file no Dockerfile copies in a hand-written Dockerfile's context."""
    run = uuid.uuid4().hex[:12]
    for path in root.rglob("*.yaml"):
        text = path.read_text()
        new = re.sub(r"^( +)checks:\n", lambda m: f"{m.group(0)}{m.group(1)}  - true run-{run}\n", text,
                     flags=re.MULTILINE)
        path.write_text(new)
    for dockerfile in root.rglob("*.Dockerfile"):
        (dockerfile.parent / ".dockwright-test-run").write_text(f"{run}\n")


BUILT = CACHE_DIR / "engine-examples.json"  # the images each engine's last run left, by engine and project


def _drop_earlier(engine: str, project: str, first: set[str], kept: set[str], infra: Infra) -> None:
    """Remove the images of the project this engine's earlier run left, and those of this run a changed file
    replaced; keep this run's last ones (and their layers: the next run's layer cache). podman and buildah share
    one store, so each removes only what it built itself (an image goes with the parents nothing else is built
    on: the layers this run's images share stay)."""
    record = json.loads(BUILT.read_text()) if BUILT.is_file() else {}
    old = (set(record.get(engine, {}).get(project, [])) | first) - kept
    if engine in ("docker", "tls"):
        client = infra.local_client() if engine == "docker" else infra.remote_client()
        try:
            left = sorted(old)
            while left:  # children before parents: dockerd refuses to remove an image something is built on
                blocked = []
                for image_id in left:
                    try:
                        client.images.remove(image_id, force=True)
                    except docker.errors.NotFound:
                        pass
                    except docker.errors.APIError as exc:
                        if exc.status_code != 409:
                            raise
                        blocked.append(image_id)
                assert len(blocked) < len(left), f"cannot remove the images {blocked}"
                left = blocked
        finally:
            client.close()
    elif old:
        subprocess.run(["buildah", "rmi", "--force", *old], capture_output=True, check=False)
    record.setdefault(engine, {})[project] = sorted(kept)
    temp = BUILT.with_name(f".{BUILT.name}.{os.getpid()}")
    temp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    temp.replace(BUILT)


def _versions(engine: str, tag: str, names: list[str], infra: Infra) -> dict[str, str]:
    """What importlib.metadata says of each package in the image, as the image's own user."""
    if engine in ("docker", "tls"):
        client = infra.local_client() if engine == "docker" else infra.remote_client()
        try:
            output = client.containers.run(tag, entrypoint=["python", "-c", IMPORTS, *names], remove=True)
        finally:
            client.close()
        found: dict[str, str] = json.loads(output)
        return found
    container = subprocess.run(["buildah", "from", "--pull-never", "--quiet", tag], capture_output=True, text=True,
                               check=True).stdout.strip()
    try:
        done = subprocess.run(["buildah", "run", "--isolation", "chroot", container, "--", "python", "-c", IMPORTS,
                               *names], capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return found


def _labels(engine: str, tag: str, infra: Infra) -> dict[str, str]:
    if engine in ("docker", "tls"):
        client = infra.local_client() if engine == "docker" else infra.remote_client()
        try:
            labels: dict[str, str] = client.images.get(tag).labels
            assert "BEGIN CERTIFICATE" not in json.dumps(client.images.get(tag).history())
        finally:
            client.close()
        return labels
    inspected = subprocess.run(["buildah", "inspect", "--type", "image", tag], capture_output=True, text=True,
                               check=True).stdout
    assert "BEGIN CERTIFICATE" not in inspected
    labels = json.loads(inspected)["OCIv1"]["config"].get("Labels") or {}
    return labels


def _build(root: Path, engine: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = dockwright("build", "--builder", engine, "--json", *extra, cwd=root, timeout=2400)
    return result, time.monotonic() - started


# Every example on the local dockerd, and quickstart on every engine. The TLS dockerd is the local dockerd's daemon
# behind mutual TLS: what differs is the transport, which quickstart covers. podman (its API) and buildah (its CLI)
# share one store, and each also builds one of the two large examples: podman ml-training (layered children, heavy
# packages), buildah platform (a custom parent Dockerfile, includes, uv and pip). CI's time (under 25 minutes) is
# what the other four would cost: about 470 s.
MATRIX = [("docker", example) for example in CHANGED] + [(engine, "quickstart") for engine in ENGINES[1:]] + [
    ("podman", "ml-training"), ("buildah", "platform")]


@pytest.mark.parametrize(("engine", "example"), MATRIX)
def test_the_examples_on_the_engines(engine: str, example: str, infra: Infra, package_proxy: PackageProxy,
                                       every_parent: str, relocked: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / example
    shutil.copytree(relocked[example], root)
    _on(root, infra, package_proxy, every_parent)
    _this_run(root)
    manifest = json.loads(next(root.rglob("manifest.json")).read_text())

    first, seconds = _build(root, engine, *COLD)
    if first.returncode != 0 and NETWORK.search(first.stderr):
        print(f"network trouble, building again:\n{first.stderr[-3000:]}")
        first, seconds = _build(root, engine, *COLD)
    assert first.returncode == 0, first.stderr[-4000:]
    images = json.loads(first.stdout)["images"]
    assert {item["status"] for item in images} == {"built"}
    print(f"{example} on {engine}: first build {seconds:.1f} s ({len(images)} images)")
    out = root / manifest["output"]
    # the Dockerfiles and requirements built are the ones committed (relocked: the ones the lock gives)
    assert tree(out / "images") == tree(relocked[example] / manifest["output"] / "images")

    manifest = json.loads(next(root.rglob("manifest.json")).read_text())
    for item in images:
        entry = manifest["images"][item["image"]]
        assert _labels(engine, entry["tag"], infra)[KEY_LABEL] == item["build_key"]
        if entry["generated"]:
            wanted = pins((root / entry["dockerfile"]).with_name("requirements.txt").read_text())
            assert _versions(engine, entry["tag"], sorted(wanted), infra) == wanted, item["image"]

    walls, parts = [], []
    for _ in range(3):  # the figures bench/README.md reports: the median of three
        again, wall = _build(root, engine)
        assert again.returncode == 0, again.stderr
        assert set(statuses(again).values()) == {"reused"}
        walls.append(wall)
        parts.append(json.loads(again.stdout)["seconds"])
    wall, engine_part = sorted(walls)[1], sorted(parts)[1]
    print(f"{example} on {engine}: no-op build {wall:.2f} s, min {min(walls):.2f} s "
          f"({engine_part:.2f} s finding the images)")
    # Speed is measured, not asserted: the figures go to bench/README.md. A bound here failed on a busy machine
    # (buildah's part is one `buildah inspect` per image, against a store that grows with every run).

    path, rebuilt = CHANGED[example]
    with (root / path).open("a") as changed:
        changed.write("\n# changed\n")
    third, seconds = _build(root, engine)
    assert third.returncode == 0, third.stderr[-4000:]
    assert {name for name, status in statuses(third).items() if status == "built"} == rebuilt
    assert {status for name, status in statuses(third).items() if name not in rebuilt} <= {"reused"}
    print(f"{example} on {engine}: {path} changed, {sorted(rebuilt)} built again in {seconds:.1f} s")
    _drop_earlier(engine, manifest["project"], {item["id"] for item in images},
                  {item["id"] for item in json.loads(third.stdout)["images"]}, infra)
