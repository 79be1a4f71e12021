"""The `zenml:` section: compile checks the images ZenML runs, and changes no output (golden cases error-zenml and
out-zenml show the messages)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from compiler import zenml_checks
from compiler.errors import Collector, ConfigError
from compiler.lockfile import Lock, LockedImage, Package
from compiler.driver import compile_project
from helpers import CASES, copy_project, tree

PROJECT = """version: 1
project: zen
{section}
environments:
  base:
    python: "3.11"
    requirements: ["{requirement}"]
runner: {{environment: base}}
pipelines:
  p:
    environment: base
    steps: {{a: {{}}, b: {{after: [a], settings: {{env: {{X: "1"}}}}}}}}
"""


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dockwright.yaml").write_text(text, encoding="utf-8")
    return folder / "dockwright.yaml"


def _errors(path: Path) -> list[str]:
    try:
        compile_project(path)
    except ConfigError as exc:
        return [d.message for d in exc.diagnostics]
    return []


def test_the_section_changes_no_output(tmp_path: Path) -> None:
    with_section = copy_project(CASES / "out-zenml", tmp_path / "with")
    without = copy_project(CASES / "out-zenml", tmp_path / "without")
    text = (without / "dockwright.yaml").read_text(encoding="utf-8")
    (without / "dockwright.yaml").write_text(text.replace('zenml: {version: "0.98.0", in_images: true}\n', ""),
                                             encoding="utf-8")
    a, b = compile_project(with_section / "dockwright.yaml"), compile_project(without / "dockwright.yaml")
    assert a.files == b.files
    assert [w.message for w in a.warnings] == [
        "environment 'gpu' (used by step 'training.tune') runs Python 3.10, but the runner runs Python 3.11: "
        "ZenML's client and step environments must agree"]
    assert b.warnings == []
    assert tree(CASES / "out-zenml" / "expected") == {k: v.encode() for k, v in b.files.items()}


def test_in_images_false_checks_only_the_runner(tmp_path: Path) -> None:
    text = (CASES / "error-zenml" / "dockwright.yaml").read_text(encoding="utf-8")
    assert _errors(_write(tmp_path / "all", text))  # the golden case's errors
    only_runner = text.replace('zenml: {version: "0.98.0"}', 'zenml: {version: "0.98.0", in_images: false}')
    assert _errors(_write(tmp_path / "runner", only_runner)) == []
    older = only_runner.replace('zenml: {version: "0.98.0", in_images: false}',
                                'zenml: {version: "0.99.0", in_images: false}')
    assert _errors(_write(tmp_path / "older", older)) == [
        "environment 'base' (used by the runner) installs zenml 0.98.0, but the project runs ZenML 0.99.0 "
        "(zenml.version)"]


def test_the_lock_pins_a_range(tmp_path: Path) -> None:
    """A range in the YAML is exact once dockwright.lock pins it: the lock's version counts."""
    path = _write(tmp_path, PROJECT.format(section='zenml: {version: "0.98.0"}', requirement="zenml[local]>=0.90"))
    assert _errors(path) == [
            "requirement 'zenml[local]>=0.90' of environment 'base' (used by the runner, pipeline 'p', step 'p.a') "
            "does not pin zenml to one version; the project runs ZenML 0.98.0 (zenml.version)"]
    unchecked = compile_project(_write(tmp_path / "plain", PROJECT.format(section="", requirement="zenml[local]>=0.90")))
    project = replace(unchecked.project, zenml=compile_project(_write(
        tmp_path / "exact", PROJECT.format(section='zenml: {version: "0.98.0"}', requirement="zenml[local]==0.98.0")
    )).project.zenml)

    def pinned(version: str) -> list[str]:
        locked = LockedImage("base", "3.11", ("linux/amd64",), "sha256:0", None,
                             (Package("zenml", version, ("zenml[local]>=0.90",), ()),))
        sink = Collector()
        zenml_checks.check(project, replace(unchecked.plan, lock=Lock({"base": locked})), sink)
        return [d.message for d in sink.errors]

    assert pinned("0.98.0") == []
    assert pinned("0.97.1") == [
        "environment 'base' (used by the runner, pipeline 'p', step 'p.a') installs zenml 0.97.1, but the project "
        "runs ZenML 0.98.0 (zenml.version)"]


