"""The JSON Schema (draft 2020-12) of the language, generated from the Cerberus schemas in schemas/.

For editors (yaml-language-server: completion, hover, squiggles). Each key's description and example
come from its `meta` rule; each `check_with` becomes the pattern Cerberus's check applies, in
ECMA-262 form, where a regular expression can say it (CHECKS); the rest is only described (README,
"Editors"). The JSON Schema accepts everything Cerberus accepts: where it cannot express a check
exactly, it checks less, never more.
"""

from __future__ import annotations

import json
from typing import Any

from . import schema as cerberus_schema
from .load import INCLUDE_KEYS


_PY = "|".join(v.split(".")[1] for v in cerberus_schema.PYTHON_VERSIONS)
_NO_LINE_BREAK = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"
_REF = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"


def _ecma(regex: str) -> str:
    """A full-match Python pattern (^...\\Z) as an ECMA-262 one (^...$; JavaScript's $ without the m flag
    matches only at the end)."""
    assert regex.startswith("^") and regex.endswith("\\Z"), regex
    return regex[:-2] + "$"


# check_with name -> the JSON Schema keywords it is (exactly, or the part a pattern can say).
CHECKS: dict[str, dict[str, Any]] = {
    "name": {"pattern": _ecma(cerberus_schema.NAME_RE.pattern), "maxLength": cerberus_schema.MAX_NAME},
    "project_name": {"pattern": _ecma(cerberus_schema.PROJECT_RE.pattern), "maxLength": cerberus_schema.MAX_PROJECT},
    "env_key": {"pattern": _ecma(cerberus_schema.ENV_KEY_RE.pattern)},
    "label_key": {"pattern": _ecma(cerberus_schema.LABEL_KEY_RE.pattern)},
    "apt_package": {"pattern": _ecma(cerberus_schema.APT_RE.pattern)},
    "package_name": {"pattern": "^" + cerberus_schema.PACKAGE_RE.pattern + "$"},  # used with fullmatch
    "user": {"pattern": _ecma(cerberus_schema.USER_RE.pattern)},
    "python_version": {"pattern": rf"^3\.(?:{_PY})(?:\.[0-9]{{1,2}})?$"},
    "engine_url": {"pattern": "^(?:tcp|unix|ssh|npipe|http|https)://[^\\s'\"\\\\]+$"},
    "index_url": {"pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+$"},
    "no_proxy": {"pattern": rf"^(?:[A-Za-z0-9._:*/,\[\]% -]|{_REF})*$"},
    "proxy_url": {"pattern": r"^[^\s\u0000-\u001f\u007f]+$"},
    "single_line": {"pattern": r"^[^\u0000-\u001f\u007f]*$"},
    "installer_arg": {"pattern": r"^[^\u0000-\u001f\u007f]*$"},
    "argument": {"pattern": r"^[^\u0000]*$"},
    "command": {"pattern": r"^(?!\s*-)(?=[\s\S]*\S)[^\u0000]*$"},
    "requirement": {"pattern": r"^(?!\s*-)" + _NO_LINE_BREAK[1:]},
    "project_path": {"pattern": r"^(?!/)(?![\s\S]*\\)(?!-)(?![\s\S]*/-)[^\u0000-\u001f\u007f]*\S[^\u0000-\u001f\u007f]*$"},
    "abs_path": {"pattern": r"^/(?![\s\S]*(?:^|/)\.\.(?:/|$))[^\s\u0000-\u001f\u007f\\]*$"},
    "certificate": {"pattern": r"^(?!/)(?![\s\S]*[\\*?\[])(?!-)(?![\s\S]*/-)[^\u0000-\u001f\u007f]*\S[^\u0000-\u001f\u007f]*$"},
    "image_ref": {"pattern": r"^[a-z0-9A-Z][^\s@]*(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"},
    "registry": {"pattern": r"^[a-zA-Z0-9][^\s@]*$"},
    "secret_id": {"pattern": _ecma(cerberus_schema.SECRET_ID_RE.pattern)},
    # copy_item: see _copy_item; secret_source: see _secret_source
}
CHECKS["project_file"] = CHECKS["project_path"]
CHECKS["output_dir"] = {"pattern": CHECKS["project_path"]["pattern"], "not": {"pattern": r"^\.(?:/+\.?)*$"}}

# What the JSON Schema cannot say (also in the README).
NOT_EXPRESSED = {
    "requirement": "PEP 508 syntax, credentials in URLs, local paths, ' #' and a trailing backslash",
    "index_url": "credentials in the URL, and the port and host checks",
    "proxy_url": "that it is an http(s) URL, and that credentials are ${NAME} references",
    "installer_arg": "credentials in URLs",
    "image_ref": "Docker's reference grammar (registry host, lowercase path components, tag)",
    "registry": "Docker's repository grammar",
    "project_path": "`..` leading outside the project, and the allowed characters",
    "python_version": "that an unquoted number such as 3.1 is refused (YAML reads 3.10 as 3.1)",
}


