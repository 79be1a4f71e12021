"""Fixtures for the builder tests: real Docker engines, a registry and base images (see infra.py).

Everything is set up once per session by infra.up(), which installs and starts whatever is
missing and reuses whatever already runs. If it cannot, every test that asks for it fails with the
reason: these tests are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

# pytest puts this folder on sys.path (rootdir-style, no __init__.py), as it does tests/ for conftest.
from infra import Infra, InfraError, up, up_containers

HERE = Path(__file__).resolve().parent


GROUP = "engines"  # under pytest-xdist's --dist loadgroup, every builder test runs in one worker, one at a time


def pytest_itemcollected(item: pytest.Item) -> None:
    # As each item is collected: xdist reads the group marks in its own pytest_collection_modifyitems, which
    # runs before a conftest's. A conftest hook sees the whole session's items, not only this folder's.
    if HERE in Path(item.path).resolve().parents:
        item.add_marker(pytest.mark.builder)
        item.add_marker(pytest.mark.xdist_group(GROUP))


@pytest.fixture(autouse=True)
def _one_worker(request: pytest.FixtureRequest) -> None:
    """Under xdist, each builder test is in the group: else two workers would share the engines. (With pytest 9.2,
    xdist 3.8 dropped the groups without a word: pyproject.toml keeps pytest below it.)"""
    if os.environ.get("PYTEST_XDIST_WORKER") and request.config.getoption("loadgroup", False) \
            and not request.node.nodeid.endswith(f"@{GROUP}"):
        pytest.fail(f"pytest-xdist did not put {request.node.nodeid} in the group '{GROUP}' (pytest "
                    f"{pytest.__version__}): the builder tests would run side by side; install the test extra's "
                    "pytest, or run them without -n", pytrace=False)


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Infra:
    """Both engines, the registry and the base images, up; what and where they are."""
    # In a worker, xdist keeps --dist loadgroup as the option `loadgroup` (it sets `dist` to "no" there).
    if os.environ.get("PYTEST_XDIST_WORKER") and not request.config.getoption("loadgroup", False):
        # Spread over workers, builder tests would run side by side on the same engines, registry and tags.
        pytest.fail("the builder tests run under pytest-xdist only with --dist loadgroup (all of them in one "
                    "worker, one at a time): add it, or run them without -n", pytrace=False)
    try:
        return up()
    except InfraError as exc:
        # pytrace=False: the message (with the daemon's log tail) is the useful part, not our stack.
        pytest.fail(f"builder test infrastructure could not be set up: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def docker_client(infra: Infra) -> Iterator[docker.DockerClient]:
    """The local engine (unix:///var/run/docker.sock)."""
    client = infra.local_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def remote_docker_client(infra: Infra) -> Iterator[docker.DockerClient]:
    """The remote engine (tcp://127.0.0.1:23760, mutual TLS)."""
    client = infra.remote_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def podman_url(infra: Infra) -> str:
    """buildah and podman on this machine, one store, the base images in it; podman's API socket's url."""
    try:
        return up_containers()
    except InfraError as exc:
        pytest.fail(f"buildah/podman test infrastructure could not be set up: {exc}", pytrace=False)
