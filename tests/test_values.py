"""Values the language refuses, each with its exact located message: local-path requirements, over-long
names, booleans for numbers, custom tags on collections, Python versions, empty sections in included files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler.errors import ConfigError
from compiler.pipeline import compile_project

LOCAL = "list the package directory under `local_packages:` instead"


def errors(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> list[str]:
    """Each diagnostic as `line:col: message (hint)`, for the project file text."""
    for rel, content in (files or {}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content, encoding="utf-8")
    main = tmp_path / "dockwright.yaml"
    main.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        compile_project(main)
    out = []
    for d in info.value.diagnostics:
        assert d.location is not None, d.format()
        where = d.location.file.relative_to(tmp_path).as_posix()
        out.append(f"{where}:{d.location.line}:{d.location.col}: {d.message}" + (f" ({d.hint})" if d.hint else ""))
    return out


ENV = """\
    version: 1
    project: demo
    environments:
      base:
        python: "3.11"
        {line}
"""


@pytest.mark.parametrize("requirement", ["pkg @ file:///app/libs/pkg", "./libs/x", "libs/x", "-e .", "--editable=.",
                                         "/abs/pkg", "file:///app/x", "pkg @ ./libs/pkg", "~/src/pkg", "..",
                                         "pkg @ file:libs/pkg"])
def test_local_requirements_are_refused(tmp_path: Path, requirement: str) -> None:
    line = f"requirements: ['{requirement}']"
    assert errors(tmp_path, ENV.format(line=line)) == [
        f"dockwright.yaml:6:20: requirement '{requirement}' in environment 'base' is a local path ({LOCAL})"]


@pytest.mark.parametrize("requirement", ["pkg @ https://files.example/pkg-1.0-py3-none-any.whl",
                                         "numpy ; platform_machine != 'a/b'", "lib @ git+https://host/org/lib.git"])
def test_remote_requirements_are_not_local(tmp_path: Path, requirement: str) -> None:
    main = tmp_path / "dockwright.yaml"
    main.write_text(textwrap.dedent(ENV.format(line=f'requirements: ["{requirement}"]')), encoding="utf-8")
    assert compile_project(main).plan.environments["base"].requirements


def test_local_requirements_in_requirements_files(tmp_path: Path) -> None:
    files = {"requirements.txt": "numpy==1.26.4\n./libs/x\npkg @ file:///app/pkg\n-e .\n"}
    assert errors(tmp_path, ENV.format(line="requirements_files: [requirements.txt]"), files) == [
        f"requirements.txt:2:1: requirement './libs/x' is a local path ({LOCAL})",
        f"requirements.txt:3:1: requirement 'pkg @ file:///app/pkg' is a local path ({LOCAL})",
        f"requirements.txt:4:1: option '-e' is not supported in requirements files ({LOCAL})",
    ]


@pytest.mark.parametrize("requirement,message", [
    ('numpy ; os_name != " -i http://evil/ "', "pip would read part of it as an option, a comment or a line "
                                                "continuation (remove the ' -', ' #' or trailing '\\')"),
    ('numpy ; os_name != "x #y"', "pip would read part of it as an option, a comment or a line continuation "
                                  "(remove the ' -', ' #' or trailing '\\')"),
])
def test_requirements_pip_would_split_are_refused(tmp_path: Path, requirement: str, message: str) -> None:
    line = "requirements: ['" + requirement.replace("'", "''") + "']"
    assert errors(tmp_path, ENV.format(line=line)) == [
        f"dockwright.yaml:6:20: invalid requirement '{requirement}' in environment 'base': {message}"]
