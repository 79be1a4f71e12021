"""The dockwright command line: parse arguments, call the driver (compile_project) and emit, map errors to exit codes."""

from __future__ import annotations

import functools
import gc
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import click

from . import diagrams, emit, reads, record
from .errors import ConfigError, Diagnostic, DockwrightError, UsageError, shown_message, shown_path
from .load import PROJECT_FILE
from .driver import Compiled, compile_project, locate

if TYPE_CHECKING:
    from .builders.base import Job, Outcome
    from .builders.pool import Pool
    from .builders.protocol import Builder
    from .builders.schedule import Options

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INVALID, EXIT_BUILD, EXIT_INTERRUPT = 1, 3, 130  # usage errors exit 2: UsageError.exit_code


def _color(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


MAX_SHOWN = 200  # diagnostics printed in full; the rest are counted


def _diagnostic_lines(items: list[Diagnostic], unstored: int = 0) -> list[str]:
    """items, the first MAX_SHOWN in full, then how many more of each: the rest, plus the unstored warnings
    (counted beyond the Collector's limit, never kept)."""
    color = _color(sys.stderr)
    lines = [d.format(color=color) for d in items[:MAX_SHOWN]]
    rest = items[MAX_SHOWN:]
    if rest or unstored:
        errors = sum(1 for d in rest if d.severity == "error")
        counts = [f"{n:,} more {word}{'' if n == 1 else 's'}"
                  for n, word in ((errors, "error"), (len(rest) - errors + unstored, "warning")) if n]
        lines.append(f"... and {' and '.join(counts)}")
    return lines


def _print_diagnostics(items: list[Diagnostic], unstored: int = 0) -> None:
    for line in _diagnostic_lines(items, unstored):
        click.echo(line, err=True)


def _print_invalid(exc: ConfigError) -> None:
    """A ConfigError's errors, and its warnings unless quiet."""
    if _quiet():
        _print_diagnostics(exc.diagnostics)
    else:
        _print_diagnostics([*exc.diagnostics, *exc.warnings], exc.unstored_warnings)


def _print_warnings(compiled: Compiled) -> None:
    if not _quiet():
        _print_diagnostics(compiled.warnings, compiled.unstored_warnings)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _file_option(func: F, *, reads_project: bool = True) -> F:
    """-q, and -f FILE: offered (in --help) only by a command that reads a project file; one that reads none
    still parses it, to refuse it in words (_no_file)."""
    func = click.option("-q", "--quiet", is_flag=True, default=None, expose_value=False, callback=_set_quiet,
                        help="Print only errors (no summary lines, no warnings).")(func)
    return click.option("-f", "--file", "file", metavar="FILE", default=None, hidden=not reads_project,
                        help="The project file (default: dockwright.yaml here or in the nearest parent "
                             "directory).")(func)


def _quiet_option(func: F) -> F:
    """-q, for a command that reads no project file (-f is hidden there: see _file_option)."""
    return _file_option(func, reads_project=False)


def _no_file(ctx: click.Context, file: str | None, command: str, why: str) -> None:
    """-f names the project file to read; a command that reads none refuses it (before or after its name)."""
    if file is not None or (isinstance(ctx.obj, dict) and ctx.obj.get("file") is not None):
        raise UsageError(f"-f/--file does not apply to '{command}': {why}")


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool | None) -> None:
    if value:
        ctx.ensure_object(dict)
        ctx.obj["quiet"] = True


def _quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("quiet"):
            return True
        ctx = ctx.parent
    return False


def _say(message: str, *, err: bool = False) -> None:
    """A status line (a summary, "up to date"): not printed with --quiet."""
    if not _quiet():
        click.echo(message, err=err)


