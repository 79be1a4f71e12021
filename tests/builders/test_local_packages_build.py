"""`local_packages` on a real engine: the project's own package is built and installed after the requirements,
and a change to its code rebuilds only the package's layers, reusing the requirements' from the layer cache."""

from __future__ import annotations

import json
from pathlib import Path

import docker

from infra import Infra
from test_build import dockwright, statuses, unique, write

# A PEP 517 backend in a few lines, kept in the package: the build needs nothing from an index (builds here
# cannot reach PyPI), yet pip builds the package exactly as it builds any other (isolated, from pyproject.toml).
BACKEND = '''\
import base64
import hashlib
import os
import zipfile

NAME, VERSION = "featurelib", "1.0"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist = f"{NAME}-{VERSION}.dist-info"
    wheel = f"{NAME}-{VERSION}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
        def add(path, data):
            archive.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{path},sha256={digest},{len(data)}")

        for name in sorted(os.listdir(NAME)):
            if name.endswith(".py"):
                with open(os.path.join(NAME, name), "rb") as source:
                    add(f"{NAME}/{name}", source.read())
        add(f"{dist}/METADATA", f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
                                "Requires-Dist: setuptools\\n".encode())
        add(f"{dist}/WHEEL", b"Wheel-Version: 1.0\\nGenerator: backend.py\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
        archive.writestr(f"{dist}/RECORD", "\\n".join([*records, f"{dist}/RECORD,,"]) + "\\n")
    return wheel
'''

PYPROJECT = """\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "featurelib"
version = "1.0"
dependencies = ["setuptools"]
"""

REQUIREMENTS_STEP = "-r /opt/dockwright/requirements.txt"
PACKAGE_STEP = "rm -rf /opt/dockwright/local"
SHOW = ("import featurelib, os; print(featurelib.VERSION, featurelib.__file__, "
        "os.path.exists('/opt/dockwright/local'))")


def layers(client: docker.DockerClient, tag: str) -> dict[str, str]:
    """The layer (image) ID of the requirements' and the package's install steps."""
    found = {}
    for entry in client.images.get(tag).history():
        for name, marker in (("requirements", REQUIREMENTS_STEP), ("package", PACKAGE_STEP)):
            if marker in entry["CreatedBy"]:
                assert name not in found, entry["CreatedBy"]
                found[name] = entry["Id"]
    assert set(found) == {"requirements", "package"}, found
    return found


def run_python(client: docker.DockerClient, tag: str) -> str:
    out: bytes = client.containers.run(tag, ["python", "-c", SHOW], remove=True)
    return out.decode().strip()


def test_local_package_is_installed_and_a_code_change_reuses_the_requirements_layer(
        infra: Infra, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    name = unique("localpkg")
    root = write(tmp_path, {
        "dockwright.yaml": f"""
version: 1
project: {name}
environments:
  app:
    parent_image: {infra.python}
    # Nothing is fetched: `pip` and the package's dependency (setuptools) are in the venv already. An index
    # that cannot answer proves it, and that the package's install gets the same index flags.
    index_url: http://127.0.0.1:9/simple
    requirements: [pip]
    local_packages: [libs/featurelib]
    user: app
    workdir: /app
    copy: [src/]
    checks: ["python -c 'import featurelib'"]
runner: {{environment: app}}
""",
        "libs/featurelib/pyproject.toml": PYPROJECT,
        "libs/featurelib/backend.py": BACKEND,
        "libs/featurelib/featurelib/__init__.py": 'VERSION = "one"\n',
        "src/main.py": "import featurelib\n",
        ".dockerignore": "libs/featurelib/*.tmp\n",
    })
    first = dockwright("build", "--json", cwd=root)
    assert first.returncode == 0, first.stderr
    assert statuses(first) == {"app": "built"}
    manifest = json.loads((root / "generated/manifest.json").read_text())
    image = manifest["images"]["app"]
    assert image["inputs"] == ["generated/images/app/Dockerfile", "generated/images/app/requirements.txt",
                               "libs/featurelib/", "src/"]
    tag = image["tag"]
    # Installed into the venv, not editable: the staged copy is gone and the import does not need it.
    assert run_python(docker_client, tag) == "one /opt/venv/lib/python3.11/site-packages/featurelib/__init__.py False"
    before = layers(docker_client, tag)
    committed = {p: p.read_bytes() for p in (root / "generated").rglob("*") if p.is_file()}

    # A file .dockerignore leaves out changes nothing.
    (root / "libs/featurelib/notes.tmp").write_text("scratch\n")
    assert statuses(dockwright("build", "--json", cwd=root)) == {"app": "reused"}

    # A change to the package's code: the same committed output and tag, a new build key, and only the
    # package's steps run again (the requirements layer comes from the engine's layer cache).
    (root / "libs/featurelib/featurelib/__init__.py").write_text(f'VERSION = "two-{name}"\n')
    second = dockwright("build", "--json", cwd=root)
    assert second.returncode == 0, second.stderr
    assert statuses(second) == {"app": "built"}
    assert {p: p.read_bytes() for p in (root / "generated").rglob("*") if p.is_file()} == committed
    assert json.loads(second.stdout)["images"][0]["build_key"] != json.loads(first.stdout)["images"][0]["build_key"]
    after = layers(docker_client, tag)
    assert after["requirements"] == before["requirements"]
    assert after["package"] != before["package"]
    assert run_python(docker_client, tag) == (f"two-{name} /opt/venv/lib/python3.11/site-packages/featurelib/"
                                              "__init__.py False")


def test_local_package_alone_with_uv(infra: Infra, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    """No requirements: the venv is made for the package, and uv (installed from PyPI, which builds reach only
    by trusting this machine's CA bundle) installs it."""
    name = unique("localpkg-uv")
    root = write(tmp_path, {
        "dockwright.yaml": f"""
version: 1
project: {name}
environments:
  app:
    parent_image: {infra.python}
    installer: uv
    certificates: [certs/ca.pem]
    local_packages: [.]
runner: {{environment: app}}
""",
        "pyproject.toml": PYPROJECT,
        "backend.py": BACKEND,
        "featurelib/__init__.py": f'VERSION = "{name}"\n',
    })
    (root / "certs").mkdir()
    (root / "certs/ca.pem").write_bytes(infra.ca_bundle.read_bytes())
    result = dockwright("build", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    assert statuses(result) == {"app": "built"}
    tag = json.loads((root / "generated/manifest.json").read_text())["images"]["app"]["tag"]
    assert run_python(docker_client, tag) == f"{name} /opt/venv/lib/python3.11/site-packages/featurelib/__init__.py False"
    out: bytes = docker_client.containers.run(tag, ["python", "-m", "pip", "list", "--format=freeze"], remove=True)
    installed = dict(line.split("==", 1) for line in out.decode().split())
    assert installed["featurelib"] == "1.0" and "uv" not in installed  # uv has its own venv
