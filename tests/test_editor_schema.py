"""The JSON Schema for editors: generated from schemas/, committed up to date, accepting every valid
project and rejecting schema errors, with the Cerberus checks' patterns translated exactly."""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from compiler import editor_schema, schema as cerberus_schema
from compiler.errors import Collector
from helpers import tool

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "schemas" / "dockwright.schema.json"
INCLUDED = ROOT / "schemas" / "dockwright-include.schema.json"
CHECKER = tool("check-jsonschema")


def test_committed_schemas_are_up_to_date() -> None:
    assert MAIN.read_text(encoding="utf-8") == editor_schema.text(), "run: dockwright schema > schemas/dockwright.schema.json"
    assert INCLUDED.read_text(encoding="utf-8") == editor_schema.text(include=True), \
        "run: dockwright schema --include > schemas/dockwright-include.schema.json"


def test_the_command_prints_it() -> None:
    out = subprocess.run([tool("dockwright"), "schema"], capture_output=True, text=True, check=True)
    assert out.stdout == MAIN.read_text(encoding="utf-8") and out.stderr == ""
    out = subprocess.run([tool("dockwright"), "schema", "--include"], capture_output=True, text=True, check=True)
    assert out.stdout == INCLUDED.read_text(encoding="utf-8")


def _properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            found.append((f"{where}.{key}", value))
        for key, value in node.items():
            found.extend(_properties(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_properties(value, f"{where}[{i}]"))
    return found


def test_every_key_has_a_description_and_an_example() -> None:
    props = _properties(json.loads(MAIN.read_text(encoding="utf-8")))
    assert len(props) > 80
    missing = [where for where, p in props if not p.get("description") or not p.get("examples")]
    assert missing == []


def test_every_example_is_valid_under_the_schema() -> None:
    from jsonschema import Draft202012Validator

    full = json.loads(MAIN.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(full)
    for where, prop in _properties(full):
        sub = {**prop, "$defs": full["$defs"]}
        errors = list(Draft202012Validator(sub).iter_errors(prop["examples"][0]))
        assert errors == [], (where, errors[0].message)


def _check(schema_file: Path, files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHECKER, "--schemafile", str(schema_file), *map(str, files)], capture_output=True, text=True)


VALID = sorted([*ROOT.glob("examples/*/dockwright.yaml"), *ROOT.glob("tests/cases/out-*/dockwright.yaml")])


def test_valid_projects_are_accepted() -> None:
    assert len(VALID) >= 13
    result = _check(MAIN, VALID)
    assert result.returncode == 0, result.stdout + result.stderr


def test_included_files_are_accepted_by_the_include_schema() -> None:
    included = sorted(ROOT.glob("examples/platform/envs/*.yaml")) + sorted(ROOT.glob("examples/platform/pipelines/*.yaml"))
    assert len(included) == 5
    result = _check(INCLUDED, included)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _check(MAIN, included[:1]).returncode == 1  # no version/project: not a project file


@pytest.mark.parametrize("case", ["error-unknown-keys", "error-values", "error-credentials", "error-certificates"])
def test_schema_errors_are_rejected(case: str) -> None:
    result = _check(MAIN, [ROOT / "tests" / "cases" / case / "dockwright.yaml"])
    assert result.returncode == 1 and "Schema validation errors were encountered" in result.stdout, result.stdout


def test_a_typo_is_rejected_at_its_key(tmp_path: Path) -> None:
    f = tmp_path / "dockwright.yaml"
    f.write_text("version: 1\nproject: p\nenvironments:\n  base:\n    requirments: [pandas]\n")
    result = _check(MAIN, [f])
    assert result.returncode == 1 and "$.environments.base" in result.stdout and "requirments" in result.stdout


# check_with -> the Python check it translates, for the checks whose pattern is exact.
EXACT = {
    "name": lambda v: bool(cerberus_schema.NAME_RE.match(v)) and len(v) <= cerberus_schema.MAX_NAME,
    "project_name": lambda v: bool(cerberus_schema.PROJECT_RE.match(v)) and len(v) <= cerberus_schema.MAX_PROJECT,
    "env_key": lambda v: bool(cerberus_schema.ENV_KEY_RE.match(v)),
    "label_key": lambda v: bool(cerberus_schema.LABEL_KEY_RE.match(v)),
    "apt_package": lambda v: bool(cerberus_schema.APT_RE.match(v)),
    "user": lambda v: bool(cerberus_schema.USER_RE.match(v)),
    "python_version": lambda v: cerberus_schema.python_problem(v, quoted=True) is None,
    "no_proxy": lambda v: not cerberus_schema._stray_dollar(v) and bool(
        cerberus_schema.NO_PROXY_RE.match(cerberus_schema._REF_RE.sub("", v))),
}


def _json_accepts(check: str, value: str) -> bool:
    rules = editor_schema.CHECKS[check]
    pattern = rules["pattern"]
    assert pattern.endswith("$") and not pattern.endswith("\\$")
    ok = re.fullmatch(pattern[:-1] + r"\Z", value) is not None  # JavaScript's $ (no m flag) is Python's \Z
    return ok and len(value) <= rules.get("maxLength", len(value))


ALPHABET = st.sampled_from(list("abz019AZ_-.:=+~/$ {}\n@") + ["__", "--", "3.", "${X}", "$$", "3.11", "3.1"])


@pytest.mark.parametrize("check", sorted(EXACT))
@settings(max_examples=300, deadline=None)
@given(parts=st.lists(ALPHABET, max_size=12))
def test_patterns_are_exactly_the_cerberus_checks(check: str, parts: list[str]) -> None:
    value = "".join(parts)
    assert _json_accepts(check, value) == EXACT[check](value), value


@pytest.mark.parametrize("check", sorted(set(editor_schema.CHECKS) - set(EXACT)))
@settings(max_examples=200, deadline=None)
@given(parts=st.lists(ALPHABET, max_size=12))
def test_other_patterns_never_refuse_what_cerberus_accepts(check: str, parts: list[str]) -> None:
    value = "".join(parts)
    doc = _document(check, value)
    if doc is None:
        return
    sink = Collector()
    from compiler.load import parse

    located = parse(json.dumps(doc), Path("dockwright.yaml"), sink)
    cerberus_schema.validate(located, sink)
    if not sink.errors:
        rules = editor_schema.CHECKS[check]
        pattern = rules["pattern"][:-1] + r"\Z"
        assert re.fullmatch(pattern, value) is not None, value
        if "not" in rules:
            assert re.fullmatch(rules["not"]["pattern"][:-1] + r"\Z", value) is None, value


def _document(check: str, value: str) -> dict[str, Any] | None:
    env = {"single_line": {"env": {"A": value}}, "installer_arg": {"installer_args": [value]},
           "argument": {"cmd": [value]}, "command": {"run": [value]}, "requirement": {"requirements": [value]},
           "project_path": {"local_packages": [value]}, "project_file": {"requirements_files": [value]},
           "abs_path": {"workdir": value}, "certificate": {"certificates": [value]},
           "image_ref": {"parent_image": value}, "index_url": {"index_url": value}}
    if check in env:
        return {"version": 1, "project": "p", "environments": {"e": env[check]}}
    if check in ("output_dir", "registry"):
        return {"version": 1, "project": "p", check.replace("_dir", ""): value}
    if check == "engine_url":
        return {"version": 1, "project": "p", "builders": {"b": {"type": "docker", "url": value}}}
    if check == "proxy_url":
        return {"version": 1, "project": "p", "builders": {"b": {"type": "docker", "proxy": {"http": value}}}}
    return None


def test_every_top_level_key_is_either_includable_or_project_only() -> None:
    """Each key of the project schema is in exactly one of the two sets, so a new key cannot slip into included
    files unchecked; the include schema lists exactly the includable ones."""
    from compiler.load import INCLUDE_KEYS, PROJECT_ONLY_KEYS
    keys = set(cerberus_schema.source_schemas()["project"])
    assert set(INCLUDE_KEYS) | PROJECT_ONLY_KEYS == keys
    assert not set(INCLUDE_KEYS) & PROJECT_ONLY_KEYS
    assert set(editor_schema.json_schema(include=True)["properties"]) == set(INCLUDE_KEYS)


_ONLY_VALUES = {"project": "x", "description": "d", "output": "out", "registry": "localhost:5000/a",
                "runner": "{environment: base}", "server": "{environment: base}", "default_builder": "local",
                "platforms": "[linux/amd64]", "zenml": "{version: 0.98.0}"}


@pytest.mark.parametrize("key", sorted(_ONLY_VALUES))
def test_a_project_only_key_in_an_included_file_is_a_located_error(key: str, tmp_path: Path) -> None:
    from compiler.load import PROJECT_ONLY_KEYS
    from helpers import invoke
    assert set(_ONLY_VALUES) == PROJECT_ONLY_KEYS
    (tmp_path / "dockwright.yaml").write_text(
        "version: 1\nproject: p\ninclude: [more.yaml]\nenvironments:\n  base: {base: 'python:3.12-slim'}\n",
        encoding="utf-8")
    (tmp_path / "more.yaml").write_text(f"version: 1\n{key}: {_ONLY_VALUES[key]}\n", encoding="utf-8")
    result = invoke("compile", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"more.yaml:2:1: error: '{key}' can only be set in the project file, not in an included file "
        f"(move it to dockwright.yaml)\n    2 | {key}: {_ONLY_VALUES[key]}\n      | ^\n"
        "1 error; nothing was written\n")


@pytest.mark.parametrize(("given", "said"), [("true", "true"), ("", "null"), ("'1'", "'1'"), ("2", "2")])
def test_an_included_files_other_version_is_said_as_yaml_spells_it(given: str, said: str, tmp_path: Path) -> None:
    """`version: true` is no 1 (though Python's True == 1), and the message spells values as YAML does."""
    from helpers import invoke
    (tmp_path / "dockwright.yaml").write_text(
        "version: 1\nproject: p\ninclude: [more.yaml]\nenvironments:\n  base: {python: '3.12'}\n", encoding="utf-8")
    (tmp_path / "more.yaml").write_text(f"version: {given}\n", encoding="utf-8")
    result = invoke("compile", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"more.yaml:1:{10 if given else 9}: error: included file says version {said} but the project says 1 "
        "(write version: 1, or leave version out of it)")


@settings(max_examples=400, deadline=None)
@given(doc=st.deferred(lambda: _documents()))
def test_the_schema_never_refuses_what_cerberus_accepts(doc: dict[str, Any]) -> None:
    """Documents made from the Cerberus schemas (every key, nulls, wrong types): each one Cerberus finds nothing
    wrong with, the JSON Schema accepts too (it may accept more: what it cannot express is listed in the docs)."""
    with pytest.MonkeyPatch.context() as mp:
        accepted = _cerberus_errors(doc, mp) == []
    if accepted:
        errors = [e.message for e in _validator().iter_errors(doc)]
        assert errors == [], doc


def _documents() -> st.SearchStrategy[dict[str, Any]]:
    from test_schema_sure import documents

    return documents()


def _cerberus_errors(doc: dict[str, Any], mp: pytest.MonkeyPatch) -> list[str]:
    from test_schema_sure import _cerberus_errors as errors

    return errors(doc, mp)


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(editor_schema.json_schema())


def _nullable_rules(rules: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every rule in a Cerberus schema (fields, list items, mapping values and keys) that says nullable."""
    found = []
    if isinstance(rules, dict) and isinstance(rules.get("type"), (str, list)):
        if rules.get("nullable"):
            found.append((where, rules))
        for key in ("valuesrules", "keysrules"):
            if key in rules:
                found += _nullable_rules(rules[key], f"{where}.{key}")
        nested = rules.get("schema")
        if isinstance(nested, dict):
            found += _nullable_rules(nested, f"{where}.schema")
    elif isinstance(rules, dict):
        for name, rule in rules.items():
            found += _nullable_rules(rule, f"{where}.{name}")
    return found


def test_every_nullable_rule_accepts_null() -> None:
    """Where Cerberus takes null (an empty `load:` step, `settings:`, a list left empty), so does the JSON
    Schema: a named schema beside the rule (a $ref) must not add its "object" to it."""
    from jsonschema import Draft202012Validator

    defs = editor_schema.json_schema()["$defs"]
    rules = [pair for name, source in cerberus_schema.source_schemas().items()
             for pair in _nullable_rules(source, name)]
    assert len(rules) > 30
    refused = [where for where, rule in rules
               if not Draft202012Validator({**editor_schema._rule(rule), "$defs": defs}).is_valid(None)]
    assert refused == []
