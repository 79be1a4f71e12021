"""A user mistake is a ConfigError whose diagnostics are all located (`file:line:col`, the offending line, a
caret), never any other exception: random YAML-ish text and bytes, deep nesting, mutations of a valid project,
and minimal reproducers of bugs these properties once found (now fixed). No example is discarded for crashing;
every run is deterministic (derandomize, no database)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.dockerfile_check import check_output
from tests.property_support import (
    FIXTURE_FILES, PARENT_USERS, PROJECT_FILE, compile_text, located_errors, outcome, project_dir, props)
from tests.strategies import PREFIX, YAML_TOKENS, junk, token_text, tricky, yamlish_text


@props(800)
@given(text=yamlish_text)
def test_random_text_is_compiled_or_located(text: str) -> None:
    with project_dir(text) as main:
        compiled = outcome(main)
        if compiled is not None:
            check_output(compiled, PARENT_USERS)


BAD_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x80",
             b"\xef\xbb\xbf", b"\xff\xfe", b"\x00"]


@st.composite
def yamlish_bytes(draw: Any) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return bytes(draw(st.binary(max_size=200)))
    base = (PREFIX if kind == 2 else "") + draw(token_text)
    data = base.encode("utf-8")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:]
    return data


@props(300)
@given(data=yamlish_bytes())
def test_random_bytes_are_compiled_or_located(data: bytes) -> None:
    with project_dir(data) as main:
        compiled = outcome(main)
        if compiled is not None:
            check_output(compiled, PARENT_USERS)


def _deep(kind: int, n: int) -> str:
    if kind == 0:
        return "x: " + "[" * n + "]" * n
    if kind == 1:
        return "x: " + "{a: " * n + "1" + "}" * n
    if kind == 2:
        return "".join(" " * i + "k:\n" for i in range(n))
    if kind == 3:
        return "x:\n" + "".join("  " * (i + 1) + "- \n" for i in range(n))
    return "environments:\n  base:\n    env: " + "[" * n + "]" * n


@props(30)
@given(kind=st.integers(0, 4), n=st.integers(50, 3000), prefix=st.booleans())
def test_deep_nesting_is_located(kind: int, n: int, prefix: bool) -> None:
    # Depths around the switch from libyaml to the pure-Python parser (500 open brackets) are
    # included; far deeper nesting is test_regression_very_deep_nesting_is_a_config_error.
    text = ("version: 1\nproject: demo\n" if prefix else "") + _deep(kind, n) + "\n"
    with project_dir(text) as main:
        assert outcome(main) is None



BASE_PROJECT = textwrap.dedent("""\
    version: 1
    project: churn
    registry: localhost:5000/ml
    integrations:
      sklearn:
        requirements: ["scikit-learn>=1.4,<2"]
        apt_packages: [libgomp1]
        env: {OMP_NUM_THREADS: "1"}
    environments:
      base:
        python: "3.11"
        installer: pip
        installer_args: [--no-deps]
        apt_packages: [git]
        requirements: ["pandas==2.2.2"]
        requirements_files: [requirements.txt]
        integrations: [sklearn]
        env: {PYTHONUNBUFFERED: "1", GREETING: 'say "hi" $(whoami) \\ done'}
        build_args: {VERSION: "1.0"}
        user: app
        workdir: /app
        copy: [src/, {from: conf/prod.yaml, to: /app/conf.yaml}, {from: my file.txt, to: data/}]
        run: ["echo ready", "printf 'a\\\\nb' > /tmp/x"]
        entrypoint: [python, -m, app]
        cmd: ["--port", "8080"]
        labels: {team: ml, org.opencontainers.image.title: "churn base"}
        checks: ["python -c 'import pandas'"]
      trainer:
        extends: base
        requirements: ["torch==2.3.0"]
        env: {STAGE: train}
        run: ["echo train"]
      custom:
        dockerfile: docker/base.Dockerfile
        context: .
        env: {KIND: custom}
    runner: {environment: base}
    server: {environment: custom, settings: {env: {ROLE: server}}}
    pipelines:
      training:
        environment: base
        steps:
          load: {}
          train: {after: [load], environment: trainer}
          evaluate:
            after: [train]
            settings: {requirements: ["matplotlib==3.9.0"], env: {STEP: evaluate}}
    builders:
      local: {type: docker}
    default_builder: local
