"""`dockwright build` on buildah (the CLI, daemonless) and podman (its Docker-compatible API) with BusyBox images:
reuse, a changed copied file, the failure report, checks, push and reuse from the registry. The same project and
the same assertions on both engines (they share one image store here, so each test names its own project)."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import docker
import pytest

from infra import Infra
from test_build import KEY_LABEL, dockwright, statuses, three_images, unique, write

ENGINES = ("buildah", "podman")


def builders(podman_url: str) -> str:
    return f"builders:\n  buildah: {{type: buildah}}\n  podman: {{type: podman, url: '{podman_url}'}}\n"


def with_builders(files: dict[str, str], podman_url: str) -> dict[str, str]:
    return {**files, "dockwright.yaml": files["dockwright.yaml"] + builders(podman_url)}


def store_labels(ref: str) -> dict[str, str] | None:
    """An image's labels in the buildah/podman store, or None when there is no such image."""
    done = subprocess.run(["buildah", "inspect", "--type", "image", ref], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        return None
    labels: dict[str, str] = json.loads(done.stdout)["OCIv1"]["config"].get("Labels") or {}
    return labels


@pytest.mark.parametrize("engine", ENGINES)
def test_reuse_and_a_changed_copied_file(infra: Infra, podman_url: str, engine: str, tmp_path: Path) -> None:
    name = unique(f"eng-{engine}")
    root = write(tmp_path, with_builders(three_images(infra.busybox, name), podman_url))
    first = dockwright("build", "--builder", engine, "--json", cwd=root)
    assert first.returncode == 0, first.stderr
    assert statuses(first) == {"base": "built", "child": "built", "other": "built"}
    data = json.loads(first.stdout)
    assert data["builder"] == engine
    for item in data["images"]:
        labels = store_labels(item["tag"])
        assert labels is not None and labels[KEY_LABEL] == item["build_key"]
        assert labels["io.dockwright.image"] == item["image"] and labels["io.dockwright.project"] == name
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", item["id"]), item["id"]

    again = dockwright("build", "--builder", engine, "--json", cwd=root)
    assert statuses(again) == {"base": "reused", "child": "reused", "other": "reused"}
    assert [i["id"] for i in json.loads(again.stdout)["images"]] == [i["id"] for i in data["images"]]

    (root / "app/hello.txt").write_text("changed\n")
    changed = dockwright("build", "--builder", engine, "--json", cwd=root)
    assert changed.returncode == 0, changed.stderr
    # base copies app/; child is built on base; other copies nothing
    assert statuses(changed) == {"base": "built", "child": "built", "other": "reused"}


@pytest.mark.parametrize("engine", ENGINES)
def test_failing_run_gives_the_failure_report(infra: Infra, podman_url: str, engine: str, tmp_path: Path) -> None:
    name = unique(f"fail-{engine}")
    yaml = f"""
version: 1
project: {name}
environments:
  bad:
    parent_image: {infra.busybox}
    run: ["echo preparing", "echo about to fail; exit 7", "echo never"]
  bad-child:
    extends: bad
    run: ["echo child"]
runner: {{environment: bad}}
server: {{environment: bad-child}}
""" + builders(podman_url)
    root = write(tmp_path, {"dockwright.yaml": yaml})
    result = dockwright("build", "--builder", engine, cwd=root)
    assert result.returncode == 3, result.stderr
    dockerfile = (root / "generated/images/bad/Dockerfile").read_text().splitlines()
    line = dockerfile.index("RUN echo about to fail; exit 7") + 1
    assert result.stderr.split("error: ", 1)[1] == (
        f"image 'bad' failed at generated/images/bad/Dockerfile:{line}\n"
        "  RUN echo about to fail; exit 7\n"
        "  the command returned a non-zero code: 7\n"
        "  last lines of the log:\n"
        "  | about to fail\n")
    assert "bad-child  skipped: its parent image bad failed" in result.stdout.splitlines()


@pytest.mark.parametrize("engine", ENGINES)
def test_checks_pass_and_fail(infra: Infra, podman_url: str, engine: str, tmp_path: Path) -> None:
    name = unique(f"check-{engine}")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  good:
    parent_image: {infra.busybox}
    run: ["echo good > /good"]
    checks: ["test -f /good", "ulimit -n"]
  checked:
    parent_image: {infra.busybox}
    checks: ["echo checking", "echo 'no such thing' >&2; exit 4"]
runner: {{environment: good}}
server: {{environment: checked}}
""" + builders(podman_url)})
    for _ in range(2):
        result = dockwright("build", "--builder", engine, "--json", cwd=root)
        assert result.returncode == 3
        assert statuses(result)["checked"] == "failed"
        *errors, _summary = result.stderr.split("error: ", 1)[1].splitlines()
        assert errors == ["image 'checked' failed",
                          "  check failed (exit 4): echo 'no such thing' >&2; exit 4",
                          "  last lines of the log:",
                          "  | no such thing"]
        tags = {i["image"]: i["tag"] for i in json.loads(result.stdout)["images"]}
        assert store_labels(tags["checked"]) is None  # a failed image is removed: never reused
        assert store_labels(tags["good"]) is not None
    assert statuses(result)["good"] == "reused"
    # no check container is left behind
    left = subprocess.run(["buildah", "containers", "--all", "--format", "{{.ImageName}}"], capture_output=True,
                          text=True, check=True).stdout
    assert name not in left
    podman_left = subprocess.run(["podman", "ps", "--all", "--format", "{{.Image}}"], capture_output=True,
                                 text=True, check=True).stdout
    assert name not in podman_left


@pytest.mark.parametrize("engine", ENGINES)
def test_push_to_the_registry_and_reuse_from_it(infra: Infra, podman_url: str, engine: str,
                                                tmp_path: Path) -> None:
    name = unique(f"push-{engine}")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
registry: {infra.registry}/dwtest
environments:
  shipped:
    parent_image: {infra.busybox}
    run: ["echo shipped > /shipped"]
runner: {{environment: shipped}}
""" + builders(podman_url)})
    first = dockwright("build", "--builder", engine, "--push", "--json", cwd=root)
    assert first.returncode == 0, first.stderr
    item = json.loads(first.stdout)["images"][0]
    push_tag = json.loads((root / "generated/manifest.json").read_text())["images"]["shipped"]["push_tag"]
    assert item["pushed"] == push_tag
    repository, _, tag = push_tag.partition("/")[2].rpartition(":")
    with urllib.request.urlopen(f"http://{infra.registry}/v2/{repository}/tags/list", timeout=10) as response:
        assert json.load(response) == {"name": repository, "tags": [tag]}

    # an empty store (here: the image removed from it) pulls the pushed image instead of building
    subprocess.run(["buildah", "rmi", "--force", item["tag"], push_tag], capture_output=True, check=True)
    assert store_labels(item["tag"]) is None
    second = dockwright("build", "--builder", engine, "--push", "--json", cwd=root)
    assert second.returncode == 0, second.stderr
    assert statuses(second) == {"shipped": "pulled"}
    labels = store_labels(item["tag"])
    assert labels is not None and labels[KEY_LABEL] == item["build_key"]