def _handled(func: F) -> F:
    """One place that turns errors into messages and exit codes; never a traceback for a user mistake."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            _print_invalid(exc)
            n = len(exc.diagnostics)
            written = "; nothing was written" if click.get_current_context().info_name == "compile" else ""
            click.echo(f"{n} error{'s' if n != 1 else ''}{written}", err=True)
            sys.exit(EXIT_INVALID)
        except DockwrightError as exc:
            message = shown_message(str(exc))
            click.echo(message if message.startswith("error:") else f"error: {message}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPT)
        except OSError as exc:  # the machine, not the project: a disk error, a file gone while reading
            where = f"{exc.filename}: " if exc.filename else ""
            try:
                os.getcwd()
            except FileNotFoundError:  # Path.cwd() with no filename to say: the current directory is gone
                where = "" if exc.filename else "the current directory no longer exists: "
            click.echo(shown_message(f"error: {where}{exc.strerror or exc}"), err=True)
            sys.exit(EXIT_INVALID)

    return wrapper  # type: ignore[return-value]


UNLOCKED = "note: no dockwright.lock: packages and parent images are not pinned (run `dockwright lock`)"


def _compile(ctx: click.Context, file: str | None, *, use_lock: bool = True) -> Compiled:
    chosen = file or ctx.obj.get("file")
    reads.reset()
    compiled = compile_project(locate(chosen), use_lock=use_lock)
    _print_warnings(compiled)
    return compiled


def _changes(compiled: Compiled) -> list[emit.Change]:
    return emit.changes(compiled.out_dir, compiled.files, root=compiled.source.root, at=compiled.output_location)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_file_option
@click.version_option(package_name="dockwright", prog_name="dockwright")
@click.pass_context
def main(ctx: click.Context, file: str | None) -> None:
    """Compile the environments in dockwright.yaml into reviewable Dockerfiles."""
    ctx.ensure_object(dict)
    ctx.obj["file"] = file


@main.command()
@_file_option
@click.pass_context
@_handled
def validate(ctx: click.Context, file: str | None) -> None:
    """Load and check the project; report every problem at once."""
    compiled = _compile(ctx, file)
    _changes(compiled)  # what compile would find in the way of its output (a link, a file not its own), read only
    p = compiled.project
    n_img = sum(1 for i in compiled.plan.images.values() if i.generated)
    counts = ", ".join(_plural(n, word) for n, word in
                       ((len(p.environments), "environment"), (len(p.pipelines), "pipeline"), (n_img, "image")))
    _say(f"{shown_path(compiled.source.main)}: ok: {counts}")  # as every other line names a path: from here


@main.command(name="compile")
@_file_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the output on disk is stale.")
@click.option("--watch", is_flag=True, help="Compile again on every change of an input, until Ctrl-C (exit 0).")
@click.pass_context
@_handled
def compile_(ctx: click.Context, file: str | None, check: bool, watch: bool) -> None:
    """Write the Dockerfiles, requirements and manifest.json (only files whose bytes change)."""
    if watch:
        if check:
            raise UsageError("--watch writes the output; it does not go with --check")
        _watch(ctx, file)
        return
    compiled = _compile(ctx, file)
    out = compiled.out_dir
    plan = _changes(compiled)
    label = shown_path(out)
    if check:
        stale = [c for c in plan if c.status != "unchanged"]
        if stale:
            for c in stale:
                verb = {"created": "missing", "updated": "stale", "removed": "obsolete", "leftover": "leftover"}
                click.echo(f"{verb[c.status]}: {label}/{c.path}", err=True)
            click.echo(f"{label}/ is out of date ({emit.summary(plan, check=True)}); run 'dockwright compile'",
                       err=True)
            _forget(ctx, file)
            sys.exit(EXIT_INVALID)
        _say(f"{label}/ is up to date ({len(plan)} files)")
        _remember(ctx, file, compiled, plan)
        return
    emit.write(out, plan, root=compiled.source.root)
    _say(f"{label}/: {emit.summary(plan)}")
    if not compiled.locked:
        _say(UNLOCKED, err=True)
    _remember(ctx, file, compiled, plan)


WATCH_INTERVAL = 0.25  # seconds between two looks at the inputs
Stat = tuple[int, int, int, int]
# what _watched returns: each file's bytes' digest, each path's (real path, kind), each looked-at path's stat, each
# include pattern's matches
Watched = tuple[tuple[tuple[str, str | None], ...], tuple[tuple[str, tuple[str, str]], ...],
                tuple[tuple[str, Stat | None], ...], tuple[tuple[str, str, tuple[tuple[str, tuple[str, str]], ...]], ...]]


def _watch(ctx: click.Context, file: str | None) -> None:
    """compile, then again whenever an input changes; errors are printed and the watch goes on.
    Ctrl-C is how it ends: exit 0, without a traceback."""
    import time

    path = locate(file or ctx.obj.get("file"))
    try:
        while True:
            seen = _watch_once(path)
            while _watched(path, seen) == seen:
                time.sleep(WATCH_INTERVAL)
    except KeyboardInterrupt:
        sys.exit(0)


def _watch_once(path: Path) -> Watched:
    """One compile, printed; returns the state of what it read (taken before anything is printed). The
    process runs without the cyclic garbage collector (run), so each round collects what it left behind:
    about 15,000 objects in cycles per compile of a large project, which a long watch would keep."""
    try:
        return _watch_round(path)
    finally:
        gc.collect()


def _watch_round(path: Path) -> Watched:
    reads.reset()
    try:
        compiled = compile_project(path)
    except ConfigError as exc:
        seen = _watched(path, None)
        _watch_invalid(exc)
        return seen
    except (DockwrightError, OSError) as exc:
        seen = _watched(path, None)
        _watch_error(exc)
        return seen
    seen = _watched(path, None)
    try:
        _print_warnings(compiled)
        plan = _changes(compiled)
        emit.write(compiled.out_dir, plan, root=compiled.source.root)
        _say(f"{shown_path(compiled.out_dir)}/: {emit.summary(plan)}")
    except ConfigError as exc:  # an OutputConflict: located, like any invalid input
        _watch_invalid(exc)
    except (DockwrightError, OSError) as exc:
        _watch_error(exc)
    return seen


def _watch_invalid(exc: ConfigError) -> None:
    _print_invalid(exc)
    click.echo(f"{_plural(len(exc.diagnostics), 'error')}; nothing was written", err=True)


def _watch_error(exc: DockwrightError | OSError) -> None:
    if isinstance(exc, DockwrightError):
        message = shown_message(str(exc))
        click.echo(message if message.startswith("error:") else f"error: {message}", err=True)
    else:
        click.echo(shown_message(f"error: {f'{exc.filename}: ' if exc.filename else ''}{exc.strerror or exc}"),
                   err=True)


def _watched(path: Path, before: Watched | None) -> Watched:
    """The inputs' state: the bytes of each file compile read, where each path it read or looked at leads
    (record.resolved: its real path and kind, so a file or a folder on the way swapped for a link is a change even
    with the same bytes), the stat of each path it looked at, each include pattern's matches (and where each
    leads). As compile saw them when before is None (no race with a change made while it compiled), else as they
    are now, for the same paths."""
    def state(name: str) -> Stat | None:
        try:
            st = os.stat(name)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)

    if before is not None:
        read, places, looked, globs = before
        return (tuple((n, record.sha(n)) for n, _ in read), tuple((n, record.resolved(n)) for n, _ in places),
                tuple((n, state(n)) for n, _ in looked),
                tuple((base, pattern, record.glob_state(base, pattern)) for base, pattern, _ in globs))
    root = str(path.absolute().parent)
    stated = {*reads.probed, str(path.absolute()), os.path.join(root, ".dockerignore"),
              os.path.join(root, "dockwright.lock")}
    return (tuple(sorted(reads.files.items())),
            tuple((n, reads.places.get(n) or record.resolved(n)) for n in sorted({*reads.places, *stated, root})),
            tuple((n, state(n)) for n in sorted(stated - set(reads.files))), tuple(reads.globs))


def _forget(ctx: click.Context, file: str | None) -> None:
    if ctx.obj.get("record"):
        record.forget(quiet=_quiet(), file=file or ctx.obj.get("file"))


def _remember(ctx: click.Context, file: str | None, compiled: Compiled, plan: list[emit.Change]) -> None:
    """After a full compile that leaves the output up to date: the record the fast path answers from."""
    if not ctx.obj.get("record"):  # only a real process (the console script), not an in-process call
        return
    import hashlib

    from .model import referenced_files

    project, root = compiled.project, compiled.source.root
    referenced = referenced_files(project)
    looked = [rel for _, rel, _ in referenced]
    looked += [value for b in project.builders.values() for _, value in b.tls if isinstance(value, str)]
    unchanged = [emit.Change(c.path, "unchanged", c.old, c.new) if c.status != "unchanged" else c for c in plan
                 if c.status not in ("removed", "leftover")]
    check_lines, compile_lines = _recorded_lines(compiled, unchanged)
    record.save(expected={c.path: hashlib.sha256(c.new).hexdigest() for c in unchanged if c.new is not None},
                quiet=_quiet(), file=file or ctx.obj.get("file"), main=str(compiled.source.main), root=str(root),
                output=project.output, paths=[str(root / rel) for rel in [*looked, ".dockerignore"]],
                packages=sorted({rel for kind, rel, _ in referenced if kind == "local_package"}),
                reads=dict(reads.files), places=dict(reads.places), globs=list(reads.globs),
                check_lines=check_lines, compile_lines=compile_lines)


def _recorded_lines(compiled: Compiled, unchanged: list[emit.Change]) \
        -> tuple[list[tuple[bool, str]], list[tuple[bool, str]]]:
    """What `compile --check` and `compile` print on the unchanged project: (on stderr, line), each."""
    if _quiet():
        return [], []
    warnings = [(True, line) for line in _diagnostic_lines(compiled.warnings, compiled.unstored_warnings)]
    label = shown_path(compiled.out_dir)
    check = [*warnings, (False, f"{label}/ is up to date ({len(unchanged)} files)")]
    done = [*warnings, (False, f"{label}/: {emit.summary(unchanged)}"), *([] if compiled.locked else [(True, UNLOCKED)])]
    return check, done


@main.command()
@_file_option
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are differences.")
@click.pass_context
@_handled
def diff(ctx: click.Context, file: str | None, exit_code: bool) -> None:
    """Show a unified diff between what compile would write and what is on disk."""
    compiled = _compile(ctx, file)
    plan = _changes(compiled)
    text = emit.unified_diff(plan, compiled.project.output)
    if text:
        click.echo(text, nl=False)
    else:
        _say(f"{shown_path(compiled.out_dir)}/ is up to date: no differences", err=True)
    if exit_code and text:
        sys.exit(EXIT_INVALID)


@main.command(name="graph")
@_file_option
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "json"]), default="mermaid",
              show_default=True, help="Output format.")
@click.pass_context
@_handled
def graph_(ctx: click.Context, file: str | None, fmt: str) -> None:
    """Print the pipeline step DAGs and the image DAG."""
    compiled = _compile(ctx, file)
    click.echo(diagrams.FORMATS[fmt](compiled.manifest), nl=False)


@main.command()
@_file_option
@click.argument("environment")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_handled
def explain(ctx: click.Context, file: str | None, environment: str, as_json: bool) -> None:
    """Show the effective ENVIRONMENT, each value with the file:line it came from.

    ENVIRONMENT is an environment name, PIPELINE.STEP for a step with settings,
    or runner.settings / server.settings.
    """
    from .explain import explain as text, explain_json

    compiled = _compile(ctx, file)
    click.echo((explain_json if as_json else text)(compiled, environment), nl=False)


@main.command()
@_file_option
@click.argument("images", nargs=-1, metavar="[IMAGE]...")
@click.option("--builder", "builder_name", metavar="NAME", default=None,
              help="A builder from the builders: section (default: default_builder).")
@click.option("--push", is_flag=True, help="Push every image to the project's registry.")
@click.option("--jobs", "-j", type=click.IntRange(min=1, max=64), default=None, metavar="N",
              help="Images built at the same time, 1 to 64 (default: the number of CPUs, at most 4).")
@click.option("--no-reuse", is_flag=True, help="Build every image again, ignoring reuse and the layer cache.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Print every line the builds print, as plain lines.")
@click.pass_context
@_handled
def build(ctx: click.Context, file: str | None, images: tuple[str, ...], builder_name: str | None, push: bool,
          jobs: int | None, no_reuse: bool, as_json: bool, verbose: bool) -> None:
    """Build the images in dependency order, reusing every image whose inputs did not change.

    IMAGE limits the build to those images and the images they are built on; it may also name an
    environment, a pipeline (every image it runs), PIPELINE.STEP, runner or server.
    The output is compiled first, as `dockwright compile` would.
    """
    from . import builders
    from .builders.schedule import Options
    from .lockfile import LOCK_FILE

    gc.enable()  # a build can run for hours (the rest of the process runs without it: fastpath.run)
    compiled = _compile(ctx, file)
    manifest = compiled.manifest
    if push and not manifest.registry:
        raise UsageError(f"--push needs a registry: add `registry: host:port/path` to "
                         f"{compiled.source.rel(compiled.source.main)}")
    todo = builders.jobs(manifest, images)
    where = builders.endpoint(manifest, compiled.source.root, builder_name)
    builders.require(where, todo)
    backend = builders.open_builder(where)
    out = compiled.out_dir
    changes = _changes(compiled)
    if any(c.status != "unchanged" for c in changes):
        emit.write(out, changes, root=compiled.source.root)
        _say(f"{shown_path(out)}/: {emit.summary(changes)}", err=True)
    stream: Any = sys.stderr if as_json else sys.stdout
    if _quiet():
        stream = io.StringIO()
    options = Options(jobs=jobs or min(4, os.cpu_count() or 1), push=push, fresh=no_reuse,
                      locked=builders.locked_parents(compiled.source.main.parent / LOCK_FILE))
    outcomes, seconds = _build_all(backend, todo, compiled.source.root, options, stream, verbose)
    if as_json:
        import json

        members = {"members": _members_json(backend)} if isinstance(backend, builders.Pool) else {}
        click.echo(json.dumps({"builder": where.name, "endpoint": backend.describe(), "seconds": round(seconds, 2),
                               "images": [o.as_json() for o in outcomes], **members}, indent=2, sort_keys=True))
    else:
        from . import progress

        progress.table(outcomes, stream, color=_color(stream))
    if isinstance(backend, builders.Pool):
        for name, why in backend.down.items():
            _say(f"warning: builder '{name}' of pool '{where.name}' is down: {why}", err=True)
    _finish(outcomes, seconds, where.name, as_json)


def _members_json(pool: Pool) -> list[dict[str, Any]]:
    """A pool's members for --json: each one's endpoint, and whether it is down and why."""
    return [{"builder": name, "endpoint": member.describe(), "down": pool.down.get(name)}
            for name, member in pool.members]


def _build_all(backend: Builder | Pool, todo: list[Job], root: Path, options: Options, stream: Any,
               verbose: bool) -> tuple[list[Outcome], float]:
    """Build on the backend with the live view: the outcomes and the seconds it took; exit 130 on Ctrl-C."""
    import time

    from . import progress
    from .builders.schedule import Interrupted, build_all

    started = time.monotonic()
    try:
        backend.connect()
        shown = progress.view(stream, color=_color(stream), verbose=verbose)
        shown.start([j.name for j in todo])
        started = time.monotonic()
        try:
            outcomes = build_all(backend, todo, root, options, shown)
        finally:
            shown.stop()
        return outcomes, time.monotonic() - started
    except Interrupted as stop:
        click.echo(f"interrupted after {time.monotonic() - started:.1f} s: {progress.counts(stop.outcomes)}, "
                   f"{len(todo) - len(stop.outcomes)} not finished (what was built is kept and reused next time)",
                   err=True)
        sys.exit(EXIT_INTERRUPT)
    finally:
        backend.close()


def _finish(outcomes: list[Outcome], seconds: float, builder: str, as_json: bool) -> None:
    """Each failure's story, the summary line, and exit 3 when an image failed or was skipped."""
    from . import progress

    for o in outcomes:
        if o.status == "failed":
            click.echo(progress.failure(o), err=True)
    _say(progress.summary(outcomes, seconds=seconds, builder=builder), err=as_json)
    if any(o.status in ("failed", "skipped") for o in outcomes):
        sys.exit(EXIT_BUILD)


