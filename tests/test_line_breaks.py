"""Every string field of the language, enumerated from schemas/, with a line break or control character
at its start, middle and end: a located error at that field, or output that BuildKit's parser and pip's
requirements parser read back as exactly the intended instructions and requirements.

A field added to a schema is covered without editing this file, as long as it has a sample value below
(test_every_schema_field_has_a_sample fails until it has one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from compiler.errors import ConfigError
from compiler.driver import compile_project
from compiler.schema import _schemas
from tests.dockerfile_check import check_output
from tests.property_support import FIXTURE_FILES, PARENT_USERS, check_config_error, project_dir

# Everything str.splitlines() splits on (pip's requirements parser splits on these, too), NUL, and a
# few other control characters (C0, DEL, C1).
BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029",
          "\x00", "\x01", "\x1b", "\x1f", "\x7f", "\x9b"]
POSITIONS = ["start", "middle", "end"]

KEY, VALUE, ITEM = "{}", "{:}", "[]"  # a mapping's key, a mapping's value, a list's item


def _types(rule: dict[str, Any]) -> list[str]:
    t = rule.get("type") or []
    return [t] if isinstance(t, str) else list(t)


def _fields(rule: dict[str, Any], path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    types = _types(rule)
    if "string" in types:
        yield path
    if "dict" in types:
        if isinstance(rule.get("schema"), dict):  # a nested mapping (tls, proxy); a named schema is its own entry
            for key, sub in rule["schema"].items():
                yield from _fields(sub, path + (key,))
        if "keysrules" in rule:
            yield from _fields(rule["keysrules"], path + (KEY,))
        if "valuesrules" in rule:
            yield from _fields(rule["valuesrules"], path + (VALUE,))
    if "list" in types and isinstance(rule.get("schema"), dict):
        yield from _fields(rule["schema"], path + (ITEM,))


# Strings that schemas check inside a mapping item without listing them (`copy: [{from:, to:}]`).
EXTRA = {"environment": [("copy", ITEM, "from"), ("copy", ITEM, "to")],
         "settings": [("copy", ITEM, "from"), ("copy", ITEM, "to")]}


def schema_fields() -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for name, schema in sorted(_schemas().items()):
        for key, rule in schema.items():
            out += [(name, p) for p in _fields(rule, (key,))]
        out += [(name, p) for p in EXTRA.get(name, [])]
    return out


# A valid value for each string field, by (schema, path) or by path alone.
SAMPLES: dict[Any, str] = {
    ("description",): "text", ("project",): "demo", ("output",): "out", ("registry",): "localhost:5000/ml",
    ("include",): "inc.yaml", ("include", ITEM): "inc.yaml", ("default_builder",): "local",
    ("integrations", KEY): "extra", ("environments", KEY): "other", ("pipelines", KEY): "other",
    ("builders", KEY): "other", ("steps", KEY): "other",
    ("extends",): "base", ("parent_image",): "python:3.11-slim", ("python",): "3.11",
    ("dockerfile",): "docker/base.Dockerfile", ("context",): "docker", ("installer",): "pip",
    ("installer_args", ITEM): "--pre", ("index_url",): "https://pypi.example.com/simple",
    ("extra_index_urls", ITEM): "https://pypi.example.com/simple", ("certificates", ITEM): "certs/ca.pem",
    ("apt_packages", ITEM): "git", ("requirements", ITEM): 'numpy ; os_name != "xxxxxxxxxxxxxxxxxxxx"',  # a break in the quotes, too
    ("requirements_files", ITEM): "requirements.txt", ("integrations", ITEM): "integ",
    ("env", KEY): "ABC", ("env", VALUE): "value", ("build_args", KEY): "ABC", ("build_args", VALUE): "value",
    ("labels", KEY): "team", ("labels", VALUE): "value", ("user",): "app", ("workdir",): "/app",
    ("copy", ITEM): "src/app.py", ("copy", ITEM, "from"): "conf/prod.yaml", ("copy", ITEM, "to"): "/app/c.yaml",
    ("local_packages", ITEM): "libs/feature lib", ("heavy_packages", ITEM): "torch", ("network",): "host",
    ("platforms", ITEM): "linux/arm64", ("secrets", KEY): "netrc",
    ("zenml", "version"): "0.98.0",
    ("run", ITEM): "echo hi", ("entrypoint", ITEM): "python", ("cmd", ITEM): "--port", ("checks", ITEM): "true",
    ("after", ITEM): "first", ("after",): "first", ("environment",): "base",
    ("type",): "docker", ("url",): "tcp://10.0.0.1:2376", ("tls", "ca"): "certs/ca.pem",
    ("tls", "cert"): "certs/ca.pem", ("tls", "key"): "certs/ca.pem", ("proxy", "http"): "http://proxy:3128",
    ("proxy", "https"): "http://proxy:3128", ("proxy", "no_proxy"): "localhost", ("members", ITEM): "local",
}
FILES = {**FIXTURE_FILES, "inc.yaml": "integrations: {inc: {}}\n"}


def _base() -> dict[str, Any]:
    return {"version": 1, "project": "demo", "integrations": {"integ": {}},
            "environments": {"base": {"python": "3.11", "requirements": ["pandas==2.2.2"]}},
            "runner": {"environment": "base"}}


def _nest(path: tuple[str, ...], text: str) -> tuple[Any, str]:
    """(value to set at path[0], the key under which it goes): the structure path describes, text at its leaf."""
    if len(path) == 1:
        return text, path[0]
    key, rest = path[0], path[1:]
    if rest[0] == ITEM:
        inner = {rest[1]: text} if len(rest) > 1 else text
        if rest[1:] == ("to",):
            inner = {"from": "conf/prod.yaml", "to": text}
        return [inner], key
    if rest[0] == KEY:
        if key == "secrets":
            return {text: {"env": "NETRC_TEXT"}}, key
        return {text: {} if key in ("integrations", "builders", "steps") else "x"}, key
    if rest[0] == VALUE:
        return {"ABC" if key != "labels" else "team": text}, key
    value, sub = _nest(rest, text)
    return {sub: value}, key


def place(schema: str, path: tuple[str, ...], text: str) -> dict[str, Any]:
    """A small valid project in which the field (schema, path) holds text."""
    d = _base()
    value, key = _nest(path, text)
    if path in (("environments", KEY),):
        d["environments"][text] = {"python": "3.11"}
        return d
    if path == ("pipelines", KEY):
        d["pipelines"] = {text: {"environment": "base", "steps": {"s": {}}}}
        return d
    if path == ("builders", KEY):
        d["builders"] = {text: {"type": "docker"}}
        return d
    if path == ("integrations", KEY) and schema == "project":
        d["integrations"][text] = {}
        return d
    if schema == "project":
        if key == "default_builder":
            d["builders"] = {"local": {"type": "docker"}}
        d[key] = value
    elif schema == "environment":
        env: dict[str, Any] = {"requirements": ["pandas==2.2.2"]}
        if key not in ("python", "parent_image", "dockerfile", "extends", "context"):
            env["python"] = "3.11"
        if key == "context":
            env["dockerfile"] = "docker/base.Dockerfile"
        env[key] = value
        d["environments"]["e"] = env
    elif schema == "settings":
        settings: dict[str, Any] = {key: value}
        if key == "context":
            settings["dockerfile"] = "docker/base.Dockerfile"
        d["pipelines"] = {"p": {"environment": "base", "steps": {"s": {"settings": settings}}}}
    elif schema == "integration":
        d["integrations"]["integ"] = {key: value}
        d["environments"]["base"]["integrations"] = ["integ"]
    elif schema == "pipeline":
        pipe: dict[str, Any] = {"environment": "base", "steps": {"s": {}}}
        if key == "steps":
            pipe["steps"] = value
        else:
            pipe[key] = value
        d["pipelines"] = {"p": pipe}
    elif schema == "step":
        d["pipelines"] = {"p": {"environment": "base", "steps": {"first": {}, "s": {key: value}}}}
    elif schema == "target":
        d["runner"] = {"environment": "base", key: value}
    elif schema == "zenml":  # the runner's image has zenml at the version, so the sample compiles
        d["zenml"] = {key: value}
        d["environments"]["base"]["requirements"].append("zenml[local]==0.98.0")
    elif schema == "builder":
        d["builders"] = {"b": {"type": "docker", key: value}}
        if key == "members":  # a pool, of another builder, with the registry that carries images between them
            d["builders"] = {"b": {"type": "pool", key: value}, "local": {"type": "docker"}}
            d["registry"] = "localhost:5000/ml"
        if key == "tls":  # tls needs a tcp:// url, and a cert goes with its key
            d["builders"]["b"]["url"] = "tcp://10.0.0.1:2376"
            for one, other in (("cert", "key"), ("key", "cert")):
                if one in value:
                    value.setdefault(other, "certs/ca.pem")
    else:
        raise AssertionError(schema)
    return d


def sample(schema: str, path: tuple[str, ...]) -> str | None:
    return SAMPLES.get((schema, *path)) or SAMPLES.get(path)  # type: ignore[arg-type]


def test_every_schema_field_has_a_sample() -> None:
    missing = [(s, p) for s, p in schema_fields() if sample(s, p) is None]
    assert not missing, f"add a valid sample value to SAMPLES for {missing}"
    # The samples themselves compile: a failure below is the break's, not the sample's.
    for schema, path in schema_fields():
        text = sample(schema, path)
        assert text is not None
        with project_dir(json.dumps(place(schema, path, text), indent=2), FILES) as main:
            try:
                check_output(compile_project(main), PARENT_USERS)
            except ConfigError as exc:
                raise AssertionError(f"{schema} {path}: sample {text!r} does not compile:\n{exc.render()}") from None


def _insert(text: str, brk: str, where: str) -> str:
    if where == "start":
        return brk + text
    if where == "end":
        return text + brk
    mid = max(1, len(text) // 2)
    return text[:mid] + brk + text[mid:]


def _params() -> list[Any]:
    return [pytest.param(schema, path, id=f"{schema}:{'.'.join(path)}") for schema, path in schema_fields()]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("breaks")
    for rel, text in FILES.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text, encoding="utf-8")
    return base


@pytest.mark.parametrize("schema,path", _params())
def test_line_breaks_in_every_string_field(schema: str, path: tuple[str, ...], root: Path) -> None:
    text = sample(schema, path)
    assert text is not None
    main = root / "dockwright.yaml"
    for brk in BREAKS:
        for where in POSITIONS:
            value = _insert(text, brk, where)
            # JSON is YAML: one field a line, every break and control character escaped.
            yaml_text = json.dumps(place(schema, path, value), indent=2, ensure_ascii=True)
            quoted = json.dumps(value, ensure_ascii=True)
            (line,) = [i for i, ln in enumerate(yaml_text.split("\n"), start=1) if quoted in ln]
            main.write_text(yaml_text, encoding="utf-8")
            try:
                compiled = compile_project(main)
            except ConfigError as exc:
                check_config_error(exc, root)
                at = [d for d in exc.diagnostics if d.location is not None and d.location.line == line]
                assert at, f"{value!r}: no error at line {line}:\n{exc.render()}"
                continue
            try:
                check_output(compiled, PARENT_USERS)
            except AssertionError as exc:
                raise AssertionError(f"{schema} {path} = {value!r} compiled wrongly: {exc}") from None
