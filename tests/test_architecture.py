"""Code habits a test can hold: one library per module, data flowing one way, no docker in compile."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import EXAMPLES, ROOT

PACKAGE = ROOT / "compiler"
OWNERS = {"yaml": {"load"}, "cerberus": {"schema"}, "networkx": {"graph"}, "jinja2": {"render"}, "rich": {"progress"},
          "zenml": {"zenml_import"}}
# load -> schema -> model -> inputs -> graph -> plan -> render -> emit -> driver -> explain -> builders -> cli
# (the lock file, uv and registry modules come early: compile will read the lock; lock works on the plan)
FLOW = ["credentials", "errors", "resources", "engine_url", "dockerignore", "lockfile", "resolve", "registry", "load", "schema",
        "model", "inputs", "graph", "plan", "lock", "manifest", "render", "emit", "driver", "explain", "diagrams", "builders", "progress",
        "cli"]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            found.add(base)
            if node.level and not node.module:
                found |= {"." + alias.name for alias in node.names}
    return found


def modules() -> dict[str, Path]:
    return {p.relative_to(PACKAGE).with_suffix("").as_posix(): p for p in PACKAGE.rglob("*.py")}


def test_each_library_is_imported_by_one_module() -> None:
    for name, path in modules().items():
        for imported in imports(path):
            top = imported.split(".")[0]
            if top in OWNERS:
                assert name in OWNERS[top], f"compiler/{name}.py imports {top}; only {OWNERS[top]} may"
            if top == "docker":
                assert name.startswith("builders/"), f"compiler/{name}.py imports docker"


def test_data_flows_one_way() -> None:
    for module, path in modules().items():
        name = module.split("/")[0]  # builders/docker_engine is part of builders
        if name not in FLOW:
            continue
        for imported in imports(path):
            if not imported.startswith(".") or (name != module and not imported.startswith("..")):
                continue
            target = imported.lstrip(".").split(".")[0]
            if target in FLOW:
                assert FLOW.index(target) < FLOW.index(name), f"{name} imports {target}, which comes later"


def _target(module: str, imported: str) -> str | None:
    """The module of compiler/ (as modules() names it) that `imported`, written in `module`, means; None outside."""
    if imported.startswith("."):
        level = len(imported) - len(imported.lstrip("."))
        package = module.split("/")[:-1]  # builders/base -> [builders]; cli -> []
        if level > 1:
            package = package[:len(package) - (level - 1)]
        parts = [*package, *[p for p in imported.lstrip(".").split(".") if p]]
    elif imported == "compiler" or imported.startswith("compiler."):
        parts = imported.split(".")[1:]
    else:
        return None
    known = modules()
    for candidate in ("/".join(parts), "/".join([*parts, "__init__"])):
        if candidate in known:
            return candidate
    return None


def test_no_import_cycles_inside_compiler() -> None:
    """Every import counts (at the top, in a function, under TYPE_CHECKING): the modules form a DAG, so each
    one can be read, tested and moved without the ones that import it."""
    edges = {name: sorted({t for i in imports(path) if (t := _target(name, i)) and t != name})
             for name, path in modules().items()}
    assert "builders/base" in edges["builders/context"] and "manifest" in edges["builders/__init__"]  # it resolves
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for nxt in edges[name]:
            if state.get(nxt) == "open":
                cycle = [*path[path.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(f"compiler/{m}.py" for m in cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])


def test_every_module_says_what_it_owns() -> None:
    for name, path in modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, f"compiler/{name}.py has no module docstring"


def test_compile_never_imports_docker() -> None:
    code = ("import sys; from compiler.cli import main\n"
            "try:\n    main(['compile', '--check', '-f', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'docker' or m.startswith('docker.')))")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "quickstart")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


# Patterns that parse the Docker engine's own output lines, not user values.
ENGINE_PATTERNS = {r"^Step (\d+)/(\d+) : (.*)$", r"^Successfully built ([0-9a-f]+)$"}


def test_every_pattern_is_a_full_match() -> None:
    r"""`$` also matches before a final newline ("3.11\n" passed `^3\.[0-9]+$`): every pattern in compiler/ that
    checks a value ends with `\\Z` (or is used with re.fullmatch)."""
    bad = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("compile", "match", "search") and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "re" and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                pattern = node.args[0].value
                if pattern.endswith("$") and not pattern.endswith("\\$") and pattern not in ENGINE_PATTERNS:
                    bad.append(f"compiler/{name}.py:{node.lineno}: {pattern!r}")
    assert not bad, "patterns anchored with `$` instead of `\\Z`:\n" + "\n".join(bad)


def test_a_cerberus_regex_rule_is_a_full_match() -> None:
    from compiler.schema import _Validator

    v = _Validator({"x": {"type": "string", "regex": "[a-z]+"}})
    assert v.validate({"x": "abc"}) and not v.validate({"x": "abc\n"}) and not v.validate({"x": "ab1"})


# Three of the information separators (GS, RS, US): once used inside message texts to carry a hint, a key or a
# place through Cerberus. A finding is data (schema.Problem in the error's info), never a code in a string.
_SEPARATORS = {"\x1d": "GS", "\x1e": "RS", "\x1f": "US"}
# The one way their escapes may stand in the source: as the end of a range of control characters in a pattern
# (`\\x00-\\x1f` in Python's, `\\u0000-\\u001f` in the ECMA patterns of the JSON Schema).
_RANGE = re.compile(r"\\x00-\\x1f|\\u0000-\\u001f", re.IGNORECASE)
_ESCAPE = re.compile(r"\\(?:x1[def]|u001[def]|U0000001[def]|N\{(?:INFORMATION SEPARATOR|GROUP SEPARATOR|"
                     r"RECORD SEPARATOR|UNIT SEPARATOR)[^}]*\})|\b(?:chr\(0x1[def]\)|chr\(29\)|chr\(30\)|chr\(31\))",
                     re.IGNORECASE)


def separator_uses(text: str) -> list[str]:
    """Where text, a Python source, writes FS, GS, RS or US: as a character, an escape or a chr() call."""
    found = [f"{_SEPARATORS[c]} character" for c in _SEPARATORS if c in text]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"line {node.lineno}: {_SEPARATORS[c]} in a string" for c in _SEPARATORS if c in node.value]
    for number, line in enumerate(text.splitlines(), 1):
        found += [f"line {number}: {m.group(0)}" for m in _ESCAPE.finditer(_RANGE.sub("", line))]
    return found


def test_no_control_character_separates_parts_of_a_text() -> None:
    bad = [f"compiler/{name}.py {use}" for name, path in sorted(modules().items())
           for use in separator_uses(path.read_text(encoding="utf-8"))]
    assert not bad, "control characters used as separators:\n" + "\n".join(bad)


@pytest.mark.parametrize("source,found", [
    ('TEXT = "message\\x1fhint"\n', ["line 1: US in a string", "line 1: \\x1f"]),
    ("SEP = '\\x1E'\n", ["line 1: RS in a string", "line 1: \\x1E"]),
    ("SEP = '\\u001d'\n", ["line 1: GS in a string", "line 1: \\u001d"]),
    ("SEP = chr(0x1f)\n", ["line 1: chr(0x1f)"]),
    ("SEP = '\x1e'\n", ["RS character", "line 1: RS in a string"]),
    ('CONTROL = re.compile(r"[\\x00-\\x1f\\x7f]")\n', []),
])
def test_the_separator_check_finds_each_way_of_writing_one(source: str, found: list[str]) -> None:
    assert separator_uses(source) == found


def test_no_private_name_of_cerberus_is_read_outside_the_validator() -> None:
    """Reporting reads Cerberus's public error list (Validator.errors), not its private `_errors`."""
    text = (PACKAGE / "schema.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    uses = [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == "_errors"
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")]
    assert uses == [], f"compiler/schema.py reads a validator's _errors at lines {uses}"


# Where compiler/ may use another object's private name (`x._name`), each with the comment saying why:
# the docker SDK's, each behind one function, and Cerberus's rule methods, whose docstrings carry their
# argument schemas (Cerberus's documented way to add rules).
PRIVATE_USES = {("builders/docker_engine", "_set_api_version"), ("builders/docker_engine", "_post_stream"),
                ("schema", "_Validator")}


def private_uses(tree: ast.AST) -> set[str]:
    """The functions and classes (innermost) that read a private name of an object other than self or cls."""
    found: set[str] = set()

    def visit(node: ast.AST, owner: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            owner = node.name
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and not (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                         and node.value.func.id == "super")):
            found.add(owner)
        for child in ast.iter_child_nodes(node):
            visit(child, owner)

    visit(tree, "<module>")
    return found


def test_private_names_of_other_objects_are_used_in_few_commented_places() -> None:
    uses = {(name, owner) for name, path in modules().items()
            for owner in private_uses(ast.parse(path.read_text(encoding="utf-8")))}
    assert uses <= PRIVATE_USES, f"private names used in {sorted(uses - PRIVATE_USES)}"


def test_the_private_name_check_finds_one() -> None:
    assert private_uses(ast.parse("def f(client):\n    client.api._version = '1.41'\n")) == {"f"}
    assert private_uses(ast.parse("class C:\n    def f(self):\n        return self._x, super()._y()\n")) == set()
