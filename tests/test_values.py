"""Values the language refuses, each with its exact located message: local-path requirements, over-long
names, booleans for numbers, custom tags on collections, Python versions, empty sections in included files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler.errors import ConfigError
from compiler.driver import compile_project

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
    ('numpy ; os_name != " -i http://evil/ "', "pip would read part of it as an option or a comment (remove the "
                                                "' -' or ' #')"),
    ('numpy ; os_name != "x #y"', "pip would read part of it as an option or a comment (remove the ' -' or ' #')"),
    # each says its own problem, not "a local path" because a '/' or '\\' is in it too
    ("pandas==2.2.2 \\", "pip would read the next line as part of it (remove the trailing '\\')"),
    ("pandas==2.2.2 ./x \\", "pip would read the next line as part of it (remove the trailing '\\')"),
])
def test_requirements_pip_would_split_are_refused(tmp_path: Path, requirement: str, message: str) -> None:
    line = "requirements: ['" + requirement.replace("'", "''") + "']"
    shown = requirement.replace("\\", "\\\\")  # a backslash is shown escaped, as a line break would be
    assert errors(tmp_path, ENV.format(line=line)) == [
        f"dockwright.yaml:6:20: invalid requirement '{shown}' in environment 'base': {message}"]


def test_a_line_break_in_a_requirement_is_the_reason_given(tmp_path: Path) -> None:
    line = 'requirements: ["pandas==2.2.2\\nRUN rm -rf /"]'
    assert errors(tmp_path, ENV.format(line=line)) == [
        "dockwright.yaml:6:20: invalid requirement 'pandas==2.2.2\\nRUN rm -rf /' in environment 'base' (write one "
        "PEP 508 requirement, like 'pandas==2.2.2'; options go in installer_args)"]


@pytest.mark.parametrize("kind", ["environments", "pipelines", "integrations", "builders"])
def test_over_long_names_are_located_errors(tmp_path: Path, kind: str) -> None:
    name = "a" * 5000  # longer than YAML's 1,024 for a plain key: an explicit key
    text = f"version: 1\nproject: demo\n{kind}:\n  ? {name}\n  : {{}}\n"
    found = errors(tmp_path, text)
    assert (f"dockwright.yaml:4:5: name '{'a' * 24}...' in '{kind}' is 5,000 characters long (names are at most 63 "
            "characters: they become image names and directories)") in found
    assert all(len(message) < 300 for message in found), found  # other messages shorten the name, too


def test_a_63_character_name_is_fine_and_a_64_character_one_is_not(tmp_path: Path) -> None:
    ok, long = "a" * 63, "b" * 64
    text = (f"version: 1\nproject: demo\nenvironments:\n  {ok}: {{python: '3.11'}}\n"
            f"pipelines:\n  p:\n    environment: {ok}\n    steps: {{{long}: {{}}}}\n")
    assert errors(tmp_path, text) == [
        f"dockwright.yaml:8:13: name '{'b' * 24}...' in 'steps' of pipeline 'p' is 64 characters long (names are at "
        "most 63 characters: they become image names and directories)"]


def test_over_long_project_name(tmp_path: Path) -> None:
    assert errors(tmp_path, f"version: 1\nproject: {'p' * 65}\n") == [
        f"dockwright.yaml:2:10: project name '{'p' * 24}...' is 65 characters long (a project name is at most 64 "
        "characters: it prefixes every image name)"]


@pytest.mark.parametrize("line,message", [
    ("version: true", "dockwright.yaml:1:10: 'version' must be a whole number, not a boolean"),
    ("version: 1.0", "dockwright.yaml:1:10: 'version' must be a whole number, not a number"),
])
def test_a_boolean_is_no_number(tmp_path: Path, line: str, message: str) -> None:
    assert errors(tmp_path, f"{line}\nproject: demo\n") == [message]


@pytest.mark.parametrize("field,value", [("user", "true"), ("python", "yes")])
def test_a_boolean_is_no_user_or_version(tmp_path: Path, field: str, value: str) -> None:
    (message,) = errors(tmp_path, ENV.replace('python: "3.11"', "requirements: []").format(line=f"{field}: {value}"))
    kinds = {"user": "a string or a whole number", "python": "a string or a number"}[field]
    assert message == (f"dockwright.yaml:6:{len(field) + 7}: '{field}' in environment 'base' must be {kinds}, not a "
                       f"boolean (YAML read {value} as a boolean; quote it: \"{value}\")")


@pytest.mark.parametrize("text", ["!foo {a: 1}", "!foo [1]", "!foo x"])
def test_a_custom_tag_is_the_same_error_on_any_value(tmp_path: Path, text: str) -> None:
    assert errors(tmp_path, f"version: 1\nproject: demo\ndescription: {text}\n") == [
        "dockwright.yaml:3:14: cannot read value: tag '!foo' is not supported (write a plain value, list or mapping, "
        "without the tag)"]


@pytest.mark.parametrize(("text", "message"), [
    ("!!binary aGVsbG8=", "cannot read value: tag '!!binary' is not supported (write a plain value, list or mapping, "
                          "without the tag)"),
    ("!!python/name:os.system x", "cannot read value: tag '!!python/name:os.system' is not supported (write a plain "
                                  "value, list or mapping, without the tag)"),
    ("=", "cannot read value '=' (quote it to make it a string)"),  # YAML 1.1's untagged "value" key
])
def test_a_scalar_yaml_cannot_give_as_plain_text_is_refused_before_it_is_built(tmp_path: Path, text: str,
                                                                               message: str) -> None:
    assert errors(tmp_path, f"version: 1\nproject: demo\ndescription: {text}\n") == [
        f"dockwright.yaml:3:14: {message}"]


@pytest.mark.parametrize(("text", "value"), [("!!str 3.10", "3.10"), ("!!int 12", 12), ("!!float 1", 1.0),
                                             ("!!bool true", True), ("!!null ''", None)])
def test_the_core_schemas_own_tags_read_as_the_plain_values(text: str, value: object, tmp_path: Path) -> None:
    from compiler.errors import Collector
    from compiler.load import parse

    sink = Collector()
    assert parse(f"v: {text}\n", tmp_path / "x.yaml", sink).data == {"v": value}
    assert not sink.errors


@pytest.mark.parametrize("text", ["!!set {a, b}", "!!omap [a: 1]"])
def test_set_and_omap_are_refused(tmp_path: Path, text: str) -> None:
    tag = text.split()[0]
    assert errors(tmp_path, f"version: 1\nproject: demo\ndescription: {text}\n") == [
        f"dockwright.yaml:3:14: cannot read value: tag '{tag}' is not supported (write a plain value, list or mapping, "
        "without the tag)"]


QUOTE = 'write the version in quotes, like python: "3.10"'


@pytest.mark.parametrize("value,message", [
    ("3.1", f"invalid Python version 3.1: YAML reads it as a number in environment 'base' (dockwright knows versions "
            f"3.8 to 3.14; {QUOTE})"),
    ("3", f"invalid Python version 3: YAML reads it as a number in environment 'base' (dockwright knows versions "
          f"3.8 to 3.14; {QUOTE})"),
    ('"3.7"', "unknown Python version '3.7' in environment 'base' (dockwright knows versions 3.8 to 3.14)"),
    ('"3.15"', "unknown Python version '3.15' in environment 'base' (dockwright knows versions 3.8 to 3.14)"),
    ('"3.9.x"', "invalid Python version '3.9.x' in environment 'base' (write it like \"3.11\")"),
])
def test_python_versions_are_released_minors(tmp_path: Path, value: str, message: str) -> None:
    text = f"version: 1\nproject: demo\nenvironments:\n  base:\n    python: {value}\n"
    assert errors(tmp_path, text) == [f"dockwright.yaml:5:13: {message}"]


@pytest.mark.parametrize("value,image", [("3.10", "python:3.10-slim"), ("3.8", "python:3.8-slim"),
                                         ('"3.14"', "python:3.14-slim"), ('"3.12.1"', "python:3.12.1-slim")])
def test_python_versions_that_compile(tmp_path: Path, value: str, image: str) -> None:
    main = tmp_path / "dockwright.yaml"
    main.write_text(f"version: 1\nproject: demo\nenvironments:\n  base:\n    python: {value}\n", encoding="utf-8")
    base = compile_project(main).plan.environments["base"].base
    assert base is not None and base.value.image == image


def test_empty_sections_in_included_files(tmp_path: Path) -> None:
    files = {"a.yaml": "environments:\nintegrations: {}\n", "b.yaml": "environments:\n  other: {extends: base}\n"}
    main = tmp_path / "dockwright.yaml"
    for rel, content in files.items():
        (tmp_path / rel).write_text(content, encoding="utf-8")
    main.write_text("version: 1\nproject: demo\ninclude: [a.yaml, b.yaml]\nenvironments:\n  base: {python: '3.11'}\n"
                    "runner: {environment: other}\n", encoding="utf-8")
    assert sorted(compile_project(main).project.environments) == ["base", "other"]
    (tmp_path / "c.yaml").write_text("environments:\n  other: {python: '3.11'}\n", encoding="utf-8")
    main.write_text("version: 1\nproject: demo\ninclude: [c.yaml]\nenvironments:\n", encoding="utf-8")
    assert sorted(compile_project(main).project.environments) == ["other"]


def test_a_section_of_the_wrong_kind_in_an_included_file_is_located_there(tmp_path: Path) -> None:
    text = "version: 1\nproject: demo\ninclude: [a.yaml]\nenvironments:\n  base: {python: '3.11'}\n"
    assert errors(tmp_path, text, {"a.yaml": "environments:\npipelines: []\n"}) == [
        "a.yaml:2:12: 'pipelines' must be a mapping of names to entries, not a list (write pipelines: {name: {...}}, "
        "or remove it)"]


@pytest.mark.parametrize("ref", ["python@", "python:3.11-slim@", "python@sha256:", "python:3.11@sha256:abc"])
def test_an_image_reference_with_an_at_sign_names_a_whole_digest(tmp_path: Path, ref: str) -> None:
    got = errors(tmp_path, f"""
        version: 1
        project: p
        environments:
          base: {{parent_image: "{ref}"}}
        runner: {{environment: base}}
        """)
    assert got == [f"dockwright.yaml:5:24: invalid image reference '{ref}' in environment 'base' "
                   "(write name@sha256: and the digest's 64 hex digits (or name:tag@sha256:...))"]