_VERSIONS = st.sampled_from(["0.98.0", "0.98.1", "0.97.0", "1.0.0rc1", "0.98.0.post1"])
_EXTRAS = st.sampled_from(["", "[local]", "[server]", "[local,server]", "[gcp]"])


@settings(max_examples=25, deadline=None)
@given(wanted=_VERSIONS, installed=_VERSIONS, extras=_EXTRAS)
def test_exactly_the_projects_version_with_a_local_store(tmp_path_factory, wanted: str, installed: str,  # type: ignore[no-untyped-def]
                                                          extras: str) -> None:
    """An error exactly when the version differs; a warning exactly when no extra brings the SQL store."""
    folder = tmp_path_factory.mktemp("v")
    path = _write(folder, PROJECT.format(section=f'zenml: {{version: "{wanted}"}}',
                                         requirement=f"zenml{extras}=={installed}"))
    try:
        compiled = compile_project(path)
        errors, warnings = [], compiled.warnings
    except ConfigError as exc:
        errors, warnings = list(exc.diagnostics), list(exc.warnings)
    assert len(errors) == (0 if wanted == installed else 1)
    local = extras in ("[local]", "[server]", "[local,server]")
    assert [w for w in warnings if "has no 'local' extra" in w.message] == ([] if local else [warnings[0]])
    for d in [*errors, *warnings]:
        assert d.location is not None and d.location.line == 7 and d.hint


BROKEN = {
    "environment": ("environments:\n  base:\n    parent_image: zenmldocker/zenml:0.98.0-py3.11\n"
                    "    env: {A: \"two\\nlines\"}\n"),
    "parent": ("environments:\n  root:\n    parent_image: zenmldocker/zenml:0.98.0-py3.11\n    env: {A: \"two\\nlines\"}\n"
               "  base: {extends: root, env: {B: '1'}}\n"),
    "integration": ("integrations:\n  z: {requirements: [\"zenml[local]==0.98.0\"], env: {A: \"two\\nlines\"}}\n"
                    "environments:\n  base: {python: '3.11', integrations: [z]}\n"),
}


@pytest.mark.parametrize("where", sorted(BROKEN))
def test_an_entry_with_schema_errors_is_not_also_said_to_lack_zenml(tmp_path: Path, where: str) -> None:
    """An entry with schema errors is an empty stand-in for the rest of compile: the checks skip the images
    built on it (its zenml requirement or parent image is not lost, only not read)."""
    path = _write(tmp_path, f"version: 1\nproject: zen\nzenml: {{version: \"0.98.0\"}}\n{BROKEN[where]}"
                            "runner: {environment: base}\n")
    errors = _errors(path)
    assert len(errors) == 1 and "contains a newline or control character" in errors[0], errors


@pytest.mark.parametrize("where", ["environment", "parent"])
def test_an_unknown_integration_is_not_also_said_to_lack_zenml(tmp_path: Path, where: str) -> None:
    """What an environment that names an integration there is none of installs is not known (a typo, most
    likely, of the one that brings zenml): the typo is the one error."""
    listed = "  root: {python: '3.11', integrations: [zenml_bse]}\n  base: {extends: root}\n" if where == "parent" \
        else "  base: {python: '3.11', integrations: [zenml_bse]}\n"
    path = _write(tmp_path, "version: 1\nproject: zen\nzenml: {version: \"0.98.0\"}\nintegrations:\n"
                            "  zenml_base: {requirements: [\"zenml[local]==0.98.0\"]}\n"
                            f"environments:\n{listed}runner: {{environment: base}}\n")
    errors = _errors(path)
    assert errors == ["unknown integration 'zenml_bse'"]
