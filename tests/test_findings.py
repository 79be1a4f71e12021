"""Errors as data: a check's finding (schema.Problem) and the error classes, reported the same way everywhere."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler import cli, schema
from compiler.errors import Collector, ConfigError, OutputConflict
from compiler.load import parse
from helpers import EXAMPLES, copy_project

# Every kind of value YAML reads, one of each.
VALUES: list[Any] = [None, True, 0, 3.5, "x", "", datetime.date(2024, 1, 1), [], ["x"], {}, {"a": 1}]


def _checked_fields() -> list[tuple[str, str]]:
    """(environment key, check name) for each environment key whose value is checked by a named check."""
    out = []
    for key, rules in schema.source_schemas()["environment"].items():
        inner = rules.get("schema") if rules.get("type") == "list" else rules
        if isinstance(inner, dict) and "check_with" in inner:
            out.append((key, inner["check_with"]))
    return out


def test_every_named_check_declares_what_it_reads() -> None:
    names = {name for _, name in _checked_fields()}
    assert names and names <= set(schema._ACCEPTS)
    assert schema._ACCEPTS["copy_item"] == (str, dict)
    assert schema._ACCEPTS["env_key"] == (str,)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(_checked_fields()), value=st.sampled_from(VALUES), in_list=st.booleans())
def test_a_value_of_any_type_is_reported_once_and_never_breaks_a_check(field: tuple[str, str], value: Any,
                                                                       in_list: bool) -> None:
    """A check reads only the types it declares: a value of any other type has one error (its type or null),
    not a second one from the check, and no check ever fails on a type it did not expect."""
    key, _ = field
    entry = [value] if in_list else value
    doc = parse(f"version: 1\nproject: demo\nenvironments:\n  base:\n    python: '3.11'\n    {key}: X\n",
                Path("/p/dockwright.yaml"), Collector())
    doc.data["environments"]["base"][key] = entry
    sink = Collector()
    schema.validate(doc, sink)
    at = [d for d in sink.errors if f"'{key}" in d.message or "copy" in d.message or d.message.startswith(key)]
    by_place = [(d.location, d.message) for d in sink.errors]
    assert len(by_place) == len(set(by_place)), by_place
    assert len(sink.errors) <= 1 or all("copy" in d.message for d in at), [d.message for d in sink.errors]


def test_a_problem_places_where_the_value_is_between_its_parts() -> None:
    problem = schema.requirement_problem("./libs/x")
    assert problem is not None
    assert problem.message(" in environment 'base'") == "requirement './libs/x' in environment 'base' is a local path"
    assert problem.message() == "requirement './libs/x' is a local path"


def test_a_copy_entry_problem_points_at_its_key() -> None:
    text = "version: 1\nproject: demo\nenvironments:\n  base:\n    python: '3.11'\n    copy:\n      - {from: 'a*', to: /x}\n"
    doc = parse(text, Path("/p/dockwright.yaml"), Collector())
    sink = Collector()
    schema.validate(doc, sink)
    [error] = sink.errors
    assert error.location is not None and (error.location.line, error.location.col) == (7, 10)
    assert error.message == "copy source 'a*' contains a wildcard in environment 'base'"


def test_validation_keeps_no_state_between_documents() -> None:
    """`raw` (how YAML read a value) belongs to one document: a second document does not see the first's."""
    first = parse("version: 1\nproject: demo\nenvironments:\n  base:\n    python: 3.1\n", Path("/p/a.yaml"), Collector())
    second = parse("version: 1\nproject: demo\nenvironments:\n  base:\n    python: 3.1\n", Path("/p/b.yaml"), Collector())
    second.raw.clear()
    one, two = Collector(), Collector()
    schema.validate(first, one)
    schema.validate(second, two)
    assert [d.message for d in one.errors] == ["invalid Python version 3.1: YAML reads it as a number in environment 'base'"]
    assert [d.message for d in two.errors] == ["invalid Python version 3.1: YAML reads it as a number in environment 'base'"]


def test_output_conflict_is_a_config_error() -> None:
    assert issubclass(OutputConflict, ConfigError) and OutputConflict([]).exit_code == 1


def test_watch_reports_an_output_conflict_located_like_any_invalid_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    project = copy_project(EXAMPLES / "quickstart", tmp_path / "q")
    monkeypatch.chdir(project)
    out = project / "generated"
    for child in sorted(out.rglob("*"), reverse=True):
        child.unlink() if not child.is_dir() else child.rmdir()
    (out / "manifest.json").write_text("mine\n")
    with click.Context(click.Command("compile"), obj={}):
        cli._watch_once(project / "dockwright.yaml")
    err = capsys.readouterr().err
    assert err.endswith("\ndockwright.yaml:2:1: error: generated/manifest.json exists and was not written by dockwright "
                        "(move it away, or set 'output:' to another directory)\n    2 | version: 1\n      | ^\n"
                        "1 error; nothing was written\n")
    assert (out / "manifest.json").read_text() == "mine\n"
