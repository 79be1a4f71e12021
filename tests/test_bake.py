"""`dockwright export bake`: the docker-bake.json of each example is golden, valid against bake's documented file
definition, and read back it describes exactly the images of manifest.json (BuildKit cannot run here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import bake
from helpers import EXAMPLES, UPDATE, copy_project, invoke, run_cli

GOLDEN = Path(__file__).resolve().parent / "bake"
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "dockwright.yaml").is_file())

# The bake file definition (docs.docker.com/build/bake/reference): the top-level blocks, and for the attributes
# dockwright writes, their types. Every other documented target attribute is listed so that a misspelt one fails.
TOP = {"group", "target", "variable", "function"}
TARGET_ATTRIBUTES = {
    "args": dict, "annotations": list, "attest": list, "cache-from": list, "cache-to": list, "call": str,
    "context": str, "contexts": dict, "description": str, "dockerfile-inline": str, "dockerfile": str,
    "entitlements": list, "extra-hosts": dict, "inherits": list, "labels": dict, "matrix": dict, "name": str,
    "network": str, "no-cache-filter": list, "no-cache": bool, "output": list, "platforms": list, "pull": bool,
    "secret": list, "shm-size": str, "ssh": list, "tags": list, "target": str, "ulimits": list,
}
GROUP_ATTRIBUTES = {"targets": list, "description": str}
NAME = re.compile(r"[A-Za-z0-9_-]+")  # bake's block names
TAG = re.compile(r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                 r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def validate(data: Any) -> list[str]:
    """What in data does not follow bake's file definition (for the blocks dockwright writes)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return ["the file is not a JSON object"]
    problems += [f"unknown top-level block {k!r}" for k in data if k not in TOP]
    for kind, allowed in (("group", GROUP_ATTRIBUTES), ("target", TARGET_ATTRIBUTES)):
        for name, block in (data.get(kind) or {}).items():
            if not NAME.fullmatch(name):
                problems.append(f"{kind} name {name!r} is not [a-zA-Z0-9_-]+")
            for attribute, value in block.items():
                if attribute not in allowed:
                    problems.append(f"{kind} {name}: unknown attribute {attribute!r}")
                elif not isinstance(value, allowed[attribute]):
                    problems.append(f"{kind} {name}: {attribute} is not a {allowed[attribute].__name__}")
                elif isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
                    problems.append(f"{kind} {name}: {attribute} has a value that is not a string")
                elif isinstance(value, list) and not all(isinstance(v, str) for v in value):
                    problems.append(f"{kind} {name}: {attribute} has an item that is not a string")
    targets = set(data.get("target") or {})
    for name, group in (data.get("group") or {}).items():
        problems += [f"group {name} names no target {t!r}" for t in group.get("targets", []) if t not in targets]
    for name, target in (data.get("target") or {}).items():
        for key, value in (target.get("contexts") or {}).items():
            if value.startswith("target:") and value[len("target:"):] not in targets:
                problems.append(f"target {name}: context {key} names no target {value!r}")
    return problems


