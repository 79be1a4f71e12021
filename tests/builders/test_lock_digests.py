"""Parent image digests from the registry the builder tests run (Debian's docker-registry on 127.0.0.1:25000):
push a base, lock, re-push other contents under the same tag; a plain lock keeps the digest, --upgrade moves
exactly that one."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import docker

from compiler import lockfile
from helpers import run_cli
from infra import BUSYBOX_IMAGE, Infra
from test_build import dockwright, statuses, unique, write


def _push(client: docker.DockerClient, ref: str, label: str) -> str:
    image, _ = client.images.build(fileobj=io.BytesIO(f"FROM {BUSYBOX_IMAGE}\nLABEL dwlock={label}\n".encode()),
                                   tag=ref, rm=True)
    for line in client.images.push(ref, stream=True, decode=True):
        assert "error" not in line, line
    digest: str = client.images.get_registry_data(ref).id
    return digest


def test_lock_keeps_a_repushed_digest_until_upgrade(infra: Infra, docker_client: docker.DockerClient,
                                                    tmp_path: Path) -> None:
    repo = f"{infra.registry}/dwlock-{uuid.uuid4().hex[:8]}"
    first = _push(docker_client, f"{repo}/base:1", "one")
    other = _push(docker_client, f"{repo}/other:1", "one")
    (tmp_path / "dockwright.yaml").write_text(
        "version: 1\nproject: digests\nenvironments:\n"
        f"  a:\n    parent_image: {repo}/base:1\n    env: {{A: '1'}}\n"
        f"  b:\n    parent_image: {repo}/other:1\n    env: {{B: '1'}}\n"
        "pipelines:\n  p:\n    steps:\n      a: {environment: a}\n      b: {environment: b}\n")
    done = run_cli("lock", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    lock = lockfile.read(tmp_path / "dockwright.lock")
    assert lock is not None
    assert {n: (i.parent.ref, i.parent.digest, i.parent.platforms) for n, i in lock.images.items()
            if i.parent is not None} == {
        "a": (f"{repo}/base:1", first, (("linux/amd64", first),)),  # a single manifest is its own platform's
        "b": (f"{repo}/other:1", other, (("linux/amd64", other),)),
    }
    locked = (tmp_path / "dockwright.lock").read_text()

    second = _push(docker_client, f"{repo}/base:1", "two")
    assert second != first
    again = run_cli("lock", cwd=tmp_path)
    assert (again.returncode, again.stdout) == (0, "dockwright.lock: unchanged\n")
    check = run_cli("lock", "--check", "--upgrade", cwd=tmp_path)
    assert (check.returncode, check.stderr) == (1, f"would change: a: parent {repo}/base:1 {first[:19]} -> "
                                                   f"{second[:19]}\ndockwright.lock is out of date; run "
                                                   "'dockwright lock'\n")
    upgraded = run_cli("lock", "--upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    after = (tmp_path / "dockwright.lock").read_text()
    changed = [(a, b) for a, b in zip(locked.splitlines(), after.splitlines()) if a != b]
    assert changed[0][0].startswith("checksum = ") and changed[1:] == [  # the checksum of what follows it, and:
        (f'digest = "{first}"', f'digest = "{second}"'),
        (f'"linux/amd64" = "{first}"', f'"linux/amd64" = "{second}"')]

    (tmp_path / "dockwright.yaml").write_text((tmp_path / "dockwright.yaml").read_text() + "platforms: [linux/arm64]\n")
    arm = run_cli("lock", cwd=tmp_path)
    assert arm.returncode == 1
    assert arm.stderr.splitlines()[0] == (f"dockwright.yaml:5:19: error: cannot lock parent image '{repo}/base:1' of "
                                          f"image 'a': image {repo}/base:1 has no manifest for linux/arm64")
    assert (tmp_path / "dockwright.lock").read_text() == after


def test_a_repushed_parent_rebuilds_exactly_its_images_after_upgrade(infra: Infra,
                                                                    docker_client: docker.DockerClient,
                                                                    tmp_path: Path) -> None:
    """The lock pins what a tag meant when locked: a re-push under the same tag changes no build until
    `lock --upgrade`, which rebuilds exactly the images on that parent (and their children), no other."""
    name = unique("dwrepush")
    repo = f"{infra.registry}/{name}"
    _push(docker_client, f"{repo}/base:1", "one")
    _push(docker_client, f"{repo}/other:1", "one")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  a:
    parent_image: {repo}/base:1
    run: ["echo a > /a"]
  child:
    extends: a
    run: ["echo child > /child"]
  b:
    parent_image: {repo}/other:1
    run: ["echo b > /b"]
pipelines:
  p:
    steps:
      a: {{environment: a}}
      child: {{environment: child}}
      b: {{environment: b}}
"""})
    assert dockwright("lock", cwd=root).returncode == 0
    first = dockwright("build", "--json", cwd=root)
    assert first.returncode == 0, first.stderr
    assert statuses(first) == {"a": "built", "child": "built", "b": "built"}

    _push(docker_client, f"{repo}/base:1", "two")  # other contents, same tag
    assert dockwright("compile", "--check", cwd=root).returncode == 0
    same = dockwright("build", "--json", cwd=root)
    assert same.returncode == 0, same.stderr
    assert statuses(same) == {"a": "reused", "child": "reused", "b": "reused"}

    upgraded = dockwright("lock", "--upgrade", cwd=root)
    assert upgraded.returncode == 0, upgraded.stderr
    after = dockwright("build", "--json", cwd=root)
    assert after.returncode == 0, after.stderr
    assert statuses(after) == {"a": "built", "child": "built", "b": "reused"}
    tags = {i["image"]: i["tag"] for i in json.loads(after.stdout)["images"]}
    labels = docker_client.images.get(tags["a"]).labels
    assert labels["dwlock"] == "two"  # built on what the tag means now