def _init_options(python: str | None) -> None:
    """init's --python is checked before anything is written: init never leaves behind a file that does
    not compile."""
    from . import schema

    problem = schema.python_problem(python, quoted=True) if python is not None else None
    if problem is not None:
        hint = f" ({problem.hint})" if problem.hint else ""
        raise UsageError(f"--python: {problem.message()}{hint}")


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=str))
@click.option("--project", "project", metavar="NAME", default=None,
              help="The project name (default: from pyproject.toml, else the directory's name).")
@click.option("--python", "python", metavar="X.Y", default=None,
              help="The Python version of the base environment (default: from .python-version or "
                   "requires-python, else 3.12).")
@_quiet_option
@click.pass_context
@_handled
def init(ctx: click.Context, file: str | None, directory: str, project: str | None, python: str | None) -> None:
    """Write a starting dockwright.yaml in DIRECTORY (default: here) from what the project has.

    It reads requirements.txt, pyproject.toml (PEP 621 or Poetry dependencies, requires-python),
    .python-version and a Dockerfile, writes dockwright.yaml and nothing else, and never
    overwrites: an existing dockwright.yaml is an error. What it would write is compiled first:
    when that fails, nothing is written.
    """
    from . import init as init_

    _no_file(ctx, file, "init", "it writes dockwright.yaml in DIRECTORY: give the directory instead")
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"no such directory: {directory}")
    _init_options(python)
    found = init_.detect(root, project=project, python=python)
    target = root / PROJECT_FILE
    exists = DockwrightError(f"{shown_path(target)} already exists; init never overwrites it "
                             "(edit it, or remove it and run init again)")
    if target.exists() or target.is_symlink():
        raise exists
    text = init_.render(found)
    try:  # what init writes is compiled first: when it does not compile, nothing is written
        compiled = compile_project(target, text=text)
    except ConfigError as exc:
        raise DockwrightError(init_.refusal(exc.diagnostics, target)) from None
    made = False
    try:
        with open(target, "x", encoding="utf-8") as handle:
            made = True
            handle.write(text)
    except FileExistsError:
        raise exists from None
    except OSError as exc:
        if made:  # ours, just made: a full disk leaves no half-written file
            target.unlink(missing_ok=True)
        raise DockwrightError(f"cannot write {shown_path(target)}: {exc.strerror}") from None
    for note in found.notes:
        _say(f"note: {note}", err=True)
    _say(f"wrote {shown_path(target)}" + (f" from {', '.join(found.sources)}" if found.sources else ""))
    _print_warnings(compiled)
    _say("next: review it, then run 'dockwright compile'")


