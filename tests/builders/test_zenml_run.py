"""End to end with real ZenML: a two-step pipeline (one step in its own image) runs on ZenML's local Docker
orchestrator inside the images `dockwright build` made, through the run configuration `dockwright export zenml`
wrote (skip_build: ZenML builds nothing), and each step reports the image it ran in.

No image can be pulled here: the images are built on the locally made Debian bookworm image (Python 3.11, as the
client must run). zenml[local] at exactly the client's version is installed from a local package index: the wheels
pip downloads once (cached beside the base images), served on 127.0.0.1 and reached through the builder's
`network: host`. The client's ZENML_CONFIG_PATH is private to the test; step containers are removed (run_args).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import zenml

from infra import CACHE_DIR, Infra
from test_build import dockwright, statuses, unique

RUN = '''
import os
import sys

from zenml import pipeline, step
from zenml.client import Client
from zenml.enums import StackComponentType
from zenml.orchestrators.local_docker.local_docker_orchestrator import LocalDockerOrchestratorSettings


@step
def first() -> str:
    return os.environ["DWTEST_IMAGE"]


@step
def second(before: str) -> str:
    return before + "," + os.environ["DWTEST_IMAGE"]


@pipeline(enable_cache=False)
def demo() -> None:
    second(first())


if __name__ == "__main__":
    client = Client()
    client.create_stack_component(name="dwtest-docker", flavor="local_docker",
                                  component_type=StackComponentType.ORCHESTRATOR, configuration={})
    client.create_stack(name="dwtest", components={StackComponentType.ORCHESTRATOR: "dwtest-docker",
                                                   StackComponentType.ARTIFACT_STORE: "default"})
    client.activate_stack("dwtest")
    remove = LocalDockerOrchestratorSettings(run_args={"remove": True})
    run = demo.with_options(config_path=sys.argv[1], settings={"orchestrator.local_docker": remove})()
    run = client.get_pipeline_run(run.id)
    print("RESULT", run.status, run.steps["second"].output.load())
'''


def _wheels() -> Path:
    """zenml[local] at the client's version and every package it needs, as wheels (downloaded once)."""
    folder = CACHE_DIR / f"zenml-{zenml.__version__}-py{sys.version_info[0]}{sys.version_info[1]}-wheels"
    if folder.is_dir():
        return folder
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".zenml-wheels-", dir=CACHE_DIR))
    done = subprocess.run([sys.executable, "-m", "pip", "download", f"zenml[local]=={zenml.__version__}",
                           "--only-binary=:all:", "-d", str(temp)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        shutil.rmtree(temp, ignore_errors=True)
        pytest.fail(f"cannot download zenml[local]=={zenml.__version__}: {done.stderr[-2000:]}")
    temp.rename(folder)
    return folder


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def wheel_index() -> Iterator[str]:
    """The wheels, as a find-links page on 127.0.0.1."""
    handler = functools.partial(_Quiet, directory=str(_wheels()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _project(name: str, python_image: str, index: str) -> str:
    return f"""version: 1
project: {name}
zenml: {{version: "{zenml.__version__}"}}
builders:
  local: {{type: docker, network: host}}
environments:
  base:
    parent_image: {python_image}
    python: "3.11"
    requirements: ["zenml[local]=={zenml.__version__}"]
    installer_args: [--no-index, --find-links, "{index}"]
    env: {{DWTEST_IMAGE: base}}
    labels: {{dockwright-test: {name}}}
    workdir: /app
  trainer:
    extends: base
    env: {{DWTEST_IMAGE: trainer}}
runner: {{environment: base}}
pipelines:
  demo:
    environment: base
    steps:
      first: {{}}
      second: {{after: [first], environment: trainer}}
"""


def test_a_zenml_pipeline_runs_in_dockwrights_images(infra: Infra, docker_client: docker.DockerClient,
                                                      wheel_index: str, tmp_path: Path) -> None:
    assert sys.version_info[:2] == (3, 11), "the client must run the images' Python (Debian bookworm's 3.11)"
    name = unique("dwzenml")
    root = tmp_path / "p"
    root.mkdir()
    (root / "dockwright.yaml").write_text(_project(name, infra.python, wheel_index), encoding="utf-8")
    (root / "run.py").write_text(RUN, encoding="utf-8")
    built = dockwright("build", "--json", cwd=root)
    assert built.returncode == 0, built.stderr[-4000:]
    assert statuses(built) == {"base": "built", "trainer": "built"}
    assert "warning:" not in built.stderr  # the zenml: section finds nothing wrong
    exported = dockwright("export", "zenml", "--local", cwd=root)
    assert exported.returncode == 0, exported.stderr
    tags = {item["image"]: item["tag"] for item in json.loads(built.stdout)["images"]}
    config = (root / "generated/zenml/demo.yaml").read_text(encoding="utf-8")
    assert f'parent_image: "{tags["base"]}"' in config and f'parent_image: "{tags["trainer"]}"' in config
    env = {**os.environ, "ZENML_CONFIG_PATH": str(tmp_path / "zenml-config"), "ZENML_ANALYTICS_OPT_IN": "false",
           "ZENML_ENABLE_RICH_TRACEBACK": "false", "DOCKER_HOST": "unix:///var/run/docker.sock"}
    ran = subprocess.run([sys.executable, "run.py", "generated/zenml/demo.yaml"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-6000:]
    assert "RESULT completed base,trainer" in ran.stdout, (ran.stdout + ran.stderr)[-6000:]
    assert "Building Docker image" not in ran.stdout + ran.stderr  # skip_build: ZenML built nothing
    for tag in tags.values():  # run_args removed the step containers
        assert docker_client.containers.list(all=True, filters={"ancestor": tag}) == [], tag
    for tag in tags.values():
        docker_client.images.remove(tag, force=True)
