"""Generated projects (tests/strategies.py) compile, or fail with located diagnostics only; what compiles reads
back exactly: BuildKit's parser reads each Dockerfile as its spec says (tests/dockerfile_check.py), and each
environment's own values win in its effective environment."""

from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import assume, event, given
from hypothesis import strategies as st

from compiler.fields import FIELDS
from compiler.driver import Compiled

from tests.dockerfile_check import check_output
from tests.property_support import FIXTURE_FILES, PARENT_USERS, outcome, project_dir, props
from tests.strategies import BASES, VALID_VALUES, WILD_VALUES, project_dicts


def _own_values(compiled: Compiled, name: str, frag: Any) -> None:
    """An environment's own string values in env/labels/build_args win in its effective environment."""
    if not isinstance(frag, dict) or name not in compiled.plan.environments:
        return
    env = compiled.plan.environments[name]
    for section in ("env", "labels", "build_args"):
        given_map = frag.get(section)
        if not isinstance(given_map, dict):
            continue
        effective = getattr(env, section)
        for key, value in given_map.items():
            if value is None:
                assert key not in effective, f"{name}.{section}.{key}: null did not remove it"
            elif isinstance(value, str):
                assert key in effective and effective[key].value == value, \
                    f"{name}.{section}.{key}: wrote {value!r}, effective {effective.get(key)!r}"


@props(450)
@given(d=project_dicts, allow_unicode=st.booleans(), flow=st.sampled_from([None, False, True]))
def test_generated_projects(d: dict[str, Any], allow_unicode: bool, flow: bool | None) -> None:
    text = yaml.safe_dump(d, allow_unicode=allow_unicode, default_flow_style=flow, sort_keys=False, width=80)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assume(yaml.load(text, Loader=loader) == d)  # the generator's own sanity: YAML round-trips
    with project_dir(text, FIXTURE_FILES) as main:
        compiled = outcome(main)
        event("compiled" if compiled is not None else "ConfigError")
        if compiled is None:
            return
        check_output(compiled, PARENT_USERS)
        if any(i.spec is not None and i.spec.local_packages for i in compiled.plan.images.values()):
            event("local packages")
        for name, frag in (d.get("environments") or {}).items():
            _own_values(compiled, name, frag)
        for pname, pipe in (d.get("pipelines") or {}).items():
            for sname, s in ((pipe or {}).get("steps") or {}).items():
                if isinstance(s, dict):
                    _own_values(compiled, f"{pname}.{sname}", s.get("settings"))
        for role in ("runner", "server"):
            t = d.get(role)
            if isinstance(t, dict):
                _own_values(compiled, f"{role}.settings", t.get("settings"))



def test_every_environment_key_has_a_strategy() -> None:
    """The generators cover each key of the table of fields (compiler/fields.py): a new key gets strategies."""
    keys = {k for f in FIELDS for k in f.keys} | {"extends", "description"}
    assert set(WILD_VALUES) == keys
    assert set(VALID_VALUES) | set(BASES) | {"extends", "context", "integrations"} == keys


_PYTHON_LITERAL = re.compile(r"\b(None|True|False)\b|\(\)")


@props(60)
@given(d=project_dicts)
def test_explain_never_shows_a_python_literal(d: dict[str, Any]) -> None:
    """`dockwright explain` of every environment and step says unset values in words: Python's None, True,
    False or () never reach the user (a value the user wrote that holds one of those words is left out)."""
    from compiler.explain import explain
    text = yaml.safe_dump(d, sort_keys=False, width=80)
    assume(not _PYTHON_LITERAL.search(text))
    with project_dir(text, FIXTURE_FILES) as main:
        compiled = outcome(main)
        if compiled is None:
            return
        for name in compiled.plan.environments:
            shown = explain(compiled, name)
            assert not _PYTHON_LITERAL.search(shown), shown
