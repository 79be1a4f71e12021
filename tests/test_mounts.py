"""cache_mounts and secrets without an engine: what build refuses before contacting one, what the manifest and
the bake file carry, that a secret's text is scrubbed, and that projects without the keys keep every tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import bake, builders
from compiler.builders.base import Endpoint, Job, Scrubber
from compiler.driver import compile_project
from compiler.errors import UsageError
from compiler.manifest import Manifest
from helpers import CASES, copy_project

MOUNTS = CASES / "out-mounts"


def _endpoint(kind: str, root: Path) -> Endpoint:
    return Endpoint("b", kind, None, {}, {}, root)


def _job(name: str, *, mounts: bool = True, secrets: tuple[tuple[str, str, str], ...] = ()) -> Job:
    return Job(name=name, tag=f"p-{name}:1", push_tag=None, dockerfile="Dockerfile", context=".", inputs=(),
               parent=None, checks=(), project="p", mounts=mounts, secrets=secrets)


def test_the_backends_declare_their_features() -> None:
    assert builders.features("buildah") == {"mounts", "secrets"}
    assert builders.features("docker") == frozenset()
    assert builders.features("podman") == {"mounts", "secrets"}


def test_a_builder_without_mounts_refuses_the_images_that_need_them(tmp_path: Path) -> None:
    todo = [_job("a"), _job("b", mounts=False), _job("c", secrets=(("netrc", "env", "X"),))]
    with pytest.raises(UsageError) as caught:
        builders.require(_endpoint("docker", tmp_path), todo, environ={"X": "x"})
    assert str(caught.value) == (
        "builder 'b' (type docker) cannot build RUN --mount (cache mounts) and build secrets, which images 'a', "
        "'c' need\nhint: build on a builder of type buildah or podman (builders: in the project file, then "
        "--builder NAME), or remove cache_mounts and secrets")
    with pytest.raises(UsageError) as one:
        builders.require(_endpoint("docker", tmp_path), todo[2:], environ={"X": "x"})
    assert str(one.value) == (
        "builder 'b' (type docker) cannot build RUN --mount (cache mounts) and build secrets, which image 'c' "
        "needs\nhint: build on a builder of type buildah or podman (builders: in the project file, then --builder "
        "NAME), or remove cache_mounts and secrets")
    builders.require(_endpoint("podman", tmp_path), todo, environ={"X": "x"})
    builders.require(_endpoint("docker", tmp_path), [todo[1]])  # nothing needed: nothing said
    builders.require(_endpoint("buildah", tmp_path), todo, environ={"X": "x"})


def test_a_secret_that_is_not_there_is_refused_before_the_build(tmp_path: Path) -> None:
    buildah = _endpoint("buildah", tmp_path)
    with pytest.raises(UsageError) as unset:
        builders.require(buildah, [_job("a", secrets=(("netrc", "env", "NETRC_TEXT"),))], environ={})
    assert str(unset.value) == (
        "secret 'netrc' of image 'a' is read from the environment variable NETRC_TEXT, which is not set\n"
        "hint: set it on this machine, or declare the secret with {file: path}")
    with pytest.raises(UsageError) as missing:
        builders.require(buildah, [_job("a", secrets=(("netrc", "file", "secrets/netrc"),))], environ={})
    assert str(missing.value) == (
        "secret 'netrc' of image 'a' is read from the file secrets/netrc, which cannot be read: No such file or "
        "directory\nhint: create it on this machine, or declare the secret with {env: NAME}")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "netrc").write_text("machine h login u password p\n")
    builders.require(buildah, [_job("a", secrets=(("netrc", "file", "secrets/netrc"),))], environ={})


def test_the_manifest_records_mounts_and_secret_declarations_and_reads_them_back(tmp_path: Path) -> None:
    compiled = compile_project(copy_project(MOUNTS, tmp_path / "p") / "dockwright.yaml")
    manifest = compiled.manifest
    assert {n: (i.mounts, i.secrets) for n, i in manifest.images.items()} == {
        "base": (True, (("netrc", "file", "~/.netrc"),)),
        "child": (True, (("netrc", "file", "~/.netrc"),)),
        "fast": (True, (("netrc", "file", "secrets/netrc"), ("token", "env", "INDEX_TOKEN"))),
        "nothing": (False, ()),
        "plain": (False, ()),
    }
    assert Manifest.parse(manifest.to_json()) == manifest
    data = json.loads(manifest.to_json())
    assert "mounts" not in data["images"]["plain"] and "secrets" not in data["images"]["plain"]


def test_the_bake_file_carries_where_each_secret_is_read(tmp_path: Path) -> None:
    compiled = compile_project(copy_project(MOUNTS, tmp_path / "p") / "dockwright.yaml")
    data = json.loads(bake.render(json.loads(compiled.manifest.to_json())))
    assert {name: target.get("secret") for name, target in data["target"].items()} == {
        "base": ["id=netrc,src=${HOME}/.netrc"], "child": ["id=netrc,src=${HOME}/.netrc"],
        "fast": ["id=netrc,src=secrets/netrc", "id=token,env=INDEX_TOKEN"], "nothing": None, "plain": None}
    assert data["variable"] == {"HOME": {"default": ""}}


def test_the_secret_is_no_input_of_compile_and_its_text_no_part_of_the_key(tmp_path: Path) -> None:
    root = copy_project(MOUNTS, tmp_path / "p")
    first = compile_project(root / "dockwright.yaml")
    (root / "secrets").mkdir()
    (root / "secrets" / "netrc").write_text("machine h login u password hunter2-secret\n")
    second = compile_project(root / "dockwright.yaml")
    assert first.files == second.files
    assert not any("hunter2" in text for text in second.files.values())


@settings(max_examples=100, derandomize=True, database=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_!$%", min_size=4, max_size=40),
       st.sampled_from(["{s}", "Downloading https://h/simple with {s}", "auth {s} failed", "{s}\n"]))
def test_a_secrets_text_never_leaves_the_scrubber(secret: str, line: str) -> None:
    text = f"machine 127.0.0.1 login someone password {secret}\n"
    for scrub in (Scrubber({}, environ={}, secrets=[text]), Scrubber({}, environ={}, secrets=[secret])):
        assert secret not in scrub.line(line.format(s=secret))


PROJECT = """version: 1
project: keys
environments:
  a: {{python: "3.11", requirements: [requests]{a}}}
  b: {{python: "3.11", requirements: [numpy]{b}}}
runner: {{environment: a}}
server: {{environment: b}}
"""


def _tags(tmp_path: Path, a: str = "", b: str = "") -> dict[str, str]:
    root = tmp_path / f"p{abs(hash((a, b)))}"
    root.mkdir()
    (root / "dockwright.yaml").write_text(PROJECT.format(a=a, b=b))
    return {n: i.tag for n, i in compile_project(root / "dockwright.yaml").plan.images.items()}


def test_the_keys_change_only_the_tags_of_images_with_mounts(tmp_path: Path) -> None:
    plain = _tags(tmp_path)
    cached = _tags(tmp_path, a=", cache_mounts: true", b=", cache_mounts: false")
    secret = _tags(tmp_path, a=", secrets: {netrc: {env: N}}", b=", secrets: {}")
    moved = _tags(tmp_path, a=", secrets: {netrc: {env: M}}")
    assert cached["b"] == secret["b"] == plain["b"]
    assert len({plain["a"], cached["a"], secret["a"], moved["a"]}) == 4  # the declaration is part of the key