@main.command()
@click.option("--include", "include", is_flag=True,
              help="The schema of a file that dockwright.yaml includes (not of dockwright.yaml itself).")
@_quiet_option
@click.pass_context
@_handled
def schema(ctx: click.Context, file: str | None, include: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of dockwright.yaml, for editors (see README, Editors)."""
    from . import editor_schema

    _no_file(ctx, file, "schema", "the schema is the same for every project")
    click.echo(editor_schema.text(include=include), nl=False)


@main.group(name="import")
def import_() -> None:
    """Write a dockwright.yaml from another tool's configuration."""


@import_.command(name="zenml")
@click.argument("target")
@click.option("-C", "--directory", "directory", default=".", metavar="DIR",
              type=click.Path(file_okay=False, path_type=str),
              help="The project directory: dockwright.yaml and the output are written there (default: here).")
@click.option("--project", "project", metavar="NAME", default=None,
              help="The project name (default: the directory's name).")
@click.option("--python", "python", metavar="X.Y", default=None,
              help="The Python of ZenML's default parent image zenmldocker/zenml:<version>-pyX.Y "
                   "(default: this Python, as ZenML does).")
@_quiet_option
@click.pass_context
@_handled
def import_zenml(ctx: click.Context, file: str | None, target: str, directory: str, project: str | None,
                 python: str | None) -> None:
    """Write dockwright.yaml from the DockerSettings of ZenML pipelines, then compile it.

    TARGET is a Python file (path/to/pipeline.py, or path/to/pipeline.py:attribute for one
    pipeline), a module (module:attribute, or module for every pipeline in it), or a ZenML
    run-configuration YAML. Importing a file or module RUNS ITS CODE, as `python` would: import only
    code you trust. Each pipeline's function is called (pipeline.prepare(), without arguments) to
    find its steps and their order; nothing is run on a stack.

    Settings with no equivalent are named in a warning with what to do instead. Nothing is written
    when anything fails, and an existing dockwright.yaml is never overwritten. Needs ZenML
    (pip install 'dockwright[zenml]').
    """
    from . import init as init_
    from . import zenml_import

    _no_file(ctx, file, "import zenml", "it writes dockwright.yaml in the directory of -C DIR")
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"no such directory: {directory}")
    target_file = root / PROJECT_FILE
    if target_file.exists():
        raise DockwrightError(f"{shown_path(target_file)} already exists; import never overwrites it "
                              "(remove it, or import into another directory with -C DIR)")
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")  # reading settings is not using ZenML
    os.environ.setdefault("ZENML_ENABLE_RICH_TRACEBACK", "false")
    pipelines = zenml_import.read_target(target, Path.cwd())
    name = init_.project_name(project or root.resolve().name)
    made = zenml_import.build(pipelines, root=root, cwd=Path.cwd(), project=name, python=python, target=target)
    try:
        with open(target_file, "x", encoding="utf-8") as handle:
            handle.write(made.text)
    except FileExistsError:
        raise DockwrightError(f"{shown_path(target_file)} already exists; import never overwrites it") from None
    except OSError as exc:
        raise DockwrightError(f"cannot write {shown_path(target_file)}: {exc.strerror}") from None
    compiled = None
    try:
        compiled = compile_project(target_file)
        plan = _changes(compiled)
        emit.write(compiled.out_dir, plan, root=compiled.source.root)  # all or nothing
    except ConfigError as exc:
        target_file.unlink(missing_ok=True)
        # Without places: the file they point into was removed (and its lines may hold what messages mask).
        _print_diagnostics([Diagnostic(None, d.message, d.hint, d.severity) for d in exc.diagnostics])
        what = "does not compile" if compiled is None else "compiles, but its output cannot be written"
        raise DockwrightError(f"the dockwright.yaml made from {target} {what} "
                              f"({_plural(len(exc.diagnostics), 'error')}); nothing was written") from None
    except BaseException:
        target_file.unlink(missing_ok=True)
        raise
    for note in made.notes:
        _say(f"note: {note}", err=True)
    for warning in made.warnings:
        _say(f"warning: {warning}", err=True)
    _print_warnings(compiled)
    _say(f"wrote {shown_path(target_file)} ({_plural(len(made.pipelines), 'pipeline')}: "
               f"{', '.join(made.pipelines)}); {shown_path(compiled.out_dir)}/: {emit.summary(plan)}")


