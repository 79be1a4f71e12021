"""Parent image digests through the Registry HTTP API v2: a real HTTP registry in the test speaking Docker
Hub's token flow, private repositories with the Docker CLI's credentials, mirrors, and every failure."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import given, strategies as st

from compiler import registry as reg
from lock.servers import Registry, docker_config

BOTH = ("linux/amd64", "linux/arm64")


@pytest.fixture(scope="module")
def server() -> Iterator[Registry]:
    r = Registry()
    try:
        yield r
    finally:
        r.close()


def test_an_index_gives_its_digest_and_one_per_platform_through_the_token_flow(server: Registry) -> None:
    top = server.push("team/app", "1.0", BOTH)
    server.requests.clear()
    got = reg.digests(f"{server.host}/team/app:1.0", BOTH)
    body = server.manifests[("team/app", "1.0")][0]
    entries = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
               for m in json.loads(body)["manifests"]}
    assert got == reg.Digests(digest=top, platforms=tuple(sorted(entries.items())))
    assert top == "sha256:" + hashlib.sha256(body).hexdigest()
    assert server.requests == ["/v2/team/app/manifests/1.0",  # anonymous: 401 with a Bearer challenge
                               "/token?service=test-registry&scope=repository%3Ateam%2Fapp%3Apull",
                               "/v2/team/app/manifests/1.0"]


def test_a_single_manifest_is_its_own_platform_digest(server: Registry) -> None:
    server.push("team/single", "1", ("linux/arm64",))
    index = json.loads(server.manifests[("team/single", "1")][0])
    only = index["manifests"][0]["digest"]
    server.manifests[("team/single", "plain")] = server.manifests[("team/single", only)]
    got = reg.digests(f"{server.host}/team/single:plain", ("linux/arm64",))
    assert got == reg.Digests(digest=only, platforms=(("linux/arm64", only),))
    with pytest.raises(reg.RegistryError) as err:
        reg.digests(f"{server.host}/team/single:plain", BOTH)
    assert str(err.value) == f"image {server.host}/team/single:plain has no manifest for linux/amd64"


def test_a_missing_platform_names_those_it_has(server: Registry) -> None:
    server.push("team/amd", "1", ("linux/amd64",))
    with pytest.raises(reg.RegistryError) as err:
        reg.digests(f"{server.host}/team/amd:1", BOTH)
    assert str(err.value) == f"image {server.host}/team/amd:1 has no manifest for linux/arm64 (it has linux/amd64)"


@pytest.mark.parametrize("odd", ["linux/arm64", ["linux", "arm64"], 7, None])
def test_an_index_entry_with_an_odd_platform_is_skipped(server: Registry, odd: object) -> None:
    """An index entry whose `platform` is not an object names no platform: it is passed over, never a
    traceback (it was read for its variant before being checked), and the first entry per platform wins."""
    server.push("team/odd", "1", BOTH)
    index = json.loads(server.manifests[("team/odd", "1")][0])
    real = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]}
    index["manifests"].insert(0, {"mediaType": reg.OCI_MANIFEST, "digest": "sha256:" + "0" * 64, "platform": odd})
    index["manifests"].append({"mediaType": reg.OCI_MANIFEST, "digest": "sha256:" + "1" * 64,
                               "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}})
    body = json.dumps(index).encode()
    server.manifests[("team/odd", "2")] = (body, reg.OCI_INDEX)
    got = reg.digests(f"{server.host}/team/odd:2", BOTH)
    assert got == reg.Digests(digest="sha256:" + hashlib.sha256(body).hexdigest(),
                              platforms=tuple(sorted(real.items())))


def test_a_reference_by_digest_is_checked_against_the_content(server: Registry) -> None:
    top = server.push("team/pinned", "1", BOTH)
    assert reg.digests(f"{server.host}/team/pinned@{top}", BOTH).digest == top
    server.manifests[("team/pinned", top)] = (b'{"schemaVersion": 2, "manifests": []}', reg.OCI_INDEX)
    with pytest.raises(reg.RegistryError) as err:
        reg.digests(f"{server.host}/team/pinned@{top}", BOTH)
    assert str(err.value) == (f"registry {server.host} sent content that does not match the digest of "
                              f"{server.host}/team/pinned@{top}")


def test_a_private_repository_uses_the_docker_config(server: Registry, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    top = server.push("corp/secret", "2", BOTH)
    server.private["corp/secret"] = ("robot", "s3cret")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nobody"))
    with pytest.raises(reg.RegistryError) as err:
        reg.digests(f"{server.host}/corp/secret:2", BOTH)
    assert str(err.value) == (f"registry {server.host} refused a token for corp/secret (HTTP 401; run "
                              f"`docker login {server.host}` if it is private)")
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path / "wrong", server.host, "robot", "nope")))
    with pytest.raises(reg.RegistryError):
        reg.digests(f"{server.host}/corp/secret:2", BOTH)
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path / "right", server.host, "robot", "s3cret")))
    assert reg.digests(f"{server.host}/corp/secret:2", BOTH).digest == top


def test_docker_hub_names_go_to_a_mirror(server: Registry) -> None:
    top = server.push("library/python", "3.12-slim", BOTH)
    mirrors = reg.mirrors_from_env({reg.MIRRORS_ENV: f"docker.io={server.host}, ghcr.io=ghcr.example"})
    assert mirrors == {"docker.io": server.host, "ghcr.io": "ghcr.example"}
    for ref in ("python:3.12-slim", "docker.io/library/python:3.12-slim", "index.docker.io/library/python:3.12-slim"):
        assert reg.digests(ref, BOTH, mirrors=mirrors).digest == top


def test_unknown_tags_and_unreachable_registries_are_one_line(server: Registry) -> None:
    with pytest.raises(reg.RegistryError) as err:
        reg.digests(f"{server.host}/team/none:1", BOTH)
    assert str(err.value) == f"registry {server.host} has no image {server.host}/team/none:1"
    assert not isinstance(err.value, reg.Unreachable)  # it answered: `lock --skip-parents` would not help
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(reg.RegistryError) as err:
        reg.digests(f"127.0.0.1:{port}/x/y:1", BOTH)
    assert str(err.value) == (f"cannot reach registry 127.0.0.1:{port}: [Errno 111] Connection refused "
                              "(check the network or proxy)")
    assert isinstance(err.value, reg.Unreachable)


def test_a_registry_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reg, "TIMEOUT", 0.5)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection, never answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(reg.RegistryError) as err:
            reg.digests(f"127.0.0.1:{port}/x/y:1", BOTH)
        assert time.monotonic() - started < 5
    assert str(err.value) == f"cannot reach registry 127.0.0.1:{port}: timed out (check the network or proxy)"
    assert isinstance(err.value, reg.Unreachable)


@pytest.mark.parametrize(("ref", "expected"), [
    ("python:3.11-slim", ("docker.io", "library/python", "3.11-slim", None)),
    ("nvidia/cuda:12.4.1-runtime-ubuntu22.04", ("docker.io", "nvidia/cuda", "12.4.1-runtime-ubuntu22.04", None)),
    ("127.0.0.1:25000/x/y:tag", ("127.0.0.1:25000", "x/y", "tag", None)),
    ("localhost/x", ("localhost", "x", "latest", None)),
    ("ghcr.io/a/b@sha256:" + "a" * 64, ("ghcr.io", "a/b", None, "sha256:" + "a" * 64)),
    ("ghcr.io/a/b:1@sha256:" + "b" * 64, ("ghcr.io", "a/b", "1", "sha256:" + "b" * 64)),
])
def test_references_normalise_like_docker(ref: str, expected: tuple[object, ...]) -> None:
    r = reg.parse_reference(ref)
    assert (r.registry, r.repository, r.tag, r.digest) == expected


@given(st.text(max_size=60))
def test_any_reference_text_parses_or_is_a_registry_error(text: str) -> None:
    try:
        reg.parse_reference(text)
    except reg.RegistryError:
        pass


def test_the_docker_config_credentials(tmp_path: Path) -> None:
    import base64

    auth = base64.b64encode(b"me:pw").decode()
    config = {"auths": {"https://index.docker.io/v1/": {"auth": auth}, "r.example": {"auth": auth},
                        "bad.example": {"auth": "!!"}}}
    assert reg.credentials("docker.io", config) == ("me", "pw")
    assert reg.credentials("r.example", config) == ("me", "pw")
    assert reg.credentials("bad.example", config) is None
    assert reg.credentials("other.example", config) is None
    assert reg.credentials("x.example", {"credHelpers": {"x.example": "no-such-helper-here"}}) is None


def test_a_tls_registry_signed_by_a_project_ca(tmp_path: Path) -> None:
    from lock.servers import make_ca

    ca, cert, key = make_ca(tmp_path / "ca")
    server = Registry(tls=(cert, key))
    try:
        top = server.push("team/tls", "1", BOTH)
        mirrors = {"corp.example": f"https://{server.host}"}
        with pytest.raises(reg.RegistryError) as err:
            reg.digests("corp.example/team/tls:1", BOTH, mirrors=mirrors)
        assert str(err.value) == (
            f"registry {server.host}'s TLS certificate is not trusted (unable to get local issuer certificate); "
            "list the CA that signed it in the environment's `certificates:`")
        assert reg.digests("corp.example/team/tls:1", BOTH, mirrors=mirrors, cas=(ca.read_text(encoding="utf-8"),)).digest == top
    finally:
        server.close()
