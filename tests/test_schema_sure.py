"""compile_project skips Cerberus for a document schema.surely_valid accepts (and, inside Cerberus, for the
entries of a large mapping that surely pass): that must never hide an error. Documents are generated from the
schemas themselves (every key, junk beside valid values), and each one the shortcut accepts must be one
Cerberus finds nothing wrong with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from helpers import EXAMPLES

from compiler import schema
from compiler.errors import Collector
from compiler.load import Located, load_project

STRINGS = ["a", "base", "x-1", "a_b", "UPPER", "", " ", "a b", "3.11", "3.10", "2.7", "/app", "app", "0", "rel/dir",
           "../up", "/etc/../x", "*.txt", "conf/a.yaml", "python:3.11-slim", "Python:3", "pandas==2.2.2", "-r x.txt",
           "./pkg", "http://pypi.example.com/simple", "https://u:p@h.example/x", "tcp://h:2375", "ssh://u@h",
           "unix:///var/run/docker.sock", "line\nbreak", "tab\there", "$HOME", "${TOKEN}@x", "A_B", "1ABC", "docker",
           "podman", "buildah", "pip", "uv", "linux/amd64", "localhost:5000/ml", "libgomp1", "git=1:2.39", "~/.netrc",
           "--no-cache-dir", "--index-url=http://u:p@x/", "org.label", "x" * 70, "nul\x00", "-x", "é", "yes"]
SCALARS = st.one_of(st.sampled_from(STRINGS), st.sampled_from([None, 0, 1, -1, 3.11, 1.5, True, False]))


def _typed(names: list[str]) -> st.SearchStrategy[Any]:
    """Scalars of the types a rule names (most documents are mostly well typed), else any scalar."""
    pools = {"string": st.sampled_from(STRINGS), "integer": st.sampled_from([0, 1, 5]),
             "float": st.sampled_from([3.11, 1.5]), "boolean": st.booleans()}
    typed = [pools[n] for n in names if n in pools]
    return st.one_of(*typed) if typed else SCALARS


def _value(rules: Any, depth: int) -> st.SearchStrategy[Any]:
    """Values for one field's rules: the shapes its type allows, and now and then any scalar (wrong types too)."""
    names = rules.get("type", [])
    names = [names] if isinstance(names, str) else list(names)
    options: list[st.SearchStrategy[Any]] = [_typed(names), _typed(names), _typed(names), SCALARS]
    if "allowed" in rules:
        options = [st.sampled_from(list(rules["allowed"])), *options]
    inner = rules.get("schema")
    inner = schema.source_schemas()[inner] if isinstance(inner, str) else inner
    if "list" in names and depth < 4:
        items = _value(inner, depth + 1) if isinstance(inner, dict) and "type" in inner else SCALARS
        options.append(st.lists(items, max_size=3))
    if "dict" in names and depth < 4:
        if "keysrules" in rules or "valuesrules" in rules:
            values = _value(rules.get("valuesrules", {}), depth + 1)
            keys = st.sampled_from(["a", "base", "A_B", "team", "org.label", "UPPER", "a b", "", "1x"])
            options.append(st.dictionaries(keys, values, max_size=3))
        elif isinstance(inner, dict):
            options.append(_mapping(inner, depth + 1))
    return st.one_of(*options)


@st.composite
def _fields(draw: st.DrawFn, fields: dict[str, Any], depth: int) -> dict[str, Any]:
    """The required keys (now and then one left out), up to three others, now and then an unknown one."""
    keys = [k for k, r in fields.items() if r.get("required")]
    if keys and draw(st.integers(0, 9)) == 0:
        keys.pop(draw(st.integers(0, len(keys) - 1)))
    keys += draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=3))
    out = {k: draw(_value(fields[k], depth)) for k in dict.fromkeys(keys)}
    if draw(st.integers(0, 9)) == 0:
        out[draw(st.sampled_from(["bogus", "steps", "1"]))] = 1
    return out


def _mapping(fields: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    return _fields(fields, depth)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(_mapping(schema.source_schemas()["project"], 0))
    if draw(st.booleans()):  # mostly valid top-level keys, so that the interesting part is deeper
        doc.update({"version": 1, "project": "p"})
    return doc


def _cerberus_errors(data: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sink = Collector()
    with monkeypatch.context() as m:
        m.setattr(schema, "_doubtful", lambda rules, value, keys: value)  # Cerberus alone, every entry
        schema._cerberus_validate(Located(data), sink)
    return [d.message for d in sink.errors]


@settings(max_examples=600, deadline=None)
@given(documents())
def test_a_document_the_shortcut_accepts_has_no_cerberus_error(doc: dict[str, Any]) -> None:
    sure = schema.surely_valid(doc)
    event(f"surely valid: {sure}")
    if sure:
        with pytest.MonkeyPatch.context() as mp:
            assert _cerberus_errors(doc, mp) == []


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(["1x", "a b", "", "x" * 30, "é"]), st.from_regex(r"[A-Za-z_][A-Z0-9_.]{0,5}", fullmatch=True)), SCALARS, min_size=16, max_size=40))
def test_entries_left_out_of_a_large_mapping_have_no_error(env: dict[str, Any]) -> None:
    """The same inside Cerberus: entries of a mapping of 16 or more that _doubtful leaves out pass."""
    doc = {"version": 1, "project": "p", "environments": {"e": {"env": env, "labels": env, "build_args": env}}}
    sink = Collector()
    schema._cerberus_validate(Located(doc), sink)
    with pytest.MonkeyPatch.context() as mp:
        assert [d.message for d in sink.errors] == _cerberus_errors(doc, mp)


@pytest.mark.parametrize("example", ["quickstart", "platform", "ml-training"])
def test_the_examples_take_the_shortcut(example: str) -> None:
    assert schema.surely_valid(load_project(EXAMPLES / example / "dockwright.yaml").doc.data)


def test_an_invalid_document_is_never_sure() -> None:
    base = load_project(Path(EXAMPLES / "quickstart" / "dockwright.yaml")).doc.data
    assert schema.surely_valid(base)
    for broken in ({**base, "bogus": 1}, {**base, "version": 2}, {k: v for k, v in base.items() if k != "project"},
                   {**base, "environments": {"Bad Name": {}}}, {**base, "output": "."}):
        assert not schema.surely_valid(broken), broken


def test_compiling_a_valid_project_imports_no_cerberus() -> None:
    """Cerberus (whose import reads every installed package's metadata) is imported for a doubtful document only."""
    code = ("import sys; from compiler.cli import main\n"
            "try:\n    main(['compile', '--check', '-f', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cerberus'))")
    for example in ("quickstart", "platform", "ml-training"):
        out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / example)], capture_output=True, text=True,
                             check=True)
        assert out.stdout.splitlines()[-1] == "[]", example


def test_an_invalid_project_is_reported_by_cerberus(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text("version: 1\nproject: p\nenvironments:\n  base: {python: '3.11', "
                                              "bogus: 1}\n")
    sink = Collector()
    broken = schema.validate(load_project(tmp_path / "dockwright.yaml").doc, sink)
    assert broken == {("environments", "base")}
    assert [d.message for d in sink.errors] == ["unknown key 'bogus' in environment 'base'"]
