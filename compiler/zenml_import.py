"""`dockwright import zenml`: a dockwright.yaml from the DockerSettings of ZenML pipelines.

The only module that imports zenml (lazily, inside functions). ZenML's own semantics are mirrored
(zenml/utils/pipeline_docker_image_builder.py in zenml 0.98): the default parent image
`zenmldocker/zenml:<zenml version>-py<X.Y>`, `WORKDIR /app`, upper-cased ENV names, integrations
resolved through ZenML's integration registry, step settings merged over the pipeline's field by
field (dicts by key). Every DockerSettings field is decided in FIELDS; what has no equivalent is a
warning naming what to do instead. Pure until the CLI writes the text it returns.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from . import zenml_checks
from .errors import ConfigError, Diagnostic, DockwrightError, Location, UsageError, read_regular, suggest

INSTALL_HINT = "ZenML is not installed: pip install 'dockwright[zenml]'"
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}
_SEPARATORS = re.compile(r"[^a-z0-9]+")

# Every field of zenml 0.98's DockerSettings and what import does with it. "map": written to
# dockwright.yaml; "warn": named in a warning when set (or, for defaults that act, when in effect).
FIELDS: dict[str, str] = {
    "parent_image": "map: parent_image (default zenmldocker/zenml:<version>-py<X.Y>, as ZenML)",
    "dockerfile": "map: dockerfile (parent_image is then ignored, as ZenML)",
    "build_context_root": "map: context",
    "requirements": "map: requirements (a list) or requirements_files (a path)",
    "required_integrations": "map: integrations, one bundle per ZenML integration (registry requirements, apt)",
    "apt_packages": "map: apt_packages",
    "environment": "map: env (names upper-cased, values literal, as ZenML's ENV KEY='value')",
    "runtime_environment": "map: env (set after the installs in ZenML; the same values here)",
    "user": "map: user",
    "python_package_installer": "map: installer (ZenML's default is uv)",
    "python_package_installer_args": "map: installer_args (--key or --key=value)",
    "build_config": "map: build_options.build_args/labels to build_args/labels; the rest warns",
    "parent_image_build_config": "warn: the custom Dockerfile is built by dockwright's builder",
    "build_options": "map: as build_config.build_options (deprecated in ZenML)",
    "skip_build": "warn: the parent image is used through a generated Dockerfile",
    "prevent_build_reuse": "warn: dockwright build --no-reuse",
    "image_tag": "warn: image tags are <project>-<image>:<spec hash>",
    "target_repository": "warn: registry:",
    "python_package_installer_cache_mount": "warn: no BuildKit cache mounts",
    "disable_automatic_requirements_detection": "warn when False: name the file in requirements_files",
    "replicate_local_python_environment": "warn: pin the requirements (dockwright init reads requirements.txt)",
    "pyproject_path": "warn: local_packages or requirements",
    "pyproject_export_command": "warn: export to a requirements file, name it in requirements_files",
    "install_stack_requirements": "warn when True (the default): the stack is not known at import",
    "install_deployment_requirements": "ignored: only deployment images, which dockwright does not make",
    "local_project_install_command": "warn: local_packages",
    "allow_including_files_in_images": "warn when set: code is added with copy:",
    "allow_download_from_code_repository": "warn when set: code is added with copy:",
    "allow_download_from_artifact_store": "warn when set: code is added with copy:",
    "dockerignore": "warn: the project's .dockerignore is used",
    "copy_files": "warn (deprecated in ZenML): copy:",
    "copy_global_config": "warn (deprecated in ZenML): nothing is copied",
    "source_files": "warn (deprecated in ZenML): copy:",
    "required_hub_plugins": "warn (deprecated in ZenML): requirements",
}

_INSTEAD: dict[str, str] = {
    "parent_image": "ZenML ignores it then, and so does this environment; the Dockerfile's FROM is the parent",
    "parent_image_build_config": "dockwright builds the Dockerfile itself; set build_args on the environment if it needs them",
    "skip_build": "dockwright writes a Dockerfile FROM it; `dockwright build` makes the image and reuses it",
    "prevent_build_reuse": "run `dockwright build --no-reuse` when you want a fresh build",
    "image_tag": "dockwright tags images <project>-<image>:<spec hash>; see manifest.json",
    "target_repository": "set `registry:` in dockwright.yaml and use `dockwright build --push`",
    "python_package_installer_cache_mount": "dockwright installs without a cache mount; the layer cache keeps unchanged installs",
    "disable_automatic_requirements_detection": "name the requirements file in `requirements_files:` of the environment",
    "replicate_local_python_environment": "pin what the steps need in `requirements:` (or a requirements file)",
    "pyproject_path": "list the project in `local_packages:` or its dependencies in `requirements:`",
    "pyproject_export_command": "export the dependencies to a requirements file and name it in `requirements_files:`",
    "install_stack_requirements": ("dockwright does not know the stack you will run on; add what its components need "
                                   "(e.g. the s3 or gcp integration) to `requirements:` or `integrations:`"),
    "local_project_install_command": "list the package directory in `local_packages:`",
    "allow_including_files_in_images": "dockwright images hold no code unless an environment says `copy:`",
    "allow_download_from_code_repository": "dockwright images hold no code unless an environment says `copy:`",
    "allow_download_from_artifact_store": "dockwright images hold no code unless an environment says `copy:`",
    "dockerignore": "dockwright uses the project's .dockerignore",
    "copy_files": "add the code with `copy:`",
    "copy_global_config": "nothing to do: dockwright copies no ZenML configuration",
    "source_files": "dockwright images hold no code unless an environment says `copy:`",
    "required_hub_plugins": "add the plugin's package to `requirements:`",
    "build_options": "dockwright's builder takes no extra build options",
    "environment": ("dockwright sets env after the installs, so the installer does not read it; use index_url, "
                    "extra_index_urls or installer_args"),
}


class ImportFailed(DockwrightError):
    """The ZenML target could not be read (exit 1)."""

    exit_code = 1


@dataclass
class Environment:
    name: str
    data: dict[str, Any]


@dataclass
class Result:
    """What import made: the dockwright.yaml text and what to tell the user."""

    text: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pipelines: list[str] = field(default_factory=list)


@dataclass
class _Pipeline:
    name: str  # ZenML's
    settings: Any  # DockerSettings | None
    steps: list[tuple[str, Any, list[str]]]  # (invocation id, DockerSettings | None, upstream ids)
    ordered: bool  # whether ZenML could tell the edges


def dockwright_name(raw: str) -> str:
    """A dockwright name from any ZenML name: lowercase; a run of other characters is kept when it
    is '_', '__' or dashes, else becomes one '-'; 'x' when nothing is left. A valid name is kept."""
    def sep(match: re.Match[str]) -> str:
        run = match.group(0)
        return run if run in ("_", "__") or set(run) == {"-"} else "-"

    name = _SEPARATORS.sub(sep, raw.lower()).strip("-_")
    return name or "x"


def _zenml() -> Any:
    try:
        import zenml
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return zenml


def _python_version(python: str | None) -> str:
    if python is None:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    if not re.fullmatch(r"3\.[0-9]{1,2}", python):
        raise UsageError(f"--python takes X.Y, such as 3.11, not '{python}'")
    return python


# ---- reading the target ---------------------------------------------------------------------

def _module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:12]
    return f"_dockwright_zenml_{dockwright_name(path.stem).replace('-', '_')}_{digest}"


def _run_user_code(what: str, action: Any, near: Path | None = None) -> Any:
    try:
        return action()
    except KeyboardInterrupt:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module may raise anything
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        hint = _path_hint(exc, near) if near is not None else ""
        raise ImportFailed(f"cannot import {what}: {detail}{hint}") from None


def _path_hint(exc: BaseException, near: Path) -> str:
    """For a module the file imports that is not on the path but sits in a folder above it (a src/ layout),
    how to put that folder on the path."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return ""
    top = exc.name.split(".")[0]
    cwd = Path.cwd().resolve()
    for folder in near.resolve().parents:
        if (folder / top).is_dir() or (folder / f"{top}.py").is_file():
            shown = os.path.relpath(folder, cwd)
            where = "the current directory" if shown == "." else f"{shown}/"
            return (f" ('{top}' is in {where}, which is not on the import path: run with PYTHONPATH={shown}, "
                    "or install your project first, e.g. `pip install -e .`)")
        if folder == cwd or cwd not in folder.parents:
            break
    return ""