@main.command()
@_file_option
@click.option("--upgrade", is_flag=True, help="Let every package and parent image digest move to its newest match.")
@click.option("--upgrade-package", "upgrade_packages", multiple=True, metavar="NAME",
              help="Let this package move to its newest match (repeatable); keep the other pins.")
@click.option("--check", is_flag=True, help="Resolve again and write nothing; exit 1 listing what would change.")
@click.option("--offline", is_flag=True,
              help="With --check: only compare the lock with the YAML (no resolution, no network).")
@click.option("--skip-parents", is_flag=True,
              help="Ask no registry: parent images not pinned yet stay unpinned (compile warns about each).")
@click.pass_context
@_handled
def lock(ctx: click.Context, file: str | None, upgrade: bool, upgrade_packages: tuple[str, ...], check: bool,
         offline: bool, skip_parents: bool) -> None:
    """Pin every Python package (with hashes) and parent image (by digest) in dockwright.lock."""
    from . import lock as locking
    from .lockfile import LOCK_FILE

    if offline and (not check or upgrade or upgrade_packages or skip_parents):
        raise UsageError("--offline goes with --check alone: it compares dockwright.lock with the YAML")
    compiled = _compile(ctx, file, use_lock=False)
    if offline:
        _lock_matches(compiled)
        return
    result = locking.run(compiled.plan, compiled.source.root, compiled.source.main.parent / LOCK_FILE,
                         upgrade=upgrade, upgrade_packages=upgrade_packages, check=check, skip_parents=skip_parents)
    label = shown_path(result.path)
    _say_unreadable(result.unreadable, label)
    if check:
        if result.changed:
            for line in result.changes or ["the file's text"]:
                click.echo(f"would change: {line}", err=True)
            click.echo(f"{label} is out of date; run 'dockwright lock'", err=True)
            sys.exit(EXIT_INVALID)
        _say(f"{label} is up to date ({_plural(result.images, 'image')})")
        return
    wrote = locking.write(result)
    for line in result.changes:
        _say(line)
    resolved = f"; resolved {', '.join(result.resolved)}" if result.resolved else ""
    _say(f"{label}: {'written' if wrote else 'unchanged'}{resolved}")