""")


def test_base_project_compiles_and_reads_back() -> None:
    with project_dir(BASE_PROJECT, FIXTURE_FILES) as main:
        compiled = outcome(main)
        assert compiled is not None
        check_output(compiled, PARENT_USERS)
        assert {"base", "trainer", "custom.parent", "custom"} <= set(compiled.plan.images)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _container(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _typo(draw: Any, word: str) -> str:
    word = str(word)
    i = draw(st.integers(0, max(len(word) - 1, 0)))
    op = draw(st.integers(0, 3))
    if op == 0 or len(word) < 2:
        return word[:i] + draw(st.sampled_from("abcxyz_-")) + word[i:]
    if op == 1:
        return word[:i] + word[i + 1:]
    if op == 2 and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word.upper() if word != word.upper() else word + "s"


@st.composite
def mutated_projects(draw: Any) -> str:
    data = yaml.safe_load(BASE_PROJECT)
    data_ops = draw(st.lists(st.sampled_from(["delete", "rename", "retype"]), max_size=3))
    for op in data_ops:
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        holder = _container(data, path)
        key = path[-1]
        if op == "delete":
            del holder[key]
        elif op == "rename" and isinstance(holder, dict):
            new = _typo(draw, key)
            holder[new] = holder.pop(key)
        else:
            holder[key] = draw(junk)
    text = BASE_PROJECT if not data_ops else yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans()))
    lines = text.split("\n")
    for _ in range(draw(st.integers(0 if data_ops else 1, 4))):
        op = draw(st.sampled_from(["duplicate", "insert", "indent", "delete", "swap", "splice"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            lines = [""]
        if op == "duplicate":
            lines.insert(i + 1, lines[i])
        elif op == "insert":
            indent = draw(st.sampled_from(["", "  ", "    ", "      ", "\t"]))
            lines.insert(i, indent + draw(st.one_of(token_text, tricky)))
        elif op == "indent":
            stripped = lines[i].lstrip(" ")
            width = len(lines[i]) - len(stripped)
            lines[i] = draw(st.sampled_from([" " * max(width - 2, 0), " " * (width + 2), " " * (width + 1),
                                             "\t" + lines[i], " " * width + "\t"])) + stripped
        elif op == "delete":
            del lines[i]
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        else:
            line = lines[i]
            j = draw(st.integers(0, len(line)))
            lines[i] = line[:j] + draw(st.sampled_from(YAML_TOKENS)) + line[j + draw(st.integers(0, 2)):]
    return "\n".join(lines)


@props(450)
@given(text=mutated_projects())
def test_mutated_projects_are_compiled_or_located(text: str) -> None:
    with project_dir(text, FIXTURE_FILES) as main:
        compiled = outcome(main)
        if compiled is not None:
            check_output(compiled, PARENT_USERS)


@pytest.mark.parametrize("line", ["project: 2001-13-45", "project: 0000-01-01", "project: !!int abc",
                                  "project: !!float abc", "project: !!timestamp abc", "project: !!bool abc",
                                  "project: !!bool", "project: !!int", "project: !!float", "project: !!int +"])
def test_regression_bad_scalars_are_located(line: str) -> None:
    """A scalar YAML cannot construct (impossible date, bad !!int/!!float/!!timestamp) is a located
    error at the value, not a ValueError/AttributeError traceback from the YAML constructor."""
    (d,) = [d for d in located_errors(f"version: 1\n{line}\n") if d.message.startswith("cannot read value")]
    assert d.location is not None and (d.location.line, d.location.col) == (2, 10), d.format()


@pytest.mark.parametrize("text", ["version: 1\n", "project: demo\n"])
def test_regression_missing_top_level_key_is_located(text: str) -> None:
    """A missing top-level key ('version', 'project') is reported at the top of the main file
    (check_config_error requires a location for every diagnostic)."""
    (d,) = located_errors(text)
    assert d.message.startswith("missing required key") and d.location is not None, d.format()
    assert (d.location.line, d.location.col) == (1, 1), d.format()


@pytest.mark.parametrize("snippet", ["project: null", "registry: null", "output: null",
                                     "environments: {base: {parent_image: null}}",
                                     "environments: {base: {python: '3.11', user: null}}",
                                     "environments: {base: {python: '3.11', run: [null]}}",
                                     "environments: {base: {python: '3.11', copy: [null]}}",
                                     "environments: {base: {python: '3.11', apt_packages: [null]}}"])
def test_regression_null_values_are_located(snippet: str) -> None:
    """A null where a non-nullable value belongs is a located error, not a TypeError/AttributeError
    from a schema check_with function run on None."""
    text = "version: 1\n" + ("" if snippet.startswith("project") else "project: demo\n") + snippet + "\n"
    assert located_errors(text)


def test_regression_copy_entry_unknown_key_is_located_at_the_key() -> None:
    """An unknown key in a copy entry is located at that key, not at the entry's first line."""
    text = textwrap.dedent("""\
        version: 1
        project: demo
        runner: {environment: base}
        environments:
          base:
            python: "3.11"
            copy:
              - from: conf/prod.yaml
                mode: "0644"
    """)
    (d,) = located_errors(text, FIXTURE_FILES)
    assert d.message.startswith("unknown key 'mode' in a copy entry"), d.format()
    assert d.location is not None and (d.location.line, d.location.col) == (9, 9), d.format()


