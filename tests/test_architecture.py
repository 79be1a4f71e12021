"""Code habits a test can hold: one library per module, data flowing one way, no docker in compile."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import EXAMPLES, ROOT

PACKAGE = ROOT / "compiler"
OWNERS = {"yaml": {"load"}, "cerberus": {"schema"}, "networkx": {"graph"}, "jinja2": {"render"}, "rich": {"progress"},
          "zenml": {"zenml_import"}}
# load -> schema -> model -> inputs -> graph -> plan -> render -> emit -> pipeline -> explain -> builders -> cli
# (the lock file, uv and registry modules come early: compile will read the lock; lock works on the plan)
FLOW = ["errors", "resources", "engine_url", "dockerignore", "lockfile", "resolve", "registry", "load", "schema",
        "model", "inputs", "graph", "plan", "lock", "manifest", "render", "emit", "pipeline", "explain", "diagrams", "builders", "progress",
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