def _say_unreadable(why: Diagnostic | None, label: str) -> None:
    """Why the old lock could not be read, when `lock` writes it anew."""
    if why is not None and not _quiet():
        click.echo(why.format(color=_color(sys.stderr)), err=True)
        click.echo(f"note: {label} cannot be read, so `lock` writes it anew from the YAML; none of its pins is kept",
                   err=True)


@main.group(name="export")
def export() -> None:
    """Write what other build tools read, from the compiled project."""


@export.command(name="bake")
@_file_option
@click.option("-o", "--output", "output", metavar="FILE", default=None,
              help="Where to write it (default: docker-bake.json in the output directory).")
@click.pass_context
@_handled
def export_bake(ctx: click.Context, file: str | None, output: str | None) -> None:
    """Write a docker-bake.json: one target per image, children built on their parents' targets.

    Run it from the project root: docker buildx bake -f <output>/docker-bake.json
    """
    from . import bake

    if output is not None and (not output.strip() or output.endswith(("/", os.sep)) or
                               os.path.basename(os.path.normpath(output)) in (".", "..", "")):
        raise UsageError(f"-o {output!r} names no file: give the file to write, like "
                         f"{os.path.join(output.strip() or '.', bake.BAKE_FILE)}")
    compiled = _compile(ctx, file)
    root = compiled.source.root
    changes = _changes(compiled)  # the bake file names the generated Dockerfiles: they must be on disk
    if any(c.status != "unchanged" for c in changes):
        emit.write(compiled.out_dir, changes, root=root)
        _say(f"{shown_path(compiled.out_dir)}/: {emit.summary(changes)}", err=True)
    path = Path(output) if output else compiled.out_dir / bake.BAKE_FILE
    _exported(compiled, [(path, bake.render(compiled.manifest.as_data()))], bake.ours)


