"""Fixtures for the builder tests: real Docker engines, a registry and base images (see infra.py).

Everything is set up once per session by infra.up(), which installs and starts whatever is
missing and reuses whatever already runs. If it cannot, every test that asks for it fails with the
reason: these tests are never skipped.
"""

from __future__ import annotations

import functools
import importlib.util
import types
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

# pytest puts this folder on sys.path (rootdir-style, no __init__.py), as it does tests/ for conftest.
from infra import Infra, InfraError, up

HERE = Path(__file__).resolve().parent


# tests/*.py import helpers with `from conftest import EXAMPLES, run_cli`, meaning tests/conftest.py.
# Both conftest files sit outside any package, so both are the module "conftest", and pytest makes
# whichever it loaded last sys.modules["conftest"]: often this one. So names this module lacks are
# looked up in tests/conftest.py (a private copy; pytest never sees this fallback, as it lists
# plugin attributes with dir()). pytest_* and private names are never forwarded.
@functools.cache
def _tests_conftest() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("_dockwright_tests_conftest", HERE.parent / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def __getattr__(name: str) -> object:
    if name.startswith(("_", "pytest")):
        raise AttributeError(name)
    return getattr(_tests_conftest(), name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest hook sees the whole session's items, not only this folder's: mark ours only.
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.builder)


@pytest.fixture(scope="session")
def infra() -> Infra:
    """Both engines, the registry and the base images, up; what and where they are."""
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