def _types(rule: Any) -> list[str]:
    names = rule if isinstance(rule, list) else [rule]
    out: list[str] = []
    for t in names:
        mapped = {"string": "string", "integer": "integer", "float": "number", "number": "number",
                  "boolean": "boolean", "dict": "object", "list": "array"}[t]
        if mapped not in out:
            out.append(mapped)
    if "number" in out and "integer" in out:
        out.remove("integer")
    return out


def _copy_item() -> dict[str, Any]:
    path = CHECKS["project_path"]["pattern"]
    return {"anyOf": [
        {"type": "string", "pattern": path, "not": {"pattern": r"[*?\[]"}},
        {"type": "object", "additionalProperties": False, "required": ["from"],
         "properties": {"from": {"type": "string", "pattern": path, "not": {"pattern": r"[*?\[]"},
                                 "description": "A project file or directory.", "examples": ["conf/prod.yaml"]},
                        "to": {"type": "string", "pattern": r"^(?!-)(?![\s\S]*/-)(?![\s\S]*(?:^|/)\.\.(?:/|$))(?=[\s\S]*\S)[^\u0000-\u001f\u007f\\]*$",
                               "description": "Where it goes in the image; relative to workdir unless absolute.",
                               "examples": ["/app/conf.yaml"]}}},
    ]}


def _secret_source() -> dict[str, Any]:
    env = {"type": "string", "pattern": CHECKS["env_key"]["pattern"],
           "description": "An environment variable of the build machine that holds the secret.",
           "examples": ["NETRC_TEXT"]}
    file = {"type": "string", "pattern": r"^[^\u0000-\u001f\u007f," + '"' + r"'\\]+$",  # SECRET_FILE_RE
            "description": "A file of the build machine that holds the secret (~ is your home; relative: to the "
                           "project root).", "examples": ["~/.netrc"]}
    return {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["env"], "properties": {"env": env}},
        {"type": "object", "additionalProperties": False, "required": ["file"], "properties": {"file": file}},
    ]}


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    meta = rule.get("meta") or {}
    if "description" in meta:
        out["description"] = meta["description"]
    if "example" in meta:
        out["examples"] = [meta["example"]]
    check = rule.get("check_with")
    if check == "copy_item":
        out.update(_copy_item())
        return out
    if check == "secret_source":
        out.update(_secret_source())
        if rule.get("nullable"):
            out["oneOf"].append({"type": "null"})
        return out
    types = _types(rule["type"]) if "type" in rule else []
    if rule.get("nullable"):
        types.append("null")
    if types:
        out["type"] = types[0] if len(types) == 1 else types
    if "allowed" in rule:
        out["enum"] = list(rule["allowed"])
    if check is not None:
        out.update(CHECKS[check])
    out.update(_nested(rule))
    if rule.get("empty") is False:
        out["minProperties"] = 1
    return out


def _nested(rule: dict[str, Any]) -> dict[str, Any]:
    """What a rule says of the values inside its value: a named schema, list items, keys and values."""
    out: dict[str, Any] = {}
    nested = rule.get("schema")
    if isinstance(nested, str) and rule.get("nullable"):
        # Beside a $ref every keyword applies too, and the named schema says "object": null is one more choice.
        out["anyOf"] = [{"$ref": f"#/$defs/{nested}"}, {"type": "null"}]
    elif isinstance(nested, str):
        out["$ref"] = f"#/$defs/{nested}"
    elif isinstance(nested, dict) and "list" in _listed(rule.get("type", [])):
        out["items"] = _rule(nested)
    elif isinstance(nested, dict):
        out.update(_mapping(nested))
    if "keysrules" in rule:
        out["propertyNames"] = {k: v for k, v in _rule(rule["keysrules"]).items() if k != "type"}
    if "valuesrules" in rule:
        out["additionalProperties"] = _rule(rule["valuesrules"])
    return out


def _listed(types: Any) -> list[Any]:
    return types if isinstance(types, list) else [types]


def _mapping(rules: dict[str, Any]) -> dict[str, Any]:
    required = sorted(k for k, r in rules.items() if isinstance(r, dict) and r.get("required"))
    out: dict[str, Any] = {"type": "object", "additionalProperties": False,
                           "properties": {k: _rule(r) for k, r in rules.items()}}
    if required:
        out["required"] = required
    return out


def _defs() -> dict[str, Any]:
    schemas = cerberus_schema.source_schemas()
    defs = {name: _mapping(rules) for name, rules in sorted(schemas.items()) if name != "project"}
    return defs


def _fragment(project: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "properties": {k: project["properties"][k] for k in INCLUDE_KEYS}}


def json_schema(*, include: bool = False) -> dict[str, Any]:
    """The JSON Schema of dockwright.yaml, or with include=True of a file it includes."""
    project = _mapping(cerberus_schema.source_schemas()["project"])
    defs = _defs()
    top: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                           "title": "dockwright included file" if include else "dockwright.yaml",
                           "description": ("A file included by dockwright.yaml: integrations, environments, "
                                           "pipelines and builders." if include else
                                           "A dockwright project: its environments, compiled into Dockerfiles.")}
    body = _fragment(project) if include else project
    return {**top, **body, "$defs": defs}


def text(*, include: bool = False) -> str:
    return json.dumps(json_schema(include=include), indent=2, ensure_ascii=False) + "\n"
