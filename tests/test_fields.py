"""The table of environment keys (compiler/fields.py) against everything that must agree with it, and the merge
rules it names, as properties over fragments generated from the table itself."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import plan
from compiler.fields import BY_NAME, FIELDS, Field, Layer, Merge, Read, requirement_name
from compiler.model import EMPTY, Base, Copy, Environment, Fragment, Origin, Removal, Sourced, apply, inherit
from compiler.schema import source_schemas

# Attributes that say who a record is, not what it holds: no row of the table.
FRAGMENT_OWN = {"kind", "name", "location", "file", "extends"}
ENVIRONMENT_OWN = {"name", "kind", "location", "file", "parent", "removed"}
SCHEMA_OWN = {"extends", "description"}  # the environment keys that are no field of an effective environment
SPEC_OWN = {"from_ref", "layered", "python_setup", "as_root", "create_user", "workdir_owner", "user", "owner",
            "locked", "heavy"}  # ImageSpec fields plan.py derives itself


def names(cls: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_fragment_and_environment_field_has_one_row_and_every_row_a_field() -> None:
    assert len(BY_NAME) == len(FIELDS)
    assert names(Fragment) == set(BY_NAME) | FRAGMENT_OWN
    assert names(Environment) == set(BY_NAME) | ENVIRONMENT_OWN


def test_the_rows_name_exactly_the_schemas_environment_keys() -> None:
    keys = [k for f in FIELDS for k in f.keys]
    assert len(keys) == len(set(keys))
    assert set(keys) | SCHEMA_OWN == set(source_schemas()["environment"])


def test_every_field_an_image_says_is_an_image_spec_field() -> None:
    said = {f.name for f in FIELDS if f.layer not in (Layer.NONE, Layer.OWN)}
    assert names(plan.ImageSpec) == said | SPEC_OWN
    assert set(plan._RENDER) <= said


def test_each_row_has_what_its_rules_need() -> None:
    for f in FIELDS:
        assert (f.identity is not None) == (f.merge in (Merge.BY_NAME, Merge.UNION)), f.name
        assert f.read not in (Read.MAP, Read.SECRETS) or f.merge is Merge.BY_KEY, f.name
        assert f.repeat is None or f.read is Read.LIST, f.name
        assert f.files is None or BY_NAME[f.files].merge is Merge.APPEND, f.name
        if f.layer is Layer.PARENT:
            assert f.match is not None, f.name  # the parent's image has it only if it is the same


# -- the merge rules, on fragments generated from the table ------------------------------------------------

WHERE = Origin(None, ("written",))
texts = st.sampled_from(["a", "b", "c", "d"])
SAMPLES = {requirement_name: ["numpy", "numpy==1.26", "NumPy>=2", "pandas", "scikit_learn<2", "Scikit-Learn"]}


def sourced(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Sourced[Any]]:
    return values.map(lambda v: Sourced(v, WHERE))


def entries(f: Field) -> st.SearchStrategy[Any]:
    """A strategy for what one declaration says for field f, by the row's read rule."""
    words = st.lists(texts, max_size=3).map(tuple)
    if f.read is Read.BASE:
        return st.none() | sourced(st.sampled_from([Base(image="python:3.11-slim"), Base(dockerfile="d")]))
    if f.read is Read.TEXT:
        return st.none() | sourced(texts)
    if f.read in (Read.WORDS, Read.NAMES):
        return st.none() | sourced(words)
    if f.read is Read.FLAG:
        return st.none() | sourced(st.booleans())
    if f.read in (Read.MAP, Read.SECRETS):
        return st.dictionaries(texts, sourced(st.none() | texts), max_size=3).map(lambda d: tuple(d.items()))
    if f.read is Read.COPY:
        return st.lists(sourced(st.builds(Copy, texts, st.none() | texts)), max_size=3).map(tuple)
    items = st.sampled_from(SAMPLES[f.identity]) if f.identity in SAMPLES else texts
    return st.lists(sourced(items), max_size=3, unique_by=lambda s: (f.identity or str)(s.value)).map(tuple)


@st.composite
def fragments(draw: Any) -> Fragment:
    values = {f.name: draw(entries(f)) for f in FIELDS if f.name != "requirements_files"}  # no files: no reads
    return Fragment(kind="environment", name="x", location=None, file="f.yaml", **values)


def expected(f: Field, before: Any, said: Any) -> Any:
    """The rule of f, written out plainly: what the merged value holds (values only)."""
    if f.merge is Merge.CHILD_WINS:
        chosen = said if said is not None else before
        return chosen.value if chosen is not None else None
    if f.merge is Merge.BY_KEY:
        out = {k: v.value for k, v in before.items()}
        for key, value in said:
            out.pop(key, None) if value.value is None else out.__setitem__(key, value.value)
        return out
    if f.mapping:
        out = {k: v.value for k, v in before.items()}
        out.update({f.identity(item.value): item.value for item in said})  # type: ignore[misc]
        return out
    out_list = [item.value for item in before]
    return out_list + [v for v in dict.fromkeys(item.value for item in said) if v not in out_list]


def plain(f: Field, value: Any) -> Any:
    if f.merge is Merge.CHILD_WINS:
        return value.value if value is not None else None
    if f.mapping:
        return {k: v.value for k, v in value.items()}
    return [item.value for item in value]


@settings(max_examples=300, derandomize=True, database=None)
@given(first=fragments(), second=fragments())
def test_apply_merges_each_field_by_its_rule_and_inherit_marks_the_way(first: Fragment, second: Fragment) -> None:
    parent = apply(EMPTY, first, file_requirements={})
    start = inherit(parent, step="extends p")
    child = apply(start, second, file_requirements={})
    removed = set()
    for f in FIELDS:
        assert plain(f, getattr(child, f.name)) == expected(f, getattr(parent, f.name), getattr(second, f.name)), f
        inherited = getattr(start, f.name)
        items = [inherited] if f.merge is Merge.CHILD_WINS else (
            list(inherited.values()) if f.mapping else list(inherited))
        assert all(i.origin.via[0] == "extends p" for i in items if i is not None), f.name
        if f.merge is Merge.BY_KEY:
            removed |= {Removal(f.name, k) for k, v in getattr(second, f.name)
                        if v.value is None and k in getattr(parent, f.name)}
    assert child.removed == removed and start.removed == frozenset()
