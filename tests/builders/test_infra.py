"""The builder test infrastructure itself, for real and quickly: both engines answer and are two
engines, the remote one builds over mutual TLS and refuses anyone else, the registry takes a push,
and the base images are what the builder tests expect."""

from __future__ import annotations

import http.client
import io
import json
import ssl
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest
from infra import REMOTE_PORT, Infra, tag_as

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def unique(name: str) -> str:
    """An image name no other test (or earlier run) uses."""
    return f"dockwright-test/{name}:{uuid.uuid4().hex[:12]}"


def build_log(logs: object) -> str:
    return "".join(str(chunk.get("stream", "")) for chunk in logs)  # type: ignore[attr-defined]


def test_two_engines_answer_with_their_own_ids(infra: Infra, docker_client: docker.DockerClient,
                                               remote_docker_client: docker.DockerClient) -> None:
    assert docker_client.ping() and remote_docker_client.ping()
    local, remote = docker_client.info(), remote_docker_client.info()
    assert local["ID"] != remote["ID"]
    assert local["DockerRootDir"] != remote["DockerRootDir"]
    assert infra.remote_url == f"tcp://127.0.0.1:{REMOTE_PORT}"
    assert sorted(p.name for p in infra.remote_tls_dir.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]


def test_remote_engine_refuses_clients_without_a_certificate(infra: Infra) -> None:
    plain = http.client.HTTPConnection("127.0.0.1", REMOTE_PORT, timeout=5)
    plain.request("GET", "/_ping")
    assert plain.getresponse().status == 400  # "Client sent an HTTP request to an HTTPS server."

    # Trusts the server, but shows no client certificate: --tlsverify must refuse it.
    context = ssl.create_default_context(cafile=str(infra.remote_tls_dir / "ca.pem"))
    anonymous = http.client.HTTPSConnection("127.0.0.1", REMOTE_PORT, timeout=5, context=context)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        anonymous.request("GET", "/_ping")
        anonymous.getresponse()


def test_remote_engine_builds_a_dockerfile_over_tls(infra: Infra, remote_docker_client: docker.DockerClient) -> None:
    tag = unique("infra-remote")
    dockerfile = f"FROM {infra.busybox}\nRUN echo hi from $(id -un) > /hi && cat /hi\n"
    image, logs = remote_docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag,
                                                     rm=True, forcerm=True)
    try:
        assert "hi from root" in build_log(logs)
        output = remote_docker_client.containers.run(tag, ["cat", "/hi"], remove=True, network_mode="none")
        assert output == b"hi from root\n"
    finally:
        remote_docker_client.images.remove(image.id, force=True)


def test_registry_answers_and_takes_a_push(infra: Infra, docker_client: docker.DockerClient) -> None:
    with urllib.request.urlopen(f"http://{infra.registry}/v2/", timeout=5) as answer:
        assert answer.status == 200
    repository, tag = unique("infra-push").split(":")
    target = f"{infra.registry}/{repository}"
    docker_client.images.get(infra.busybox).tag(target, tag)
    try:
        lines = [json.loads(line) for line in docker_client.images.push(target, tag=tag).splitlines() if line.strip()]
        assert not [line for line in lines if "error" in line], lines
        manifest = f"http://{infra.registry}/v2/{repository}/manifests/{tag}"
        head = urllib.request.Request(manifest, method="HEAD", headers={"Accept": MANIFEST_V2})
        with urllib.request.urlopen(head, timeout=5) as answer:
            digest = answer.headers["Docker-Content-Digest"]
        assert digest == docker_client.images.get_registry_data(f"{target}:{tag}").id
        # Delete it again, so runs do not pile tags up in the registry.
        delete = urllib.request.Request(f"http://{infra.registry}/v2/{repository}/manifests/{digest}", method="DELETE")
        with urllib.request.urlopen(delete, timeout=5) as answer:
            assert answer.status == 202
    finally:
        docker_client.images.remove(f"{target}:{tag}")


def test_busybox_image_has_a_shell_and_root(infra: Infra, docker_client: docker.DockerClient) -> None:
    script = "id -u; id -gn; test -d /tmp && echo tmp; ls -d /usr/bin/env; echo $PATH"
    out = docker_client.containers.run(infra.busybox, ["sh", "-c", script], remove=True, network_mode="none")
    assert out.decode().split() == ["0", "root", "tmp", "/usr/bin/env",
                                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_bookworm_py_image_has_python_venv_and_apt_sources(infra: Infra, docker_client: docker.DockerClient) -> None:
    script = ("python3 -c 'import ensurepip, sys, venv; print(sys.version_info[:2] >= (3, 11))' "
              "&& cat /etc/apt/sources.list && command -v useradd && command -v apt-get")
    out = docker_client.containers.run(infra.python, ["sh", "-c", script], remove=True, network_mode="none").decode()
    assert out.splitlines()[0] == "True"
    assert "deb http://deb.debian.org/debian bookworm main" in out
    assert "deb http://deb.debian.org/debian-security bookworm-security main" in out
    assert "/usr/sbin/useradd" in out and "/usr/bin/apt-get" in out


def test_tag_as_points_names_at_an_image_and_is_idempotent(infra: Infra, docker_client: docker.DockerClient) -> None:
    names = [unique("python").replace(":", ":3.11-slim-"), unique("cuda")]
    try:
        tag_as(docker_client, infra.python, *names)
        tag_as(docker_client, infra.python, *names)
        wanted = docker_client.images.get(infra.python).id
        assert [docker_client.images.get(name).id for name in names] == [wanted, wanted]
    finally:
        for name in names:
            docker_client.images.remove(name)


def test_ca_bundle_exists(infra: Infra) -> None:
    assert infra.ca_bundle.is_file()
    assert b"BEGIN CERTIFICATE" in infra.ca_bundle.read_bytes()


def test_status_command_reports_everything_up(infra: Infra) -> None:
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("infra.py")), "status"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DOWN" not in done.stdout
