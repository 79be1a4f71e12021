"""Real builds from a lock, with packages from a local index on 127.0.0.1 (reached by the build containers through
the builder's `network: host`): a changed small pin rebuilds only the layer after the heavy packages' layer, and a
tampered wheel fails at the install line with pip's hash error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import docker

from infra import Infra
from lock.servers import Dist, Index
from test_build import dockwright, statuses, unique


def _yaml(project: str, python_image: str, index: Index, small: str) -> str:
    return (f"version: 1\nproject: {project}\n"
            "builders:\n  local: {type: docker, network: host}\n"
            "environments:\n  app:\n"
            f"    parent_image: {python_image}\n    python: \"3.11\"\n    labels: {{dockwright-test: {project}}}\n"
            f"    index_url: {index.url}\n    heavy_packages: [big]\n"
            f"    requirements: [big, 'small=={small}']\n"
            "    checks: [\"python -c 'import big, small; print(small.VERSION)'\"]\n"
            "runner: {environment: app}\n")


def _history(client: docker.DockerClient, tag: str) -> dict[str, str]:
    """The image ID each Dockerfile step left, by a word of its command: 'heavy' and 'small' installs."""
    out = {}
    for step in client.api.history(tag):
        made = step.get("CreatedBy") or ""
        if "requirements-heavy.txt" in made and "pip install" in made:
            out["heavy"] = step["Id"]
        elif "/opt/dockwright/requirements.txt" in made and "pip install" in made:
            out["small"] = step["Id"]
    return out


def test_a_small_pin_reuses_the_heavy_layer_and_a_tampered_wheel_fails(infra: Infra,
                                                                        docker_client: docker.DockerClient,
                                                                        tmp_path: Path) -> None:
    index = Index()
    try:
        index.add(Dist("big", "1.0", padding=3_000_000), Dist("small", "1.0"), Dist("small", "2.0"))
        project = unique("dwlockbuild")
        root = tmp_path / "p"
        root.mkdir()
        env = {"UV_CACHE_DIR": str(tmp_path / "uv")}
        (root / "dockwright.yaml").write_text(_yaml(project, infra.python, index, "1.0"))
        locked = dockwright("lock", "--skip-parents", cwd=root, env=env)  # a local parent image: no registry
        assert locked.returncode == 0, locked.stderr
        first = dockwright("build", "--json", cwd=root)
        assert first.returncode == 0, first.stderr[-4000:]
        assert statuses(first) == {"app": "built"}
        tag = json.loads(first.stdout)["images"][0]["tag"]
        before = _history(docker_client, tag)
        assert set(before) == {"heavy", "small"}, before

        (root / "dockwright.yaml").write_text(_yaml(project, infra.python, index, "2.0"))
        assert dockwright("lock", "--skip-parents", cwd=root, env=env).returncode == 0
        second = dockwright("build", "--json", cwd=root)
        assert second.returncode == 0, second.stderr[-4000:]
        after = _history(docker_client, json.loads(second.stdout)["images"][0]["tag"])
        assert after["heavy"] == before["heavy"]  # the big layer is reused
        assert after["small"] != before["small"]

        # Another file under the locked name: pip refuses it at the install line.
        good = index.files["small-2.0-py3-none-any.whl"]
        bad = good.replace(b"VERSION = '2.0'", b"VERSION = 'xx'")
        assert bad != good
        index.tamper("small-2.0-py3-none-any.whl", bad)
        third = dockwright("build", "--no-reuse", cwd=root)
        assert third.returncode == 3
        assert "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE" in third.stderr, third.stderr[-3000:]
        assert f"Expected sha256 {hashlib.sha256(good).hexdigest()}" in third.stderr
        assert f"Got        {hashlib.sha256(bad).hexdigest()}" in third.stderr
        assert "RUN python -m pip install" in third.stderr and "-r /opt/dockwright/requirements.txt" in third.stderr
    finally:
        index.close()


def test_a_local_packages_dependencies_install_from_the_lock(infra: Infra, docker_client: docker.DockerClient,
                                                              tmp_path: Path) -> None:
    """The lock resolves a local package's dependencies (it installs --no-deps itself): the image has them, by
    the hashes the lock pinned, and imports both."""
    from test_local_packages_build import BACKEND, PYPROJECT

    index = Index()
    try:
        index.add(Dist("small", "1.0"), Dist("small", "2.0"))
        project = unique("dwlocklocal")
        root = tmp_path / "p"
        (root / "libs/featurelib/featurelib").mkdir(parents=True)
        (root / "libs/featurelib/backend.py").write_text(BACKEND.replace("Requires-Dist: setuptools",
                                                                         "Requires-Dist: small<2"))
        (root / "libs/featurelib/pyproject.toml").write_text(PYPROJECT.replace('["setuptools"]', '["small<2"]'))
        (root / "libs/featurelib/featurelib/__init__.py").write_text("VERSION = 'feature'\n")
        (root / "dockwright.yaml").write_text(
            f"version: 1\nproject: {project}\nbuilders:\n  local: {{type: docker, network: host}}\n"
            f"environments:\n  app:\n    parent_image: {infra.python}\n    python: \"3.11\"\n"
            f"    labels: {{dockwright-test: {project}}}\n    index_url: {index.url}\n"
            "    local_packages: [libs/featurelib]\n"
            "    checks: [\"python -c 'import featurelib, small; print(featurelib.VERSION, small.VERSION)'\"]\n"
            "runner: {environment: app}\n")
        locked = dockwright("lock", "--skip-parents", cwd=root, env={"UV_CACHE_DIR": str(tmp_path / "uv")})
        assert locked.returncode == 0, locked.stderr
        built = dockwright("build", "--json", cwd=root)
        assert built.returncode == 0, built.stderr[-4000:]
        wheel = hashlib.sha256(index.files["small-1.0-py3-none-any.whl"]).hexdigest()
        assert (root / "generated/images/app/requirements.txt").read_text().splitlines()[-1] == (
            f"small==1.0 --hash=sha256:{wheel}")
        assert statuses(built) == {"app": "built"}
        tag = json.loads(built.stdout)["images"][0]["tag"]
        out = docker_client.containers.run(tag, ["python", "-c", "import featurelib, small; print(small.VERSION)"],
                                           remove=True)
        assert out.decode().strip() == "1.0"
    finally:
        index.close()
