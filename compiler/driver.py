"""compile_project(path) -> Compiled: the one call that the CLI and the tests use."""

from __future__ import annotations

import functools
import posixpath
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import graph, lockfile, render, schema
from .errors import Collector, ConfigError, Diagnostic, Location, UsageError
from .inputs import Inputs, gather, ignored_output
from .load import PROJECT_FILE, Located, NodePath, Source, find_project_file, load_project
from .model import Project, build_model, referenced_files
from .lockfile import LOCK_FILE, Lock
from .manifest import FILE as MANIFEST_FILE, Manifest
from .plan import Plan, plan


@dataclass
class Compiled:
    source: Source
    project: Project
    inputs: Inputs
    plan: Plan
    files: dict[str, str]  # output-relative path -> text
    warnings: list[Diagnostic]
    locked: bool = False  # compiled from dockwright.lock
    unstored_warnings: int = 0  # warnings beyond the Collector's limit: counted, not kept

    @property
    def out_dir(self) -> Path:
        return self.source.root / self.project.output

    @property
    def output_location(self) -> Location | None:
        """Where `output:` is written, else the project file itself (for errors about the output)."""
        return output_location(self.source)

    @functools.cached_property
    def manifest(self) -> Manifest:
        """manifest.json as compile wrote it, read back."""
        return Manifest.parse(self.files[MANIFEST_FILE])


def output_location(source: Source) -> Location | None:
    if isinstance(source.doc.data, dict) and "output" in source.doc.data:
        return source.doc.at(("output",))
    return source.doc.values.get(())


def locate(file: str | None, cwd: Path | None = None) -> Path:
    """The project file: -f FILE, else dockwright.yaml in the current directory or the nearest parent
    directory that has one (like git), up to the file system root."""
    try:
        here = cwd or Path.cwd()
    except FileNotFoundError:
        raise UsageError("the current directory no longer exists\nhint: cd to your project directory") from None
    try:
        if file is not None:
            path = Path(file)
            if path.is_dir():
                path = path / PROJECT_FILE
                if not path.exists():
                    raise UsageError(f"no {PROJECT_FILE} in directory {file}")
            if not path.is_file():
                if path.exists():  # a FIFO, a socket, a device, or a folder named dockwright.yaml
                    raise UsageError(f"project file {file} is not a regular file")
                raise UsageError(f"no such project file: {file}")
            return path
        for folder in (here, *here.parents):
            found = find_project_file(folder)
            if found is not None:
                return found
            if (folder / PROJECT_FILE).exists():  # a folder (or FIFO, socket) named dockwright.yaml: not looked past
                shown = folder / PROJECT_FILE
                raise UsageError(f"{shown} is not a regular file\nhint: the project file is a YAML file named "
                                 f"{PROJECT_FILE}; rename what is there, or pass -f path/to/{PROJECT_FILE}")
    except OSError as exc:  # a name too long, a folder we may not read, ...
        raise UsageError(f"cannot look for the project file: {exc.strerror}") from None
    raise UsageError(f"no {PROJECT_FILE} in {here} or any parent directory\nhint: run dockwright in your project "
                     f"directory, or pass -f path/to/{PROJECT_FILE}")


def _output_problems(source: Source, project: Project, inputs: Inputs, files: dict[str, str], sink: Collector) \
        -> None:
    """An output directory that would overwrite what the project is made of (checked before any write)."""
    out = posixpath.normpath(project.output)
    at = output_location(source)
    parts = out.split("/")
    if any(len(part.encode("utf-8")) > 255 for part in parts):
        sink.error(at, "output directory has a name longer than 255 bytes, more than file systems allow",
                   "use a shorter directory name, like 'generated'")
        return
    if ".git" in parts:
        sink.error(at, f"output directory '{project.output}' is inside .git", "use a directory like 'generated'")
        return
    read = {posixpath.normpath(rel) for rel in [*(source.rel(f) for f in source.files), *inputs.files,
                                                 *(r for r, kind in inputs.kinds.items() if kind == "file")]}
    for i in range(1, len(parts) + 1):
        above = "/".join(parts[:i])
        if above in read:
            what = "the project file" if above == project.file else f"the input file '{above}'"
            sink.error(at, f"output directory '{project.output}' is {what}" if i == len(parts)
                       else f"output directory '{project.output}' is inside {what}", "use a directory like 'generated'")
            return
    for rel in sorted(files):
        target = f"{out}/{rel}"
        if target in read:
            sink.error(at, f"output directory '{project.output}' would overwrite the input file '{target}'",
                       "use a directory like 'generated'")
    _output_copied(project, out, at, sink)