def _exported(compiled: Compiled, items: list[tuple[Path, str]], recognise: Callable[[bytes], bool]) -> None:
    """Write export's files (bake.write: only its own are replaced, no input of the project, no file compile
    writes) and say which were written."""
    from . import bake
    from .lockfile import LOCK_FILE

    cwd = Path.cwd()
    protected = {os.path.normpath(name): "an input of the project (compile reads it)"
                 for name in [*reads.files, *map(str, compiled.source.files),
                              str(compiled.source.main.parent / LOCK_FILE)]}
    protected.update({os.path.normpath(compiled.out_dir / rel): "a file `dockwright compile` writes"
                      for rel in compiled.files})
    wrote = bake.write(items, recognise, root=compiled.source.root, cwd=cwd, protected=protected)
    for (path, _), done in zip(items, wrote):
        _say(f"{shown_path(Path(os.path.normpath(cwd / path)))}: {'written' if done else 'unchanged'}")


# -- export zenml (ZenML run configurations) -----------------------------------------------------


@export.command(name="zenml")
@_file_option
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@click.option("--from", "build_file", metavar="FILE", default=None,
              help="What `dockwright build --push --json` printed: images are named by registry digest.")
@click.option("--local", "local", is_flag=True,
              help="Name images by their local tags, for an orchestrator on the engine that built them.")