def read_back(root: Path, data: dict[str, Any], manifest: dict[str, Any]) -> None:
    """The bake file describes exactly manifest.json's images, and BuildKit would find everything it names."""
    images = manifest["images"]
    targets: dict[str, Any] = data["target"]
    by_image = {t["labels"]["io.dockwright.image"]: name for name, t in targets.items()}
    assert sorted(by_image) == sorted(images)
    assert data["group"] == {"default": {"targets": [by_image[n] for n in manifest["build_order"]]}}
    for image, name in by_image.items():
        entry, target = images[image], targets[name]
        context = root / target["context"]
        dockerfile = context / target["dockerfile"]  # bake reads the Dockerfile relative to the context
        assert dockerfile.resolve() == (root / entry["dockerfile"]).resolve() and dockerfile.is_file()
        assert target["tags"] == [entry["tag"], *([entry["push_tag"]] if entry["push_tag"] else [])]
        assert all(TAG.fullmatch(tag) for tag in target["tags"]), target["tags"]
        assert target["labels"] == {"io.dockwright.image": image, "io.dockwright.project": manifest["project"]}
        froms = [line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("FROM ")]
        if entry["parent"]:
            parent_tag = images[entry["parent"]]["tag"]
            # the named context is the FROM line's reference: BuildKit builds the parent target for it
            assert target["contexts"] == {parent_tag: f"target:{by_image[entry['parent']]}"}
            assert parent_tag in froms
        else:
            assert "contexts" not in target


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_example_bake_file(example: str, tmp_path: Path) -> None:
    root = copy_project(EXAMPLES / example, tmp_path / example)
    manifest = json.loads(next(root.rglob("manifest.json")).read_text())
    out = root / manifest["output"]
    warnings = invoke("validate", cwd=root).stderr  # the examples' parents are unpinned: warned about
    done = invoke("export", "bake", cwd=root)
    assert (done.returncode, done.stderr) == (0, warnings)
    assert done.stdout == f"{manifest['output']}/docker-bake.json: written\n"
    text = (out / "docker-bake.json").read_text()
    golden = GOLDEN / f"{example}.json"
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text()
    data = json.loads(text)
    assert validate(data) == []
    read_back(root, data, manifest)

    again = invoke("export", "bake", cwd=root)
    assert (again.returncode, again.stdout) == (0, f"{manifest['output']}/docker-bake.json: unchanged\n")
    elsewhere = invoke("export", "bake", "-o", "ci/bake.json", cwd=root)
    assert (elsewhere.returncode, elsewhere.stdout) == (0, "ci/bake.json: written\n")
    assert (root / "ci/bake.json").read_text() == text
    # compile leaves the bake file alone, and is not stale because of it
    check = invoke("compile", "--check", cwd=root)
    assert check.returncode == 0, check.stderr


def test_bake_through_the_entry_point(tmp_path: Path) -> None:
    """The command as a process (console script start, fast path, exit) prints and writes what invoke() sees."""
    root = copy_project(EXAMPLES / "quickstart", tmp_path / "quickstart")
    warnings = invoke("validate", cwd=root).stderr
    done = run_cli("export", "bake", cwd=root)
    assert (done.returncode, done.stdout, done.stderr) == (0, "generated/docker-bake.json: written\n", warnings)
    assert (root / "generated/docker-bake.json").read_text() == (GOLDEN / "quickstart.json").read_text()
    check = run_cli("compile", "--check", cwd=root)
    assert check.returncode == 0, check.stderr


def test_bake_file_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    root = copy_project(EXAMPLES / "quickstart", tmp_path / "q")
    (tmp_path / "victim.json").write_text("keep\n")
    (root / "generated/docker-bake.json").symlink_to(tmp_path / "victim.json")
    done = invoke("-q", "export", "bake", cwd=root)
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", "error: generated/docker-bake.json is a symbolic link: dockwright writes no file through one (move it "
               "away, or give -o another path)\n")
    assert (tmp_path / "victim.json").read_text() == "keep\n"


IMAGE = st.from_regex(r"[a-z][a-z0-9]{0,5}([._-][a-z0-9]{1,4})?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(IMAGE, min_size=1, max_size=8, unique=True), st.data())
def test_any_dag_gives_a_valid_bake_file(names: list[str], data: st.DataObject) -> None:
    """Whatever the image names and parents (a parent comes earlier in build order), target names are unique
    and valid, every parent chain is a target: context, and the text is deterministic."""
    images: dict[str, Any] = {}
    for i, name in enumerate(names):
        parent = data.draw(st.none() | st.sampled_from(names[:i])) if i else None
        images[name] = {"name": name, "tag": f"p-{name.replace('.', '-')}:{i:012x}", "push_tag": None,
                        "dockerfile": f"generated/images/{name}/Dockerfile", "context": ".", "parent": parent}
    manifest = {"project": "p", "images": images, "build_order": names}
    text = bake.render(manifest)
    assert text == bake.render(json.loads(json.dumps(manifest)))
    parsed = json.loads(text)
    assert validate(parsed) == []
    assert len(parsed["target"]) == len(names)
    assert parsed["group"]["default"]["targets"] == [
        next(t for t, v in parsed["target"].items() if v["labels"]["io.dockwright.image"] == n) for n in names]
