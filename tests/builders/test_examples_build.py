"""The examples' committed Dockerfiles on dockerd: the quickstart's builds by hand (plain `docker build`, pip from
PyPI through this machine's CA), and one changed requirement rebuilds that image and its children only. The
examples on the engines (both dockerds, podman, buildah) are test_engine_examples.py, which takes the helpers here.

No image can be pulled here, so the parent images the examples name are local tags of a Debian bookworm image
with Python made by debootstrap (docs/building.md, "Parent images", explains the mechanism). pip inside a container
reaches PyPI only when it trusts this machine's CA bundle: the examples' `certificates:` file gets it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import docker
import pytest

from helpers import EXAMPLES
from infra import Infra, tag_as
from test_build import dockwright, isolated, statuses

PARENTS = ("python:3.11-slim", "python:3.12-slim", "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04")
NETWORK = re.compile(r"Read timed out|Could not fetch URL|Connection (reset|aborted|refused)|Temporary failure in name"
                     r"|Failed to fetch|Hash Sum mismatch|IncompleteRead|ProtocolError|No matching distribution")
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;#]+)")


@pytest.fixture(scope="module")
def local_parents(infra: Infra, docker_client: docker.DockerClient) -> None:
    tag_as(docker_client, infra.python, *PARENTS)


STAND_IN_PYTHON = "3.11"  # the Python of the stand-in parents (Debian bookworm's)


def on_the_stand_in(root: Path, ca_bundle: Path) -> bool:
    """The committed lock pins wheels for each image's own Python (3.10 on Ubuntu 22.04's CUDA images, 3.12 on
    python:3.12-slim), which pip rightly refuses to install into the stand-in's 3.11: state 3.11 instead and
    lock again (PyPI, parents unpinned as in the committed lock). True when the example needed it."""
    changed = False
    for path in root.rglob("*.yaml"):
        text = path.read_text()
        new = re.sub(r'python: "3\.[0-9]+"', f'python: "{STAND_IN_PYTHON}"', text)
        if new != text:
            path.write_text(new)
            changed = True
    if changed:
        locked = dockwright("lock", "--skip-parents", cwd=root, env={"SSL_CERT_FILE": str(ca_bundle)}, timeout=600)
        assert locked.returncode == 0, locked.stderr[-3000:]
    return changed


def pins(requirements: str) -> dict[str, str]:
    found = {}
    for line in requirements.splitlines():
        m = PIN.match(line.strip())
        if m:
            found[m.group(1)] = m.group(2)
    return found


def test_committed_dockerfile_builds_by_hand(infra: Infra, docker_client: docker.DockerClient,
                                            local_parents: None, tmp_path: Path) -> None:
    """Every generated Dockerfile builds by hand: plain `docker build -f <output>/images/<name>/Dockerfile .` from the project root."""
    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLES / "quickstart", root)
    shutil.copy(infra.ca_bundle, root / "certs" / "proxy-ca.pem")
    manifest = json.loads((root / "generated/manifest.json").read_text())
    base = manifest["images"]["base"]
    cli = shutil.which("docker", path="/usr/bin") or "docker"
    tag = "dockwright-test/by-hand:quickstart"
    result = subprocess.run([cli, "build", "-f", base["dockerfile"], "-t", tag, "."], cwd=root,
                            env={**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_HOST": infra.local_url},
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = docker_client.containers.run(tag, entrypoint=["python", "-c", "import pandas, yaml; print('ok')"],
                                          remove=True)
    assert output == b"ok\n"
    user = docker_client.containers.run(tag, entrypoint=["id", "-un"], remove=True)
    assert user == b"app\n"


def test_one_requirement_rebuilds_that_image_and_its_children_only(infra: Infra, docker_client: docker.DockerClient,
                                                                   tmp_path: Path) -> None:
    name = f"req-{os.urandom(4).hex()}"
    yaml = f"""
version: 1
project: {name}
environments:
  base:
    parent_image: {infra.python}
    certificates: [ca.pem]
    requirements: ["six==SIX"]
    checks: ["python -c 'import six'"]
  child:
    extends: base
    env: {{ROLE: child}}
  grandchild:
    extends: child
    requirements: ["idna==3.10"]
  other:
    parent_image: {infra.python}
    run: ["echo other"]
runner: {{environment: grandchild}}
server: {{environment: other}}
"""
    root = tmp_path / name
    root.mkdir()
    shutil.copy(infra.ca_bundle, root / "ca.pem")
    yaml = isolated(yaml)
    (root / "dockwright.yaml").write_text(yaml.replace("SIX", "1.16.0"))
    first = dockwright("build", "--json", cwd=root)
    assert first.returncode == 0, first.stderr[-3000:]
    assert statuses(first) == dict.fromkeys(["base", "child", "grandchild", "other"], "built")
    (root / "dockwright.yaml").write_text(yaml.replace("SIX", "1.17.0"))
    second = dockwright("build", "--json", cwd=root)
    assert second.returncode == 0, second.stderr[-3000:]
    assert statuses(second) == {"base": "built", "child": "built", "grandchild": "built", "other": "reused"}
    tag = json.loads(second.stdout)["images"][2]["tag"]
    code = "import six, idna; print(six.__version__)"
    versions = docker_client.containers.run(tag, entrypoint=["python", "-c", code], remove=True)
    assert versions == b"1.17.0\n"
