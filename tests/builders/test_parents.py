"""Parent images dockwright did not make, built on for real: one that runs as another user than root, one whose
Python is a virtual environment of its own. Python packages come from wheels made here and baked into the
parents (pip runs with --no-index), so nothing but apt needs the network."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import docker
import pytest

from infra import Infra
from test_build import dockwright, statuses, unique, write


def wheel(folder: Path, name: str, value: str) -> Path:
    """A pure-Python wheel of one module `name` that holds VALUE = value."""
    dist = f"{name}-1.0"
    files = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: dockwright-test\nRoot-Is-Purelib: true\n"
                                   "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    target = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return target


def parent(client: docker.DockerClient, tag: str, dockerfile: str, wheels: list[Path]) -> str:
    """Build a parent image the way a vendor would, with the wheels in /wheels."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for path in wheels:
            tar.add(path, arcname=f"wheels/{path.name}")
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True)
    return tag


def run(client: docker.DockerClient, tag: str, *command: str) -> str:
    return bytes(client.containers.run(tag, entrypoint=list(command), remove=True)).decode()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wheels")
    return {name: wheel(folder, name, f"{name} works") for name in ("dwchild", "dwparent")}


def test_non_root_parent(infra: Infra, docker_client: docker.DockerClient, wheels: dict[str, Path],
                         tmp_path: Path) -> None:
    """A parent whose last USER is not root (as ZenML's server image, and many vendor images): apt, certificates
    and requirements install as root, and the image ends as the environment's user, or the parent's own."""
    base = parent(docker_client, "dockwright-test/non-root:1", f"""FROM {infra.python}
RUN useradd --create-home someone
COPY wheels/ /wheels/
USER someone
""", [wheels["dwchild"]])
    name = unique("nonroot")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  as-someone:
    parent_image: {base}
    apt_packages: [libgomp1]
    certificates: [ca.pem]
    requirements: ["dwchild==1.0"]
    installer_args: [--no-index, --find-links, /wheels]
    user: someone
    checks: ["python -c 'import dwchild'", "test -f /usr/lib/x86_64-linux-gnu/libgomp.so.1"]
  on-custom:
    dockerfile: docker/custom.Dockerfile
    run: ["touch /made-as-root"]
  unset:
    parent_image: {base}
    run: ["touch /made-as-root"]
pipelines:
  p:
    environment: as-someone
    steps: {{a: {{environment: on-custom}}, b: {{environment: unset}}}}
""", "docker/custom.Dockerfile": f"FROM {base}\nUSER root\nRUN useradd svc\nUSER svc\n"})
    shutil.copy(infra.remote_tls_dir / "ca.pem", root / "ca.pem")
    result = dockwright("build", "--json", cwd=root)
    assert result.returncode == 3, result.stderr[-3000:]
    assert statuses(result) == {"as-someone": "built", "on-custom.parent": "built", "on-custom": "built",
                                "unset": "failed"}
    assert result.stderr.split("error: ", 1)[1].splitlines()[:3] == [
        "image 'unset' failed",
        f"  parent image {base} runs as user 'someone', but environment 'unset' sets no user: its Dockerfile "
        "switches to root for its installs and would end as root",
        "  hint: set user: someone to run as the parent's user, or user: root"]
    images = {item["image"]: item for item in json.loads(result.stdout)["images"]}
    assert images["unset"]["seconds"] < 5  # refused before building

    someone = images["as-someone"]["tag"]
    assert docker_client.images.get(someone).attrs["Config"]["User"] == "someone"
    assert run(docker_client, someone, "id", "-un") == "someone\n"
    assert run(docker_client, someone, "python", "-c", "import dwchild; print(dwchild.VALUE)") == "dwchild works\n"
    assert "BEGIN CERTIFICATE" in run(docker_client, someone, "cat", "/opt/dockwright/ca-certificates.crt")
    custom = images["on-custom"]["tag"]
    assert docker_client.images.get(custom).attrs["Config"]["User"] == "svc"  # compile read it in the Dockerfile
    assert run(docker_client, custom, "sh", "-c", "id -un; stat -c %U /made-as-root") == "svc\nroot\n"

    # user: root, as the hint says, builds and runs as root
    yaml = (root / "dockwright.yaml").read_text()
    (root / "dockwright.yaml").write_text(yaml.replace('    run: ["touch /made-as-root"]\npipelines',
                                                      '    run: ["touch /made-as-root"]\n    user: root\npipelines'))
    again = dockwright("build", "--json", cwd=root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert statuses(again)["unset"] == "built"
    tag = {item["image"]: item["tag"] for item in json.loads(again.stdout)["images"]}["unset"]
    assert run(docker_client, tag, "id", "-un") == "root\n"


def test_parent_python_in_a_venv_of_its_own(infra: Infra, docker_client: docker.DockerClient,
                                            wheels: dict[str, Path], tmp_path: Path) -> None:
    """The parent's python is /venv/bin/python (a venv first on PATH): its packages stay importable."""
    base = parent(docker_client, "dockwright-test/venv-parent:1", f"""FROM {infra.python}
COPY wheels/ /wheels/
RUN python3 -m venv /venv && /venv/bin/pip install --no-index --no-cache-dir /wheels/{wheels['dwparent'].name}
ENV PATH=/venv/bin:$PATH
""", [wheels["dwparent"], wheels["dwchild"]])
    name = unique("venvparent")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  child:
    parent_image: {base}
    requirements: ["dwchild==1.0"]
    installer_args: [--no-index, --find-links, /wheels]
    checks: ["python -c 'import dwparent, dwchild'"]
runner: {{environment: child}}
"""})
    result = dockwright("build", "--json", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    tag = json.loads(result.stdout)["images"][0]["tag"]
    code = "import dwparent, dwchild, sys; print(dwparent.VALUE, dwchild.VALUE, sys.prefix)"
    assert run(docker_client, tag, "python", "-c", code) == "dwparent works dwchild works /opt/venv\n"