def _load_file(path: Path, shown: str) -> Any:
    if not path.is_file():
        raise ImportFailed(f"cannot import {shown}: no such file")
    name = _module_name(path.resolve())
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportFailed(f"cannot import {shown}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its sibling modules import as they do when ZenML runs it
    sys.modules[name] = module

    def execute() -> None:
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(module)

    try:
        _run_user_code(shown, execute, near=path)
    except ImportFailed:
        sys.modules.pop(name, None)
        raise
    return module


def _load_module(name: str) -> Any:
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    return _run_user_code(f"module '{name}'", lambda: importlib.import_module(name))


def _pipelines_of(module: Any, attribute: str | None, shown: str) -> list[Any]:
    from zenml.pipelines.pipeline_definition import Pipeline

    if attribute is not None:
        if not hasattr(module, attribute):
            raise ImportFailed(f"{shown}: no attribute '{attribute}'{_known_pipelines(module, attribute)}")
        value = getattr(module, attribute)
        if not isinstance(value, Pipeline):
            raise ImportFailed(f"{shown}: '{attribute}' is not a ZenML pipeline (a function decorated with "
                               f"@pipeline) but of type {type(value).__name__}")
        return [value]
    found: dict[int, Any] = {}
    for key in sorted(vars(module)):
        value = vars(module)[key]
        if isinstance(value, Pipeline):
            found.setdefault(id(value), value)
    if not found:
        raise ImportFailed(f"{shown} defines no ZenML pipeline (a function decorated with @pipeline)")
    return sorted(found.values(), key=lambda p: str(p.name))


def _known_pipelines(module: Any, attribute: str) -> str:
    """' (did you mean ...?)', else the pipelines the module does define."""
    from zenml.pipelines.pipeline_definition import Pipeline

    names = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
    if not names:
        return ""
    close = suggest(attribute, names)
    return f" ({close})" if close else f" (its pipelines: {', '.join(names)})"


def _problems(exc: Any) -> str:
    """A pydantic ValidationError in one line: each field and what is wrong (never the value)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())


def _docker(settings: Any, where: str) -> Any:
    """The DockerSettings in a ZenML settings dict (ZenML keeps them as generic BaseSettings)."""
    from pydantic import ValidationError
    from zenml.config.docker_settings import DockerSettings

    value = (settings or {}).get("docker")
    if value is None:
        return None
    try:
        if isinstance(value, dict):
            return DockerSettings.model_validate(value)
        return DockerSettings.model_validate(value.model_dump(exclude_unset=True))
    except ValidationError as exc:
        raise ImportFailed(f"{where}: the docker settings are not valid for ZenML: {_problems(exc)}") from None


def _from_pipeline(pipe: Any) -> _Pipeline:
    name = str(pipe.name)
    needed = [p.name for p in inspect.signature(pipe.entrypoint).parameters.values()
              if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if needed:
        raise ImportFailed(f"pipeline '{name}' has parameters without a default ({', '.join(needed)}): import calls "
                           "the pipeline function with no arguments to list its steps; give them defaults")

    def prepare() -> None:
        pipe.prepare()

    try:
        prepare()
    except KeyboardInterrupt:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's pipeline function may raise anything
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ImportFailed(f"cannot read the steps of pipeline '{name}' (its function ran with no "
                           f"arguments): {detail}") from None
    steps: list[tuple[str, Any, list[str]]] = []
    for invocation_id, invocation in pipe.invocations.items():
        steps.append((str(invocation_id), _docker(invocation.step.configuration.settings,
                                                  f"step '{invocation_id}' of pipeline '{name}'"),
                      sorted(str(u) for u in invocation.upstream_steps)))
    return _Pipeline(name, _docker(pipe.configuration.settings, f"pipeline '{name}'"), steps, ordered=True)


def _from_run_config(path: Path, shown: str) -> _Pipeline:
    from pydantic import ValidationError
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
    from zenml.utils import yaml_utils

    try:
        read_regular(path)  # a FIFO or a device in its place is an error, not a hang in ZenML's reader
        data = yaml_utils.read_yaml(str(path))
    except FileNotFoundError:
        raise ImportFailed(f"cannot read {shown}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"cannot read {shown}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    except Exception as exc:  # noqa: BLE001 - yaml's errors, through ZenML's own reader
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is None:
            raise ImportFailed(f"{shown}: not valid YAML: {problem}") from None
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        at = Location(path, mark.line + 1, mark.column + 1, lines[mark.line] if mark.line < len(lines) else "")
        raise ConfigError([Diagnostic(at, f"not valid YAML: {problem}",
                                      "a ZenML run configuration is a YAML mapping, like `settings: {docker: ...}`")]
                          ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ImportFailed(f"{shown}: a ZenML run configuration is a mapping, not a {type(data).__name__}")
    try:
        config = PipelineRunConfiguration.model_validate(data)
    except ValidationError as exc:
        raise ImportFailed(f"{shown}: not a valid ZenML run configuration: {_problems(exc)}") from None
    pipeline_settings = _docker(config.settings, shown)
    if not config.steps:  # absent, null or empty: nothing to make an environment of
        raise ImportFailed(f"{shown}: the run configuration lists no steps: import makes one environment per step "
                           "under 'steps:'; import the pipeline's .py file or module instead")
    steps: list[tuple[str, Any, list[str]]] = [(str(name), _docker(step.settings, f"{shown}: step '{name}'"), [])
                                               for name, step in sorted(config.steps.items())]
    return _Pipeline(path.stem, pipeline_settings, steps, ordered=False)


def read_target(target: str, cwd: Path) -> list[_Pipeline]:
    """The pipelines TARGET names: FILE.py[:ATTR], MODULE[:ATTR] or a run-config FILE.yaml."""
    _zenml()
    head, sep, attribute = target.rpartition(":") if ":" in target else (target, "", "")
    path_text, attr = (head, attribute) if sep else (target, None)
    if sep and (not attr or not attr.isidentifier()):
        raise UsageError(f"'{target}': after ':' comes a pipeline's attribute name")
    if path_text.endswith((".yaml", ".yml")):
        if attr is not None:
            raise UsageError(f"'{target}': a run configuration takes no ':attribute'")
        return [_from_run_config(cwd / path_text, path_text)]
    if path_text.endswith(".py"):
        module = _load_file(cwd / path_text, path_text)
        shown = path_text
    else:
        if not all(part.isidentifier() for part in path_text.split(".")):
            raise UsageError(f"'{target}' is neither a .py file, a module name nor a .yaml run configuration")
        module = _load_module(path_text)
        shown = f"module '{path_text}'"
    return [_from_pipeline(p) for p in _pipelines_of(module, attr, shown)]


# ---- translating DockerSettings -------------------------------------------------------------

def _merged(pipeline: Any, step: Any, where: str) -> Any:
    """The settings a step runs with: ZenML's merge of the step's set fields over the pipeline's."""
    from pydantic import ValidationError
    from zenml.config.docker_settings import DockerSettings
    from zenml.utils import dict_utils

    if step is None:
        return pipeline
    if pipeline is None:
        return step
    combined = dict_utils.recursive_update(pipeline.model_dump(exclude_unset=True),
                                           step.model_dump(exclude_unset=True))
    try:
        return DockerSettings.model_validate(combined)
    except ValidationError as exc:
        raise ImportFailed(f"{where}: its docker settings merged over the pipeline's are not valid for ZenML: "
                           f"{_problems(exc)}") from None


@dataclass
class _Context:
    root: Path
    cwd: Path
    python: str
    zenml_version: str
    warnings: list[str]
    integrations: dict[str, dict[str, Any]]
    scope: str = ""
    warned: set[tuple[str, str, str]] = field(default_factory=set)


def _project_path(value: str, what: str, ctx: _Context) -> str:
    """A path ZenML reads relative to the working directory, as dockwright reads it: from the root."""
    path = (ctx.cwd / value).resolve()
    try:
        rel = path.relative_to(ctx.root.resolve())
    except ValueError:
        raise ImportFailed(f"{what} '{value}' is outside the project (the directory dockwright.yaml is written "
                           "to); dockwright reads every file from inside the project") from None
    return rel.as_posix() or "."


def _literal(value: Any) -> str:
    """ZenML writes ENV KEY='value' (no expansion): every '$' is literal, '$$' to dockwright."""
    return str(value).replace("$", "$$")


def _combined(reqs: list[str]) -> list[str]:
    """Requirements with each package once, as pip reads a file that names one twice (ZenML's
    registry does: `pandas<2.2.0` and `pandas>=2.0.0`): extras and specifiers joined. Entries whose
    markers or URLs differ are kept as they are (dockwright then reports them)."""
    groups: dict[str, list[Requirement]] = {}
    order: list[tuple[str, str]] = []  # ("name", key) or ("text", a line that is not PEP 508), in order
    for text in dict.fromkeys(reqs):
        try:
            req = Requirement(text)
        except InvalidRequirement:
            order.append(("text", text))
            continue
        key = str(canonicalize_name(req.name))
        if key not in groups:
            groups[key] = []
            order.append(("name", key))
        groups[key].append(req)
    out: list[str] = []
    for kind, key in order:
        out += [key] if kind == "text" else _joined(reqs, groups[key])
    return out


def _joined(reqs: list[str], group: list[Requirement]) -> list[str]:
    """One package's requirements as one (extras and specifiers joined), unless one is a URL or their
    markers differ; a single one as it was written."""
    if len(group) == 1:
        return [_original(reqs, group[0])]
    if any(r.url for r in group) or len({str(r.marker) for r in group}) > 1:
        return [str(r) for r in group]
    extras = sorted(set().union(*(r.extras for r in group)))
    specifiers = str(SpecifierSet(",".join(str(r.specifier) for r in group if str(r.specifier))))
    marker = f"; {group[0].marker}" if group[0].marker else ""
    return [group[0].name + (f"[{','.join(extras)}]" if extras else "") + specifiers + marker]


def _original(reqs: list[str], req: Requirement) -> str:
    """The text a requirement was written as (kept when nothing needs joining)."""
    return next(t for t in reqs if _same(t, req))


def _same(text: str, req: Requirement) -> bool:
    try:
        return Requirement(text) == req
    except InvalidRequirement:
        return False


def _integration(name: str, ctx: _Context, where: str) -> str:
    from zenml.enums import OperatingSystemType
    from zenml.integrations.registry import integration_registry

    registry = integration_registry.integrations
    if name not in registry:
        raise ImportFailed(f"{where}: unknown ZenML integration '{name}' in required_integrations")
    bundle = dockwright_name(name)
    if bundle not in ctx.integrations:
        reqs = integration_registry.select_integration_requirements(
            integration_name=name, target_os=OperatingSystemType.LINUX)
        data: dict[str, Any] = {"requirements": _combined(sorted(set(reqs)))}
        apt = list(registry[name].APT_PACKAGES)
        if apt:
            data["apt_packages"] = sorted(set(apt))
        ctx.integrations[bundle] = data
    return bundle


def _warn(ctx: _Context, where: str, key: str, value: Any, text: str | None = None) -> None:
    """One warning per setting and pipeline: a step that inherits the pipeline's value is not named again.
    Only booleans and ZenML's enum values are shown: a string or mapping may hold a token."""
    seen = (ctx.scope, key, repr(value))
    if seen in ctx.warned:
        return
    ctx.warned.add(seen)
    shown = getattr(value, "value", value)
    said = f"{key}={shown}" if isinstance(shown, bool) or shown is not value else f"{key} is set but"
    ctx.warnings.append(f"{where}: " + (text or f"{said} has no equivalent in dockwright.yaml") + f" ({_INSTEAD[key]})")


def translate(settings: Any, ctx: _Context, where: str) -> dict[str, Any]:
    """One dockwright environment for one DockerSettings (None: ZenML's defaults)."""
    from zenml.config.docker_settings import DockerSettings

    s = settings if settings is not None else DockerSettings()
    env = _base(s, ctx, where)
    if s.skip_build:  # ZenML runs the parent image as it is and ignores every other setting
        _warn(ctx, where, "skip_build", True, "skip_build=True: ZenML runs the parent image as it is and ignores the "
              "other settings; so does this environment")
        return {"parent_image": s.parent_image}
    env.update(_installs(s, ctx, where))
    variables = {str(k).upper(): _literal(v) for k, v in {**s.environment, **s.runtime_environment}.items()}
    if variables:
        env["env"] = dict(sorted(variables.items()))
    for key in sorted(k for k in (str(k).upper() for k in s.environment) if k.startswith(("PIP_", "UV_"))):
        _warn(ctx, where, "environment", key, f"environment {key} is set before the installs in ZenML, not here")
    env.update(_build_options(s, ctx, where))
    if s.user:
        env["user"] = s.user
    env["workdir"] = "/app"
    _warn_unmapped(s, ctx, where)
    return env


def _base(s: Any, ctx: _Context, where: str) -> dict[str, Any]:
    """What the image starts from: the settings' Dockerfile (and context), else the parent image
    (ZenML's default one when none is set)."""
    if not s.dockerfile:
        return {"parent_image": s.parent_image or f"zenmldocker/zenml:{ctx.zenml_version}-py{ctx.python}"}
    env = {"dockerfile": _project_path(s.dockerfile, f"{where}: dockerfile", ctx)}
    if s.build_context_root:
        env["context"] = _project_path(s.build_context_root, f"{where}: build_context_root", ctx)
    if s.parent_image:
        _warn(ctx, where, "parent_image", s.parent_image, "parent_image is set with a dockerfile")
    return env


def _installs(s: Any, ctx: _Context, where: str) -> dict[str, Any]:
    """The installer and what it installs: integrations, apt packages, requirements (or their file)."""
    from zenml.config.docker_settings import PythonPackageInstaller

    env: dict[str, Any] = {"installer": "pip" if s.python_package_installer == PythonPackageInstaller.PIP else "uv"}
    args = [f"--{k}" if v is None else f"--{k}={v}" for k, v in s.python_package_installer_args.items()]
    if args:
        env["installer_args"] = args
    bundles = [_integration(name, ctx, where) for name in s.required_integrations]
    if bundles:
        env["integrations"] = list(dict.fromkeys(bundles))
    if s.apt_packages:
        env["apt_packages"] = list(dict.fromkeys(s.apt_packages))
    if isinstance(s.requirements, str):
        env["requirements_files"] = [_project_path(s.requirements, f"{where}: requirements", ctx)]
    elif s.requirements:
        env["requirements"] = _combined(list(s.requirements))
    joined = _shared_requirements(env, ctx)
    if joined:
        env["requirements"] = env.get("requirements", []) + joined
    return env


def _shared_requirements(env: dict[str, Any], ctx: _Context) -> list[str]:
    """ZenML installs all integrations' requirements from one file, so pip joins what two of them say
    about one package; dockwright's bundles would let the last one win: the joined requirements to
    say in the environment (for packages it does not name itself)."""
    own = set(_req_names(env.get("requirements", [])))
    shared: dict[str, list[str]] = {}
    for bundle in env.get("integrations", []):
        for name, text in _req_names(ctx.integrations[bundle]["requirements"]).items():
            shared.setdefault(name, []).append(text)
    joined = []
    for name, texts in sorted(shared.items()):
        together = _combined(texts)
        if name not in own and not (len(together) == 1 and _same(together[0], Requirement(texts[-1]))):
            joined += together
    return joined


def _build_options(s: Any, ctx: _Context, where: str) -> dict[str, Any]:
    """build_args and labels from build_config.build_options and the deprecated build_options; any other
    build option is a warning."""
    options = [s.build_config.build_options if s.build_config else None]
    if s.build_options:
        from zenml.config.docker_settings import DockerBuildOptions

        options.append(DockerBuildOptions.model_validate(s.build_options))
    env: dict[str, Any] = {}
    for opts in (o for o in options if o is not None):
        if opts.build_args:
            env.setdefault("build_args", {}).update({str(k): str(v) for k, v in opts.build_args.items()})
        if opts.labels:
            env.setdefault("labels", {}).update({str(k): str(v) for k, v in opts.labels.items()})
        rest = sorted(k for k in opts.model_dump(exclude_none=True) if k not in ("build_args", "labels"))
        if rest:
            _warn(ctx, where, "build_options", ", ".join(rest), f"build options {', '.join(rest)} have no equivalent "
                  "in dockwright.yaml")
    return env


# Fields with no equivalent, warned about when set (allow_*, copy_*) or set to something that acts.
_UNMAPPED = ("parent_image_build_config", "image_tag", "target_repository", "python_package_installer_cache_mount",
             "pyproject_path", "pyproject_export_command", "local_project_install_command",
             "allow_including_files_in_images", "allow_download_from_code_repository",
             "allow_download_from_artifact_store", "copy_files", "copy_global_config", "source_files",
             "required_hub_plugins", "replicate_local_python_environment", "prevent_build_reuse")


def _warn_unmapped(s: Any, ctx: _Context, where: str) -> None:
    set_fields = set(s.model_fields_set)
    if s.build_config is not None and s.build_config.dockerignore or s.dockerignore:
        _warn(ctx, where, "dockerignore", s.dockerignore or s.build_config.dockerignore)
    for key in _UNMAPPED:
        value = getattr(s, key)
        if key in set_fields and (key.startswith(("allow_", "copy_")) or value not in (None, [], False)):
            if hasattr(value, "model_dump"):
                value = json.dumps(value.model_dump(exclude_none=True), sort_keys=True)
            _warn(ctx, where, key, value)
    if not s.disable_automatic_requirements_detection:
        _warn(ctx, where, "disable_automatic_requirements_detection", False)


# ---- steps as settings or environments ------------------------------------------------------

def _req_names(reqs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in reqs:
        try:
            out[str(canonicalize_name(Requirement(text).name))] = text
        except InvalidRequirement:
            out[text] = text
    return out


# What a step's settings cannot change without another base or install: a separate environment then.
_SAME_BASE = ("dockerfile", "context", "parent_image", "installer", "installer_args", "integrations",
              "requirements_files", "user", "workdir")


def _delta(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any] | None:
    """Step `settings:` that, merged over base by dockwright's rules, give child; None if they cannot."""
    if any(base.get(key) != child.get(key) for key in _SAME_BASE):
        return None  # another base or install: a separate environment says it plainly
    b_reqs, c_reqs = _req_names(base.get("requirements", [])), _req_names(child.get("requirements", []))
    b_apt, c_apt = base.get("apt_packages", []), child.get("apt_packages", [])
    if not set(b_reqs) <= set(c_reqs) or not set(b_apt) <= set(c_apt):
        return None  # settings add, they do not remove
    out: dict[str, Any] = {}
    added = [c_reqs[n] for n in c_reqs if b_reqs.get(n) != c_reqs[n]]
    if added:
        out["requirements"] = added
    new_apt = [p for p in c_apt if p not in b_apt]
    if new_apt:
        out["apt_packages"] = new_apt
    for key in ("env", "build_args", "labels"):
        changed = _map_delta(base.get(key, {}), child.get(key, {}))
        if changed:
            out[key] = changed
    return out


def _map_delta(b_map: dict[str, Any], c_map: dict[str, Any]) -> dict[str, Any]:
    """The keys child sets differently, and None for those it drops; sorted."""
    changed = {k: v for k, v in c_map.items() if b_map.get(k) != v}
    changed.update({k: None for k in b_map if k not in c_map})
    return dict(sorted(changed.items()))


def _unique(name: str, taken: set[str]) -> str:
    chosen, n = name, 2
    while chosen in taken:
        chosen, n = f"{name}-{n}", n + 1
    taken.add(chosen)
    return chosen


def build(pipelines: list[_Pipeline], *, root: Path, cwd: Path, project: str, python: str | None,
          target: str) -> Result:
    """The dockwright.yaml text for pipelines read from target; deterministic."""
    zenml = _zenml()
    ctx = _Context(root=root, cwd=cwd, python=_python_version(python), zenml_version=str(zenml.__version__),
                   warnings=[], integrations={})
    result = Result(text="")
    made = _Builder(ctx, result, target)
    for pipe in pipelines:
        made.add(pipe)
    result.notes += _without_zenml(made.envs, ctx)
    if made.stack_requirements:
        result.warnings.append(f"install_stack_requirements=True (ZenML's default) has no equivalent in "
                               f"dockwright.yaml ({_INSTEAD['install_stack_requirements']})")
    result.warnings = ctx.warnings + result.warnings
    result.text = _yaml(ctx, made, project=project, target=target)
    return result


class _Builder:
    """The environments and the `pipelines:` lines, pipeline by pipeline; notes go to result."""

    def __init__(self, ctx: _Context, result: Result, target: str) -> None:
        self.ctx, self.result, self.target = ctx, result, target
        self.envs: list[Environment] = []
        self.lines: list[str] = []  # under `pipelines:`
        self.pipe_names: set[str] = set()
        self.env_names: set[str] = set()
        self.stack_requirements = False  # a pipeline or step installs the stack's requirements (in ZenML)

    def add(self, pipe: _Pipeline) -> None:
        """The pipeline's environment (from its settings), its steps' settings or environments, its lines."""
        pname = _unique(dockwright_name(pipe.name), self.pipe_names)
        if pname != pipe.name:
            self.result.notes.append(f"ZenML pipeline '{pipe.name}' is '{pname}' in dockwright.yaml")
        self.result.pipelines.append(pname)
        self.ctx.scope = pipe.name
        base = translate(pipe.settings, self.ctx, f"pipeline '{pipe.name}'")
        ename = _unique(pname, self.env_names)
        self.envs.append(Environment(ename, base))
        self.stack_requirements |= pipe.settings is None or (pipe.settings.install_stack_requirements
                                                             and not pipe.settings.skip_build)
        snames = self._step_names(pipe)
        self.lines += [f"  {pname}:", f"    environment: {ename}"]
        self.lines.append("    steps:" if pipe.steps else "    steps: {}")
        for step_id, step_settings, upstream in pipe.steps:
            parts: list[str] = []
            after = [snames[u] for u in upstream if u in snames]
            if after:
                parts.append("after: [" + ", ".join(after) + "]")
            if step_settings is not None:
                parts += self._step(pipe, step_id, step_settings, base, ename, f"{pname}-{snames[step_id]}")
            self.lines.append(f"      {snames[step_id]}: {{" + ", ".join(parts) + "}")
        if not pipe.ordered:
            self.result.notes.append(f"{self.target} is a run configuration: it names no pipeline, so the pipeline "
                                     f"is '{pname}' (after the file's name) and its steps have no `after:`; import "
                                     "the pipeline's Python file to get them")

    def _step_names(self, pipe: _Pipeline) -> dict[str, str]:
        snames: dict[str, str] = {}
        taken: set[str] = set()
        for step_id, _, _ in pipe.steps:
            snames[step_id] = _unique(dockwright_name(step_id), taken)
            if snames[step_id] != step_id:
                self.result.notes.append(f"ZenML step '{step_id}' of pipeline '{pipe.name}' is '{snames[step_id]}'")
        return snames

    def _step(self, pipe: _Pipeline, step_id: str, step_settings: Any, base: dict[str, Any], ename: str,
              own_name: str) -> list[str]:
        """A step's own settings: the environment of another step with the same ones, `settings:` over the
        pipeline's environment when they can say it, else an environment of its own (named own_name)."""
        swhere = f"step '{step_id}' of pipeline '{pipe.name}'"
        merged = _merged(pipe.settings, step_settings, swhere)
        self.stack_requirements |= merged.install_stack_requirements and not merged.skip_build
        child = translate(merged, self.ctx, swhere)
        delta = _delta(base, child)
        same = next((e.name for e in self.envs if e.data == child), None)
        if same is not None and same != ename:
            return [f"environment: {same}"]  # two steps with the same settings share one
        if delta is None:
            own = _unique(own_name, self.env_names)
            self.envs.append(Environment(own, child))
            return [f"environment: {own}"]
        return ["settings: " + _flow(delta)] if delta else []


def _without_zenml(envs: list[Environment], ctx: _Context) -> list[str]:
    """For each environment that installs no zenml on an official `python` parent image, which surely has none,
    the import adds zenml[local] at the client's version, as the `zenml:` section's checks ask (ZenML runs steps
    only where zenml is installed), with a note. On another parent (a Dockerfile, another image) compile's
    checks warn, at its place, that they cannot tell."""
    notes = []
    for env in envs:
        reqs = list(env.data.get("requirements", []))
        for bundle in env.data.get("integrations", []):
            reqs += ctx.integrations[bundle]["requirements"]
        image = str(env.data.get("parent_image", ""))
        if image.startswith("zenmldocker/zenml:") or "zenml" in _req_names(reqs):
            continue
        if zenml_checks.lacks_zenml(image):
            requirement = f"zenml[local]=={ctx.zenml_version}"
            env.data = _with_requirement(env.data, requirement)
            notes.append(f"environment '{env.name}' starts from {image}, which has no zenml: the import adds "
                         f"\"{requirement}\" to its requirements (ZenML runs steps only where zenml is installed)")
    return notes


def _with_requirement(data: dict[str, Any], requirement: str) -> dict[str, Any]:
    """data with requirement appended to its requirements, in the place translate() writes them."""
    if "requirements" in data:
        return {**data, "requirements": [*data["requirements"], requirement]}
    later = ("env", "build_args", "labels", "user", "workdir")
    out = {k: v for k, v in data.items() if k not in later}
    out["requirements"] = [requirement]
    out.update((k, v) for k, v in data.items() if k in later)
    return out


def _yaml(ctx: _Context, made: _Builder, *, project: str, target: str) -> str:
    shown_target = "".join(c if c.isprintable() else "?" for c in target)
    lines = [f"# Written by `dockwright import zenml {shown_target}` from the pipelines' DockerSettings (ZenML "
             f"{ctx.zenml_version}).",
             "# Check it with `dockwright validate`, then `dockwright compile` writes the Dockerfiles.",
             "version: 1",
             f"project: {project}",
             *_zenml_section(ctx),
             ""]
    if ctx.integrations:
        lines.append("integrations:   # ZenML integrations, with the requirements ZenML's registry gives them")
        for name, data in sorted(ctx.integrations.items()):
            lines.append(f"  {name}:")
            lines += _block(data, 4)
        lines.append("")
    lines.append("environments:")
    for env in made.envs:
        lines.append(f"  {env.name}:")
        lines += _block(env.data, 4)
    lines += ["", "pipelines:", *made.lines, ""]
    return "\n".join(lines)


def _zenml_section(ctx: _Context) -> list[str]:
    """`zenml: {version: ...}`, the ZenML the pipelines were read with: compile then checks that every image
    ZenML runs can run its steps (docs/zenml.md). None for a version that is not a release (a local build)."""
    if not zenml_checks.VERSION.fullmatch(ctx.zenml_version):
        return []
    return [f"zenml: {{version: {_q(ctx.zenml_version)}}}   # the ZenML client's version; compile checks the images "
            "can run its steps"]


def _q(value: Any) -> str:
    """A YAML double-quoted scalar that reads back as exactly value: printable characters as they
    are, everything else (controls, line and paragraph separators, NEL, BOM, unassigned) escaped."""
    if value is None:
        return "null"
    out = ['"']
    for c in str(value):
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable() and c != "\ufeff":
            out.append(c)
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)


def _key(key: str) -> str:
    """A mapping key: plain when it is a plain name, else quoted."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key) and key.lower() not in _YAML_WORDS
    return key if plain else _q(key)


def _flow(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            parts.append(f"{key}: [" + ", ".join(_q(v) for v in value) + "]")
        elif isinstance(value, dict):
            parts.append(f"{key}: {{" + ", ".join(f"{_key(k)}: {_q(v)}" for k, v in value.items()) + "}")
        else:
            parts.append(f"{key}: {_q(value)}")
    return "{" + ", ".join(parts) + "}"


def _block(data: dict[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    out = []
    for key, value in data.items():
        if isinstance(value, list):
            out.append(f"{pad}{key}: [" + ", ".join(_q(v) for v in value) + "]")
        elif isinstance(value, dict):
            out.append(f"{pad}{key}:")
            out += [f"{pad}  {_key(k)}: {_q(v)}" for k, v in value.items()]
        else:
            out.append(f"{pad}{key}: {_q(value)}")
    return out
