"""Every examples/* project compiles to exactly its committed output, which lints clean and parses
back (BuildKit's parser) into exactly the instructions we meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.emit import changes
from compiler.driver import compile_project
from helpers import CASES, EXAMPLES, tree
from dockerfile_check import check_dockerfile, hadolint, spec_images

EXAMPLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if (p / "dockwright.yaml").is_file())
OUTPUT_CASES = sorted(p for p in CASES.iterdir() if (p / "expected").is_dir())


def test_there_are_three_examples() -> None:
    assert [p.name for p in EXAMPLE_DIRS] == ["ml-training", "platform", "quickstart"]


UNPINNED = {"quickstart": ["python:3.11-slim"],
            "ml-training": ["nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04", "python:3.11-slim"],
            "platform": ["python:3.12-slim", "python:3.12-slim"]}


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=[p.name for p in EXAMPLE_DIRS])
def test_example_output_is_committed(example: Path) -> None:
    compiled = compile_project(example / "dockwright.yaml")
    # Compiled from the committed lock. Its parents are on Docker Hub, which the machine that locked the
    # examples could not reach (`lock --skip-parents`): compile says each is unpinned, and nothing else.
    assert compiled.locked
    unpinned = sorted(i.base_ref for i in compiled.plan.images.values() if i.unpinned)
    assert unpinned == UNPINNED[example.name]
    assert sorted(d.message for d in compiled.warnings) == sorted(
        f"parent image '{i.base_ref}' of image '{n}' is not pinned to a digest in dockwright.lock"
        for n, i in compiled.plan.images.items() if i.unpinned)
    on_disk = tree(compiled.out_dir)
    assert on_disk == {k: v.encode() for k, v in compiled.files.items()}
    assert all(c.status == "unchanged" for c in changes(compiled.out_dir, compiled.files))


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=[p.name for p in EXAMPLE_DIRS])
def test_example_dockerfiles_lint_clean(example: Path) -> None:
    compiled = compile_project(example / "dockwright.yaml")
    for name, _, _ in spec_images(compiled):
        result = hadolint(compiled.out_dir / "images" / name / "Dockerfile")
        assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.mark.parametrize("folder", EXAMPLE_DIRS + OUTPUT_CASES, ids=[p.name for p in EXAMPLE_DIRS + OUTPUT_CASES])
def test_dockerfiles_parse_back_exactly(folder: Path) -> None:
    compiled = compile_project(folder / "dockwright.yaml")
    expected = folder / "expected" if (folder / "expected").is_dir() else compiled.out_dir
    images = spec_images(compiled)
    assert images
    for name, spec, requirements_src in images:
        check_dockerfile(expected / "images" / name / "Dockerfile", spec, requirements_src)


# The adversarial quoting case holds user commands that are not meant to be good shell.
LINTED_CASES = [p for p in OUTPUT_CASES if p.name != "out-quoting"]


@pytest.mark.parametrize("case", LINTED_CASES, ids=[p.name for p in LINTED_CASES])
def test_case_dockerfiles_lint_clean(case: Path) -> None:
    for dockerfile in sorted((case / "expected" / "images").glob("*/Dockerfile")):
        result = hadolint(dockerfile)
        assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
