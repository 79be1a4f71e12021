"""compile_project(path) -> Compiled: the one call that the CLI and the tests use."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import graph, render, schema
from .errors import Collector, Diagnostic, UsageError
from .inputs import Inputs, gather
from .load import PROJECT_FILE, Located, NodePath, Source, find_project_file, load_project
from .model import Project, build_model
from .plan import Plan, plan


@dataclass
class Compiled:
    source: Source
    project: Project
    inputs: Inputs
    plan: Plan
    files: dict[str, str]  # output-relative path -> text
    warnings: list[Diagnostic]

    @property
    def out_dir(self) -> Path:
        return self.source.root / self.project.output

    @property
    def manifest(self) -> dict[str, Any]:
        import json

        data: dict[str, Any] = json.loads(self.files["manifest.json"])
        return data


def locate(file: str | None, cwd: Path | None = None) -> Path:
    """The project file: -f FILE, else dockwright.yaml in the current directory."""
    here = cwd or Path.cwd()
    if file is not None:
        path = Path(file)
        if path.is_dir():
            path = path / PROJECT_FILE
        if not path.is_file():
            raise UsageError(f"no such project file: {file}")
        return path
    found = find_project_file(here)
    if found is None:
        raise UsageError(f"no {PROJECT_FILE} in {here}\nhint: run dockwright in your project directory, "
                         f"or pass -f path/to/{PROJECT_FILE}")
    return found


def _without(source: Source, broken: set[NodePath]) -> Source:
    if not broken:
        return source
    data = dict(source.doc.data)
    for section in {section for section, _ in broken}:
        data[section] = dict(data[section])  # copied once, not once per broken entry
    for section, name in sorted(broken, key=str):
        data[section][name] = {}
    doc = Located(data=data, keys=source.doc.keys, values=source.doc.values, raw=source.doc.raw)
    return replace(source, doc=doc)


def compile_project(path: Path) -> Compiled:
    """Load, validate, plan and render a project; raise ConfigError with every problem found."""
    source = load_project(path)
    sink = Collector()
    broken = schema.validate(source.doc, sink)
    if () in broken:
        sink.raise_if_errors()
    # Entries with schema errors become empty stand-ins, so that references to them still resolve
    # and every other problem (unknown names, cycles, missing files) is reported in the same run.
    source = _without(source, broken)
    project = build_model(source, sink, broken=frozenset(broken))
    inputs = gather(project, source.root, sink)
    order = graph.inheritance(project, sink)
    step_graphs = graph.steps(project, sink)
    if order or not project.environments:  # no cycle: planning can find more problems in the same run
        the_plan = plan(project, order, step_graphs, inputs, sink, salt=render.digest())
    sink.raise_if_errors()
    files = render.render(the_plan, inputs)
    warnings = sorted(sink.warnings, key=Diagnostic.sort_key)
    return Compiled(source, project, inputs, the_plan, files, warnings)