@click.option("-o", "--output", "output", metavar="DIR", default=None,
              help="Where to write <pipeline>.yaml (default: zenml/ in the output directory).")
@click.pass_context
@_handled
def export_zenml(ctx: click.Context, file: str | None, pipelines: tuple[str, ...], build_file: str | None,
                 local: bool, output: str | None) -> None:
    """Write a ZenML run configuration per pipeline: every step runs in its dockwright image (skip_build).

    With --from FILE (the output of `dockwright build --push --json`), an image that copies project files
    is named by the digest the registry stored it under, any other by its push tag; an image the file does
    not show pushed is an error. With --local, images are named by their local tags.
    Use a file with `zenml pipeline run SOURCE --config FILE` or pipeline.with_options(config_path=FILE).
    """
    from . import zenml_config

    if (build_file is None) == (not local):
        raise UsageError("give --from FILE (what `dockwright build --push --json` printed) or --local")
    compiled = _compile(ctx, file)
    manifest = compiled.manifest
    chosen = zenml_config.select(manifest, pipelines)
    build = zenml_config.read_build(Path(build_file)) if build_file is not None else None
    if build is not None and not manifest.registry:
        raise UsageError(f"--from names pushed images, but {compiled.source.rel(compiled.source.main)} has no "
                         "registry: add `registry: host:port/path`, or use --local")
    refs = zenml_config.references(manifest, zenml_config.needed(manifest, chosen), build)
    folder = Path(output) if output else compiled.out_dir / zenml_config.FOLDER
    _exported(compiled, [(folder / f"{name}.yaml", zenml_config.render(manifest, name, refs)) for name in chosen],
              zenml_config.ours)


def _lock_matches(compiled: Compiled) -> None:
    """`lock --check --offline`: exit 1 when dockwright.lock no longer matches the YAML (lock.stale), or is missing."""
    from . import lock as locking
    from . import lockfile

    path = compiled.source.main.parent / lockfile.LOCK_FILE
    label = shown_path(path)
    found = lockfile.read(path)
    if found is None:
        click.echo(f"{label} does not exist; run 'dockwright lock'", err=True)
        sys.exit(EXIT_INVALID)
    platforms = compiled.project.platforms
    wanted = set(locking.targets(compiled.plan, compiled.source.root, platforms))
    lines = [f"{name}: not locked" if name not in found.images else f"{name}: its inputs changed"
             for name in locking.stale(compiled.plan, compiled.source.root, found, platforms)]
    lines += [f"{name}: no longer an image" for name in sorted(set(found.images) - wanted)]
    if lines:
        for line in lines:
            click.echo(f"would change: {line}", err=True)
        click.echo(f"{label} is out of date; run 'dockwright lock'", err=True)
        sys.exit(EXIT_INVALID)
    _say(f"{label} matches {compiled.source.rel(compiled.source.main)} ({_plural(len(found.images), 'image')})")


def run() -> None:
    """The full command line, after the fast path (fastpath.run, which turned the cyclic garbage collector off)."""
    try:
        # Not click's standalone mode: it turns a Ctrl-C that arrives outside a command (while click parses,
        # or after the command returned) into "Aborted!" and exit 1; dockwright says "interrupted", exit 130.
        code = main(prog_name="dockwright", obj={"record": True}, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPT)
    except click.ClickException as exc:  # a usage error: click's own text, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