def test_buildah_pushes_and_dockerd_reuses_and_back(infra: Infra, podman_url: str,
                                                    docker_client: docker.DockerClient, tmp_path: Path) -> None:
    """Build keys hold across engines: the parent's key part is the same on every engine."""
    name = unique("across")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
registry: {infra.registry}/dwtest
environments:
  one:
    parent_image: {infra.busybox}
    run: ["echo one > /one"]
  two:
    extends: one
    run: ["echo two > /two"]
runner: {{environment: one}}
server: {{environment: two}}
""" + builders(podman_url) + "  local: {type: docker}\n"})
    built = dockwright("build", "--builder", "buildah", "--push", "--json", cwd=root)
    assert built.returncode == 0, built.stderr
    assert statuses(built) == {"one": "built", "two": "built"}
    on_docker = dockwright("build", "--builder", "local", "--push", "--json", cwd=root)
    assert on_docker.returncode == 0, on_docker.stderr
    assert statuses(on_docker) == {"one": "pulled", "two": "pulled"}
    keys = {i["image"]: i["build_key"] for i in json.loads(built.stdout)["images"]}
    assert {i["image"]: i["build_key"] for i in json.loads(on_docker.stdout)["images"]} == keys
    for image, tag in ((i["image"], i["tag"]) for i in json.loads(on_docker.stdout)["images"]):
        assert docker_client.images.get(tag).labels[KEY_LABEL] == keys[image]

    # and back: a change built and pushed by dockerd is pulled, not built, by buildah
    project = root / "dockwright.yaml"
    project.write_text(project.read_text().replace("echo two", "echo 2"))
    changed = dockwright("build", "--builder", "local", "--push", "--json", cwd=root)
    assert changed.returncode == 0, changed.stderr
    assert statuses(changed) == {"one": "reused", "two": "built"}
    back = dockwright("build", "--builder", "buildah", "--push", "--json", cwd=root)
    assert back.returncode == 0, back.stderr
    assert statuses(back) == {"one": "reused", "two": "pulled"}


def test_a_locked_parent_counts_by_its_registry_digest(infra: Infra, podman_url: str,
                                                       docker_client: docker.DockerClient, tmp_path: Path) -> None:
    """With dockwright.lock, a parent from a registry counts in build keys by its pinned digest, which buildah and
    dockerd both know the image by: buildah builds and pushes, dockerd pulls instead of building."""
    name = unique("locked")
    parent = f"{infra.registry}/{name}/base:1"
    docker_client.images.get(infra.busybox).tag(parent)
    for line in docker_client.images.push(parent, stream=True, decode=True):
        assert "error" not in line, line
    digest = docker_client.images.get_registry_data(parent).id
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
registry: {infra.registry}/dwtest
environments:
  one:
    parent_image: {parent}
    run: ["echo one > /one"]
runner: {{environment: one}}
""" + builders(podman_url) + "  local: {type: docker}\n"})
    unlocked = dockwright("build", "--builder", "local", "--json", cwd=root)
    assert unlocked.returncode == 0, unlocked.stderr
    locked = dockwright("lock", cwd=root)
    assert locked.returncode == 0, locked.stderr
    assert f'digest = "{digest}"' in (root / "dockwright.lock").read_text()

    built = dockwright("build", "--builder", "buildah", "--push", "--json", cwd=root)
    assert built.returncode == 0, built.stderr
    assert statuses(built) == {"one": "built"}
    key = json.loads(built.stdout)["images"][0]["build_key"]
    assert key != json.loads(unlocked.stdout)["images"][0]["build_key"]  # the digest, not the engine's ID
    pulled = dockwright("build", "--builder", "local", "--push", "--json", cwd=root)
    assert pulled.returncode == 0, pulled.stderr
    assert statuses(pulled) == {"one": "pulled"}
    assert json.loads(pulled.stdout)["images"][0]["build_key"] == key