def _output_copied(project: Project, out: str, at: Location | None, sink: Collector) -> None:
    """An output directory inside a copy source or a local package (not the whole project, `.`): each compile
    would change what images copy, and the generated files would be in them."""
    for kind, rel, _ in referenced_files(project):
        src = posixpath.normpath(rel)
        if kind in ("copy", "local_package") and src != "." and (out == src or out.startswith(src + "/")):
            what = "copy source" if kind == "copy" else "local package"
            where = "" if out == src else "inside "
            sink.error(at, f"output directory '{project.output}' is {where}{what} '{rel}': the generated files "
                       "would be copied into the image", "use a directory outside it, like 'generated'")
            return


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


def _stale(the_plan: Plan, root: Path, the_lock: Lock, sink: Collector) -> None:
    """A located error at each environment whose image the lock no longer matches (offline)."""
    from .lock import stale

    for name in stale(the_plan, root, the_lock):
        env = the_plan.environments.get(name)
        what = f"environment '{name}'" if env is None or env.kind == "environment" else f"image '{name}'"
        sink.error(env.location if env is not None else None,
                   f"{what} has changed since {LOCK_FILE} was written (or is not in it)",
                   "run `dockwright lock`, then compile again")


class _Stages:
    """Seconds each stage of compile_project took, into a dict when one is given (bench/bench.py reads them)."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self.into = into
        self.last = time.perf_counter()

    def done(self, stage: str) -> None:
        if self.into is not None:
            now = time.perf_counter()
            self.into[stage] = now - self.last
            self.last = now


STAGES = ("load", "schema", "model", "inputs", "graph", "plan", "render", "checks")


def compile_project(path: Path, *, use_lock: bool = True, timings: dict[str, float] | None = None,
                    text: str | None = None) -> Compiled:
    """Load, validate, plan and render a project; raise ConfigError with every problem found.

    use_lock: read dockwright.lock beside the project file, when there is one (`lock` itself does not).
    timings: filled with the seconds of each of STAGES.
    text: the project file's text, read instead of the file (`dockwright init` compiles what it will write).
    """
    clock = _Stages(timings)
    source = load_project(path, text=text)
    clock.done("load")
    sink = Collector()
    broken = schema.validate(source.doc, sink)
    if () in broken:
        sink.raise_if_errors()
    # Entries with schema errors become empty stand-ins, so that references to them still resolve
    # and every other problem (unknown names, cycles, missing files) is reported in the same run.
    source = _without(source, broken)
    clock.done("schema")
    project = build_model(source, sink, broken=frozenset(broken))
    clock.done("model")
    inputs = gather(project, source.root, sink, source.doc)
    clock.done("inputs")
    order = graph.inheritance(project, sink)
    step_graphs = graph.steps(project, sink)
    clock.done("graph")
    lock_file = source.main.parent / LOCK_FILE
    the_lock = None
    try:
        the_lock = lockfile.read(lock_file) if use_lock else None
    except ConfigError as exc:
        for d in exc.diagnostics:
            sink.error(d.location, d.message, d.hint)
    if order or not project.environments:  # no cycle: planning can find more problems in the same run
        the_plan = plan(project, order, step_graphs, inputs, sink, salt=render.digest(), lock=the_lock,
                        locked_salt=render.digest(locked=True),
                        mounts_salt=render.digest(mounts=True), locked_mounts_salt=render.digest(locked=True, mounts=True))
        if project.zenml is not None:
            from . import zenml_checks

            zenml_checks.check(project, the_plan, sink)
        if the_lock is not None and not sink.errors:
            _stale(the_plan, source.root, the_lock, sink)
            for img in the_plan.images.values():
                if img.unpinned:
                    env = the_plan.environments.get(img.name)
                    at = env.base.origin.location if env is not None and env.base is not None else None
                    sink.warn(at, f"parent image '{img.base_ref}' of image '{img.name}' is not pinned to a digest "
                              f"in {LOCK_FILE}", "run `dockwright lock` where its registry can be reached")
    sink.raise_if_errors()
    clock.done("plan")
    files = render.render(the_plan, inputs)
    clock.done("render")
    _output_problems(source, project, inputs, files, sink)
    sink.raise_if_errors()
    left_out = ignored_output(inputs.dockerignore, project.output, files)
    if left_out is not None:
        out = posixpath.normpath(project.output)
        sink.warn(output_location(source), f".dockerignore leaves out '{left_out}', which the generated Dockerfiles "
                  "copy, so building them fails", f"remove the pattern that matches it, or add '!{out}/' after it")
    warnings = sorted(sink.warnings, key=Diagnostic.sort_key)
    clock.done("checks")
    return Compiled(source, project, inputs, the_plan, files, warnings, locked=the_lock is not None,
                    unstored_warnings=sink.unstored_warnings)