def test_regression_copy_entry_without_to_is_valid() -> None:
    """`{from: x}` without `to` means the same as the string form `x`."""
    text = textwrap.dedent("""\
        version: 1
        project: demo
        runner: {environment: base}
        environments:
          base: {python: "3.11", copy: [{from: conf/prod.yaml}]}
          same: {python: "3.11", copy: [conf/prod.yaml]}
        server: {environment: same}
    """)
    compiled = compile_text(text, FIXTURE_FILES)
    assert compiled is not None
    check_output(compiled, PARENT_USERS)
    specs = [compiled.plan.images[compiled.plan.env_image[name]].spec for name in ("base", "same")]
    assert specs[0] is not None and specs[1] is not None and specs[0].copy == specs[1].copy


def test_regression_recursive_merge_is_located() -> None:
    """A mapping that merges itself (`&a {<<: *a}`) is a located error, not a RecursionError."""
    (d,) = [d for d in located_errors("version: 1\nproject: demo\na: &a {<<: *a}\n") if "recursive" in d.message]
    assert d.location is not None and d.location.line == 3, d.format()


def test_regression_step_image_collides_with_custom_parent() -> None:
    """Custom parent '<env>.parent' and step image '<pipeline>.<step>' = 'base.parent' no longer clash
    (was a NetworkXUnfeasible traceback): the custom parent becomes 'base.parent-2'."""
    text = textwrap.dedent("""\
        version: 1
        project: demo
        environments:
          base: {dockerfile: docker/base.Dockerfile}
        pipelines:
          base:
            environment: base
            steps:
              parent: {settings: {env: {A: "1"}}}
    """)
    compiled = compile_text(text, FIXTURE_FILES)
    assert compiled is not None
    check_output(compiled, PARENT_USERS)
    images = compiled.plan.images
    assert not images["base.parent-2"].generated
    assert images[compiled.plan.env_image["base"]].parent == "base.parent-2"
    assert compiled.plan.env_image["base.parent"] == "base.parent" and images["base.parent"].generated


def test_regression_step_settings_collides_with_runner_settings() -> None:
    """Step 'settings' of pipeline 'runner' and the runner's own settings would both be environment
    'runner.settings' (one silently replaced the other): now exactly one located error."""
    text = textwrap.dedent("""\
        version: 1
        project: demo
        environments:
          base: {python: "3.11"}
        runner: {environment: base, settings: {env: {WHO: runner}}}
        pipelines:
          runner:
            environment: base
            steps:
              settings: {settings: {env: {WHO: step}}}
    """)
    (d,) = located_errors(text)
    assert d.message == ("the runner's settings image 'runner.settings' has the same name as step 'settings' "
                         "of pipeline 'runner'")
    assert d.hint == "rename that step or pipeline"
    assert d.location is not None and (d.location.line, d.location.col) == (5, 29), d.format()
    assert d.location.source_line[d.location.col - 1:].startswith("settings:")


@pytest.mark.parametrize("brk", ["\r", "\r\n", "\x85", "\u2028", "\u2029"])
def test_regression_exotic_line_breaks_locate_the_key(brk: str) -> None:
    """After a raw CR, NEL, U+2028 or U+2029 in the file, the line shown is the one libyaml counts."""
    text = f'version: 1\nproject: demo\ndescription: "a{brk}b"\nbogus: 1\n'
    (d,) = [d for d in located_errors(text) if "bogus" in d.message]
    assert d.location is not None and d.location.source_line.startswith("bogus"), d.format()
    assert (d.location.line, d.location.col) == (5, 1), d.format()


def test_regression_very_deep_nesting_is_a_config_error(tmp_path: Path) -> None:
    """30,000 nested flow collections (libyaml's composer overflowed the C stack: exit 139) are a
    ConfigError: exit 1 from the CLI, a located diagnostic, no traceback."""
    n = 30000
    (tmp_path / PROJECT_FILE).write_text("version: 1\nproject: x\nx: " + "[" * n + "]" * n + "\n")
    proc = subprocess.run([sys.executable, "-m", "compiler", "validate", "-f", str(tmp_path / PROJECT_FILE)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stderr[-500:]!r}"
    assert "Traceback" not in proc.stderr and f"{PROJECT_FILE}:1:1: error" in proc.stderr, proc.stderr[-500:]
