"""STYLE.md habits a test can hold: one library per module, data flowing one way, no docker in compile."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import EXAMPLES, ROOT

PACKAGE = ROOT / "compiler"
OWNERS = {"yaml": {"load"}, "cerberus": {"schema"}, "networkx": {"graph"}, "jinja2": {"render"}, "rich": {"progress"}}
# load -> schema -> model -> inputs -> graph -> plan -> render -> emit -> pipeline -> explain -> builders -> cli
FLOW = ["errors", "resources", "dockerignore", "load", "schema", "model", "inputs", "graph", "plan", "render", "emit", "pipeline",
        "explain", "builders", "progress", "cli"]


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
