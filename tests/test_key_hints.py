"""Keys where they cannot go are said to be so, with where they go: an environment key in an integration (a guess
at a similar-looking key, "did you mean 'apt_packages'?" for local_packages, sent people the wrong way), and the
keys that compete for an environment's base (python beside parent_image or dockerfile states its Python)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler import schema
from helpers import invoke

ENVIRONMENT_ONLY = sorted(set(schema.section_keys("environment")) - set(schema.section_keys("integration")))


def test_some_keys_are_the_environment_s_alone() -> None:
    assert {"local_packages", "copy", "python", "parent_image", "secrets"} <= set(ENVIRONMENT_ONLY)


@pytest.mark.parametrize("key", ENVIRONMENT_ONLY)
def test_an_environment_key_in_an_integration_says_where_it_goes(tmp_path: Path, key: str) -> None:
    (tmp_path / "dockwright.yaml").write_text(
        f"version: 1\nproject: p\nintegrations:\n  extra:\n    {key}: x\nenvironments:\n"
        "  a: {python: '3.11', integrations: [extra]}\nrunner: {environment: a}\n")
    result = invoke("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"dockwright.yaml:5:5: error: unknown key '{key}' in integration 'extra' (an integration cannot set {key}: "
        "set it on the environments that list 'extra' in integrations)")


@pytest.mark.parametrize("python", [False, True])
def test_parent_image_and_dockerfile_compete_and_python_beside_them_does_not(tmp_path: Path, python: bool) -> None:
    (tmp_path / "a.Dockerfile").write_text("FROM python:3.11-slim\n")
    stated = "    python: '3.11'\n" if python else ""
    (tmp_path / "dockwright.yaml").write_text(
        f"version: 1\nproject: p\nenvironments:\n  a:\n    parent_image: python:3.11-slim\n{stated}"
        "    dockerfile: a.Dockerfile\nrunner: {environment: a}\n")
    result = invoke("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"dockwright.yaml:{7 if python else 6}:5: error: 'dockerfile' and 'parent_image' both set the base of "
        "environment 'a' (keep one of parent_image and dockerfile (python beside it states its Python version))")


@pytest.mark.parametrize("value, hint", [
    ("python:3.11@sha256:0123", "write name@sha256: and the digest's 64 hex digits (or name:tag@sha256:...)"),
    ("python@sha256:xyz", "write name@sha256: and the digest's 64 hex digits (or name:tag@sha256:...)"),
    ("python:3.11 slim", "write name:tag, like python:3.11-slim"),
])
def test_a_bad_parent_image_is_told_the_form_it_was_going_for(tmp_path: Path, value: str, hint: str) -> None:
    (tmp_path / "dockwright.yaml").write_text(
        f"version: 1\nproject: p\nenvironments:\n  a: {{parent_image: '{value}'}}\nrunner: {{environment: a}}\n")
    result = invoke("validate", cwd=tmp_path)
    assert result.stderr.splitlines()[0] == (
        f"dockwright.yaml:4:21: error: invalid image reference '{value}' in environment 'a' ({hint})")


@pytest.mark.parametrize("to", ["../up", "a/../b", "-x", "x/-y"])
def test_a_bad_copy_destination_is_told_relative_ones_are_fine(tmp_path: Path, to: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dockwright.yaml").write_text(
        f"version: 1\nproject: p\nenvironments:\n  a:\n    python: '3.11'\n    copy: [{{from: src/, to: '{to}'}}]\n"
        "runner: {environment: a}\n")
    result = invoke("validate", cwd=tmp_path)
    assert result.stderr.splitlines()[0] == (
        f"dockwright.yaml:6:25: error: invalid copy destination '{to}' in environment 'a' (a path in the image, like "
        "/app/conf.yaml or conf/ (relative: under workdir), of letters, digits and . _ - /, with no '..' and no part "
        "starting with '-')")


@pytest.mark.parametrize("output, key, entry, message", [
    ("src/gen", "copy", "src/", "is inside copy source 'src/'"),
    ("src", "copy", "src", "is copy source 'src'"),
    ("libs/feat", "local_packages", "libs/feat", "is local package 'libs/feat'"),
    ("libs/feat/out", "local_packages", "libs/feat", "is inside local package 'libs/feat'"),
])
def test_an_output_inside_what_images_copy_is_refused(tmp_path: Path, output: str, key: str, entry: str,
                                                      message: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "libs/feat").mkdir(parents=True)
    (tmp_path / "libs/feat/pyproject.toml").write_text("[project]\nname = 'feat'\nversion = '1'\n")
    (tmp_path / "dockwright.yaml").write_text(
        f"version: 1\nproject: p\noutput: {output}\nenvironments:\n  a:\n    python: '3.11'\n    {key}: [{entry}]\n"
        "runner: {environment: a}\n")
    for command in ("validate", "compile"):
        result = invoke(command, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.splitlines()[0] == (
            f"dockwright.yaml:3:9: error: output directory '{output}' {message}: the generated files would be copied "
            "into the image (use a directory outside it, like 'generated')")
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == []


def test_an_output_inside_the_whole_project_copied_is_fine(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '1'\n[build-system]\n"
                                             "requires = ['hatchling']\nbuild-backend = 'hatchling.build'\n")
    (tmp_path / "dockwright.yaml").write_text(
        "version: 1\nproject: p\nenvironments:\n  a:\n    python: '3.11'\n    local_packages: ['.']\n"
        "runner: {environment: a}\n")
    assert invoke("compile", cwd=tmp_path).returncode == 0


def test_each_empty_included_file_is_said_to_be_empty(tmp_path: Path) -> None:
    """All errors at once: an empty file is one, whatever came before it (only the first was said)."""
    (tmp_path / "envs").mkdir()
    for i in range(4):
        (tmp_path / f"envs/e{i}.yaml").write_text("" if i != 1 else "# only a comment\n")
    (tmp_path / "dockwright.yaml").write_text(
        "version: 1\nproject: p\ninclude: [envs/*.yaml]\nenvironments:\n  a: {python: '3.11'}\n"
        "runner: {environment: a}\n")
    result = invoke("validate", cwd=tmp_path)
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [
        f"envs/e{i}.yaml:1:1: error: file is empty (add environments, pipelines, ...)" for i in range(4)]


def test_nesting_deeper_than_dockwright_reads_says_what_to_look_for(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text("version: 1\nproject: p\nlabels: " + "[" * 70 + "]" * 70 + "\n")
    result = invoke("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "dockwright.yaml:3:73: error: nesting deeper than 64 levels (no dockwright key nests that deep: look for an "
        "alias or a bracket that does not end)")


@pytest.mark.parametrize("text, at, code", [
    (b"version: 1\nproject: fp\x1b[31m\n", "2:12", "001B (a control character)"),
    (b"version: 1\n# \x7f\n", "2:3", "007F (a control character)"),
    ("version: 1\nproject: a\ufffe\n".encode(), "2:11", "FFFE"),
])
def test_a_character_yaml_does_not_allow_is_located(tmp_path: Path, text: bytes, at: str, code: str) -> None:
    """At its place, by its code point, with what to do (it was line 1, column 1 and PyYAML's own words)."""
    (tmp_path / "dockwright.yaml").write_bytes(text)
    result = invoke("validate", cwd=tmp_path)
    hint = "remove it" if code == "FFFE" else (
        f"remove it; in a double-quoted string, write it as an escape, like \\x{code[2:4].lower()}")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"dockwright.yaml:{at}: error: YAML does not allow the character U+{code} in a file ({hint})")
