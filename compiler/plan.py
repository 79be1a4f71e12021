"""Effective environments, layering, dedupe and the image plan: the intermediate representation.

Pure: takes the model, the graphs' orders and what inputs read; returns records (manifest.py writes the manifest from them).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from .errors import Collector
from .inputs import Inputs
from .schema import indentation_hint
from .lockfile import Lock, LockedImage, Package
from .fields import FIELDS, Field, Layer, Merge, requirement_name
from .model import EMPTY, Base, Environment, Fragment, Project, Sourced, Target, apply, inherit

UV_VERSION = "0.13.9"
VENV = "/opt/venv"
UV_HOME = "/opt/dockwright/uv"
REQUIREMENTS_IN_IMAGE = "/opt/dockwright/requirements.txt"
HEAVY_REQUIREMENTS_IN_IMAGE = "/opt/dockwright/requirements-heavy.txt"
HEAVY_BYTES = 50_000_000  # a locked package with a file this large (on any locked platform) gets its own layer
_MACHINE = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}  # platform_machine of each lockable platform
CERTS_IN_IMAGE = "/opt/dockwright/certs"  # certificates keep their project-relative paths below it
CA_BUNDLE = "/opt/dockwright/ca-certificates.crt"  # the image's own bundle plus the project's certificates
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, and BusyBox/Alpine's
LOCAL_IN_IMAGE = "/opt/dockwright/local"  # local packages are staged below it (project-relative), then removed


@dataclass(frozen=True)
class ImageSpec:
    """Everything a generated Dockerfile says, without names: equal specs are one image."""

    from_ref: str
    layered: bool
    build_args: tuple[tuple[str, str], ...]
    apt: tuple[str, ...]
    certificates: tuple[tuple[str, str], ...]  # (project file, path in the image), sorted; bundled before installs
    python_setup: bool
    installer: str
    installer_args: tuple[str, ...]
    index_url: str | None  # rendered as installer flags, only where requirements are installed
    extra_index_urls: tuple[str, ...]
    requirements: tuple[str, ...]  # the full effective set, when this image installs requirements
    env: tuple[tuple[str, str], ...]
    run: tuple[str, ...]
    as_root: bool  # switch to root first: the parent image may end as a user other than root
    create_user: bool
    workdir_owner: str | None  # chown the workdir to this (non-root) user
    user: str | None
    workdir: str | None
    labels: tuple[tuple[str, str], ...]
    copy: tuple[tuple[str, str], ...]  # (source, destination)
    owner: str | None  # copied files belong to the environment's (non-root) user
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    local_packages: tuple[tuple[str, str], ...] = ()  # (project directory, staging path), installed after requirements
    # With dockwright.lock: requirements (above) and heavy are `name==version [; marker] --hash=...` lines,
    # installed with --require-hashes --no-deps; heavy ones first, in a layer of their own.
    locked: bool = False
    heavy: tuple[str, ...] = ()
    # RUN --mount (BuildKit or buildah): caches on the apt and install steps; secrets (id, "env NAME" | "file
    # path": where the builder reads it, never its value) on the Python install steps.
    cache_mounts: bool | None = None
    secrets: tuple[tuple[str, str], ...] = ()

    @property
    def mounts(self) -> bool:
        """Its Dockerfile has RUN --mount: it needs BuildKit or buildah."""
        return bool(self.cache_mounts or self.secrets)

    @property
    def assumes_root_parent(self) -> bool:
        """It switches to root for its installs and cannot switch back: compile does not know the user its
        parent image runs as, and the environment sets none. Right only on a parent that runs as root."""
        return self.as_root and self.user is None


@dataclass(frozen=True)
class Image:
    name: str
    generated: bool  # False: a custom parent built from the user's own Dockerfile
    repository: str  # local name: project-image (FROM lines use it, so they never depend on the registry)
    tag: str  # repository:first 12 hex digits of the spec hash
    push_tag: str | None  # the same under `registry:`, when one is set
    spec_hash: str
    parent: str | None
    from_ref: str
    environments: tuple[str, ...]
    files: tuple[str, ...]  # the YAML files its environments are written in
    dockerfile: str
    context: str
    inputs: tuple[str, ...]
    checks: tuple[str, ...]
    spec: ImageSpec | None = None
    user: str | None = None  # the environment's user (inherited by layered images)
    requirements: tuple[str, ...] = ()  # as the YAML asks for them (spec.requirements, before the lock pins them)
    base_ref: str = ""  # an external parent as written (from_ref carries its locked digest)
    unpinned: bool = False  # an external parent that the lock does not pin to a digest
    runs_as: str | None = None  # the user the image ends as, when compile knows it
    layering: str = ""  # why it is, or is not, built FROM its parent environment's image


@dataclass
class Plan:
    project: Project
    environments: dict[str, Environment]
    env_image: dict[str, str]  # environment name -> image name
    images: dict[str, Image]
    steps: dict[str, Any]  # pipeline -> step DAG
    lock: Lock | None = None  # dockwright.lock, when the project has one


def _env_of_fragment(frag: Fragment, *, name: str, kind: str, parent: Environment | None, parent_name: str | None,
                     project: Project, inputs: Inputs, via: str) -> Environment:
    start = inherit(parent, step=via) if parent is not None else EMPTY
    for integ in frag.integrations:
        bundle = project.integrations.get(integ.value)
        if bundle is not None:
            start = apply(start, bundle, file_requirements=inputs.requirements, step=f"integration {integ.value}")
    env = apply(start, frag, file_requirements=inputs.requirements)
    return Environment(**{**env.__dict__, "name": name, "kind": kind, "location": frag.location,
                          "file": frag.file, "parent": parent_name})


def effective(project: Project, order: list[str], inputs: Inputs, sink: Collector) -> dict[str, Environment]:
    """Every environment the project defines or derives (step and target settings), fully merged."""
    out: dict[str, Environment] = {}
    for name in order:
        _defined(project, name, inputs, sink, out)
    for pipe in project.pipelines.values():
        for step in pipe.steps:
            if step.settings is None or step.environment is None or step.environment.value not in out:
                continue
            base = step.environment.value
            out[step.settings.name] = _env_of_fragment(
                step.settings, name=step.settings.name, kind="step", parent=out[base], parent_name=base,
                project=project, inputs=inputs, via=f"environment {base}")
    for target in (project.runner, project.server):
        if target is not None:
            _target(project, target, inputs, sink, out)
    return out


def _defined(project: Project, name: str, inputs: Inputs, sink: Collector, out: dict[str, Environment]) -> None:
    """Environment `name` as the project defines it, merged onto its parent (already in out)."""
    frag = project.environments[name]
    parent_name = frag.extends.value if frag.extends is not None else None
    parent = out.get(parent_name) if parent_name else None
    if parent_name and parent is None:
        return  # unknown parent: already reported
    env = _env_of_fragment(frag, name=name, kind="environment", parent=parent, parent_name=parent_name,
                           project=project, inputs=inputs, via=f"extends {parent_name}")
    if env.base is None and parent_name is None and ("environments", name) not in project.broken:
        hint = indentation_hint(name) or (
            "set python: \"3.11\", parent_image: <image:tag>, dockerfile: <path>, or extends: <environment>")
        sink.error(frag.location, f"environment '{name}' has no base image", hint)
    out[name] = env


def _target(project: Project, target: Target, inputs: Inputs, sink: Collector, out: dict[str, Environment]) -> None:
    """The runner's or the server's settings image, merged onto its environment (in out)."""
    if target.settings is None or target.environment.value not in out:
        return
    if target.settings.name in out:
        pipe_name, step_name = target.settings.name.split(".", 1)
        sink.error(target.settings.location,
                   f"the {target.role}'s settings image '{target.settings.name}' has the same name as "
                   f"step '{step_name}' of pipeline '{pipe_name}'", "rename that step or pipeline")
        return
    base = target.environment.value
    out[target.settings.name] = _env_of_fragment(
        target.settings, name=target.settings.name, kind=target.role, parent=out[base], parent_name=base,
        project=project, inputs=inputs, via=f"environment {base}")


def _usage(project: Project, envs: Mapping[str, Environment], sink: Collector) -> None:
    used = _used_environments(project, envs)
    for name, frag in project.environments.items():
        if name not in used:
            sink.warn(frag.location, f"environment '{name}' is not used by the runner, the server or any pipeline",
                      "use it, or remove it")
    used_integrations = {i.value for env in envs.values() for i in env.integrations}
    used_integrations |= {i.value for f in project.environments.values() for i in f.integrations}
    for name, frag in project.integrations.items():
        if name not in used_integrations:
            sink.warn(frag.location, f"integration '{name}' is not used by any environment", "use it, or remove it")


def _used_environments(project: Project, envs: Mapping[str, Environment]) -> set[str]:
    """The environments a pipeline, a step, the runner or the server uses, and every one they derive from."""
    used = {pipe.environment.value for pipe in project.pipelines.values() if pipe.environment is not None}
    used |= {step.environment.value for pipe in project.pipelines.values() for step in pipe.steps
             if step.environment is not None}
    used |= {target.environment.value for target in (project.runner, project.server) if target is not None}
    frontier = list(used)
    while frontier:
        env = envs.get(frontier.pop())
        if env is not None and env.parent and env.parent not in used:
            used.add(env.parent)
            frontier.append(env.parent)
    return used


# -- images --------------------------------------------------------------------------------------


def _values(items: Mapping[str, Sourced[str]]) -> dict[str, str]:
    return {k: v.value for k, v in items.items()}


def _copies(env: Environment, inputs: Inputs) -> list[tuple[str, str]]:
    out = []
    workdir = env.workdir.value if env.workdir is not None else "/"
    for item in env.copy:
        src = posixpath.normpath(item.value.source)
        is_dir = inputs.kinds.get(item.value.source) == "dir" or inputs.kinds.get(src) == "dir"
        if item.value.dest is None:
            dest = posixpath.normpath(posixpath.join(workdir, src))
        else:
            dest = posixpath.join(workdir, item.value.dest) if not item.value.dest.startswith("/") \
                else item.value.dest
            dest = posixpath.normpath(dest) + ("/" if item.value.dest.endswith("/") else "")
        if is_dir:
            src = src.rstrip("/") + "/" if src != "." else "."
            dest = dest.rstrip("/") + "/"
        out.append((src, dest))
    return out


def _local_packages(env: Environment) -> list[tuple[str, str]]:
    """(directory to COPY, staging directory in the image) for each local package, in the order listed."""
    out = []
    for item in env.local_packages:
        path = item.value
        if path == ".":
            out.append((".", f"{LOCAL_IN_IMAGE}/"))
        else:
            out.append((f"{path}/", f"{LOCAL_IN_IMAGE}/{path}/"))
    return out


def _has_python(env: Environment) -> bool:
    """The image installs Python packages: it gets the venv."""
    return bool(env.requirements or env.local_packages)


def _sorted_pairs(items: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(items.items()))


def _requirements(env: Environment) -> tuple[str, ...]:
    return tuple(env.requirements[k].value for k in sorted(env.requirements))


def _apt(env: Environment) -> tuple[str, ...]:
    return tuple(env.apt[k].value for k in sorted(env.apt))


def _certificates(env: Environment) -> tuple[tuple[str, str], ...]:
    return tuple((path, f"{CERTS_IN_IMAGE}/{path}") for path in sorted(env.certificates))


def _index(env: Environment, *, install: bool) -> tuple[str | None, tuple[str, ...]]:
    """index_url and extra_index_urls, when this image installs requirements (else they say nothing)."""
    if not install:
        return None, ()
    return (env.index_url.value if env.index_url is not None else None,
            tuple(u.value for u in env.extra_index_urls))


def _plain(value: Any) -> Any:
    """A field's value without origins: a mapping's sorted keys (what it holds), a Sourced's value."""
    if isinstance(value, Mapping):
        return sorted(value)
    return value.value if value is not None else None


def _layering(env: Environment, parent: Environment) -> str | None:
    """None when env can be built FROM parent's image (docs/language.md, "Layering": every field with a
    `match` rule in fields.FIELDS is the parent's, and nothing removed that the parent set); else why not."""
    for f in FIELDS:
        if f.match is None:
            continue
        mine, theirs = _plain(getattr(env, f.name)), _plain(getattr(parent, f.name))
        if mine != theirs:
            return _differs(f.match, f.label, mine, theirs, parent.name)
    unset = [r for r in env.removed if r.field != "secrets"]  # a secret is in no image: removing one unsets nothing
    if unset:
        removed = ", ".join(sorted(str(r) for r in unset))
        return f"removes {removed} that '{parent.name}' sets, which an image cannot unset"
    return None


def _differs(match: str, label: str, mine: Any, theirs: Any, name: str) -> str:
    """Why a field's value keeps a child from layering on its parent, in words: a value that is not set is
    said so (never Python's None)."""
    if "{child}" not in match and "{parent}" not in match:
        return match.format(name=name)
    if theirs is None:
        return f"{label} {mine}, not set in '{name}'"
    if mine is None:
        return f"{label} not set, {theirs} in '{name}'"
    return match.format(child=mine, parent=theirs, name=name)


_NOT_DEBIAN = ("alpine", "busybox", "centos", "fedora", "rockylinux", "almalinux", "amazonlinux", "ubi",
               "distroless", "scratch", "photon", "opensuse", "archlinux", "oraclelinux", "wolfi", "chainguard")


def _looks_debian(image: str) -> bool:
    name = image.split("@")[0].lower()
    return not any(word in name for word in _NOT_DEBIAN)


def _run_as(env: Environment) -> str | None:
    """The environment's user when it is not root: the one that owns the workdir and copied files."""
    user = env.user.value if env.user is not None else None
    return None if user in (None, "root") else user


def is_root(user: str | None) -> bool:
    """`root`, `0`, `root:root`, `0:0`: a USER that is root (an image with no USER runs as root, too)."""
    return user is not None and user.split(":", 1)[0] in ("root", "0", "")


_OFFICIAL_PYTHON = re.compile(r"(?:(?:index\.)?docker\.io/)?(?:library/)?python(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?")
_NAME = r"(?:[a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})"
_USER_VALUE = re.compile(rf"{_NAME}(?::{_NAME})?")
_DIRECTIVE = re.compile(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*")
_HEREDOC = re.compile(r"<<-?([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1")


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: directives, comments, continuations and heredoc bodies
    handled as BuildKit reads them."""
    lines = text.split("\n")  # only "\n" ends a Dockerfile line (not U+2028 and the like)
    escape, i = "\\", 0
    while i < len(lines) and (m := _DIRECTIVE.fullmatch(lines[i])):
        if m.group(1).lower() == "escape" and m.group(2) in ("\\", "`"):
            escape = m.group(2)
        i += 1
    out: list[tuple[str, str]] = []
    current = ""
    heredocs: list[str] = []
    for line in lines[i:]:
        if heredocs:
            if line.lstrip("\t") == heredocs[0]:
                heredocs.pop(0)
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # also inside a continuation, where BuildKit skips them too
        if stripped.endswith(escape):
            current += stripped[:-1] + " "
            continue
        word, *rest = (current + stripped).split(None, 1)
        current = ""
        out.append((word.upper(), rest[0] if rest else ""))
        heredocs = [m.group(2) for m in _HEREDOC.finditer(out[-1][1])]
    return out


def dockerfile_user(data: bytes) -> str | None:
    """The user a Dockerfile's final stage ends as: its last USER, else its FROM's (an earlier stage's;
    root for `scratch` and the official python images); None when compile cannot know it (another
    image from outside the project, a variable in the value)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return _stage_user(_stages(text))


_Stage = tuple[str | None, str, list[str | None]]  # (name, FROM, [USER values])


def _stages(text: str) -> list[_Stage]:
    stages: list[_Stage] = []
    for word, rest in _instructions(text):
        if word == "FROM":
            args = [a for a in rest.split() if not a.startswith("--")]
            name = args[2].lower() if len(args) >= 3 and args[1].lower() == "as" else None
            stages.append((name, args[0] if args else "", []))
        elif word == "USER" and stages:
            value = rest.split()[0] if rest.split() else ""
            stages[-1][2].append(value if _USER_VALUE.fullmatch(value) else None)
    return stages


def _stage_user(stages: list[_Stage]) -> str | None:
    """The user the last stage ends as, following FROM <earlier stage> back."""
    index = len(stages) - 1
    for _ in range(len(stages)):  # each step goes to an earlier stage: no loop
        if index < 0:
            return None
        name, ref, users = stages[index]
        if users:
            return users[-1]
        if ref.lower() == "scratch" or _OFFICIAL_PYTHON.fullmatch(ref):
            return "root"
        earlier = [n for n, (stage, _, _) in enumerate(stages[:index]) if stage == ref.lower()]
        if not earlier:
            return None
        index = earlier[-1]
    return None


def base_user(env: Environment, inputs: Inputs) -> str | None:
    """The user the image an environment starts FROM runs as, when compile can know it: root for the
    official python images, what a custom parent Dockerfile says; None for any other image."""
    base = env.base.value if env.base is not None else None
    if base is None:
        return None
    if base.dockerfile is not None:
        return dockerfile_user(inputs.dockerfiles.get(base.dockerfile, b""))
    return "root" if base.image and _OFFICIAL_PYTHON.fullmatch(base.image) else None


def _ends_as(env: Environment, parent_user: str | None, as_root: bool) -> str | None:
    """The user an image ends as: the environment's, else its parent's (root once it switched to root
    over a parent compile does not know: build refuses any other parent)."""
    if env.user is not None:
        return env.user.value
    return parent_user if parent_user is not None else ("root" if as_root else None)


# How an environment's fields read in a spec, where not by their merge rule (_rendered).
_RENDER: dict[str, Callable[[Environment, Inputs], Any]] = {
    "certificates": lambda env, inputs: _certificates(env),
    "copy": lambda env, inputs: tuple(_copies(env, inputs)),
    "local_packages": lambda env, inputs: tuple(_local_packages(env)),
}
_SPEC_FIELDS = tuple(f for f in FIELDS if f.layer not in (Layer.NONE, Layer.OWN))  # each an ImageSpec field, too


def _empty(f: Field) -> Any:
    return None if f.merge is Merge.CHILD_WINS else ()


def _render(f: Field, env: Environment, inputs: Inputs) -> Any:
    """The whole value an image says for field f: a scalar's value, a mapping's (key, value) pairs sorted by
    key, entries merged by name in name order, a list's values in order."""
    if f.name in _RENDER:
        return _RENDER[f.name](env, inputs)
    value = getattr(env, f.name)
    if f.merge is Merge.CHILD_WINS:
        return value.value if value is not None else None
    if f.merge is Merge.BY_KEY:
        return _sorted_pairs(_values(value))
    if f.mapping:
        return tuple(value[k].value for k in sorted(value))
    return tuple(item.value for item in value)


def _rendered(env: Environment, inputs: Inputs) -> dict[str, Any]:
    return {f.name: _render(f, env, inputs) for f in _SPEC_FIELDS}


def _whole_spec(env: Environment, from_ref: str, inputs: Inputs, parent_user: str | None) -> ImageSpec:
    values = _rendered(env, inputs)
    install = _has_python(env)
    for f in _SPEC_FIELDS:
        if f.layer is Layer.WITH_INSTALL and not install:
            values[f.name] = _empty(f)  # index URLs say nothing where nothing is installed
    owner = _run_as(env)
    create_user = owner is not None and not owner.isdigit()
    workdir_owner = owner if env.workdir is not None else None
    needs_root = bool(env.apt or env.certificates or values["requirements"] or install or values["run"]
                      or create_user or workdir_owner)
    as_root = needs_root and not is_root(parent_user)
    # The environment's user; else, after a switch to root, the parent's own user (when known).
    user = env.user.value if env.user is not None else (parent_user if as_root else None)
    return ImageSpec(from_ref=from_ref, layered=False, python_setup=install, as_root=as_root,
                     create_user=create_user, workdir_owner=workdir_owner, user=user, owner=owner, **values)


def _delta(f: Field, mine: Any, theirs: Any) -> Any:
    """What a layered image says of f, for the rules that need nothing but the two values."""
    if f.layer is Layer.PARENT:
        return _empty(f)
    if f.layer is Layer.CHANGED:
        return mine if mine != theirs else _empty(f)
    if f.layer is Layer.NEW:
        known = set(theirs)
        return tuple(item for item in mine if item not in known)
    return mine


def _drop_unrepeated(values: dict[str, Any], mine: Mapping[str, Any], theirs: Mapping[str, Any], *, python: bool,
                     steps: bool) -> None:
    """Empty the fields that the layer repeats only where it installs, runs a step, or changes the entrypoint."""
    # Setting ENTRYPOINT resets an inherited CMD, so a new entrypoint repeats the cmd.
    entrypoint = mine["entrypoint"] != theirs["entrypoint"]
    for f in _SPEC_FIELDS:
        layer = f.layer  # compared by identity: an Enum's hash is Python code, and this runs per field and image
        if layer is Layer.WITH_INSTALL:
            repeat = python
        elif layer is Layer.WITH_STEPS:
            repeat = steps
        elif layer is Layer.WITH_ENTRYPOINT:
            repeat = mine[f.name] != theirs[f.name] or (entrypoint and mine[f.name] is not None)
        else:
            repeat = True
        if not repeat:
            values[f.name] = _empty(f)


def _adds(values: Mapping[str, Any]) -> bool:
    """A layered image says something of its own: a field whose rule adds to the parent's is not empty."""
    return any(values[f.name] != _empty(f) for f in _SPEC_FIELDS
               if f.layer in (Layer.NEW, Layer.CHANGED, Layer.WITH_ENTRYPOINT))


def _layered_spec(env: Environment, parent: Environment, from_ref: str, inputs: Inputs,
                  parent_user: str | None) -> ImageSpec | None:
    """Only what env adds to parent (each field by its fields.Layer rule); None when it adds nothing that a
    Dockerfile would say."""
    mine, theirs = _rendered(env, inputs), _rendered(parent, inputs)
    values = {f.name: _delta(f, mine[f.name], theirs[f.name]) for f in _SPEC_FIELDS}
    install = mine["requirements"] != theirs["requirements"]
    python = install or bool(values["local_packages"])
    steps = bool(values["apt"] or values["run"]) or python
    _drop_unrepeated(values, mine, theirs, python=python, steps=steps)
    if not _adds(values):
        return None
    user = _run_as(env)
    new_workdir = values["workdir"]
    as_root = bool(steps or (new_workdir and user)) and not is_root(parent_user)
    return ImageSpec(
        from_ref=from_ref, layered=True, python_setup=python and not _has_python(parent), as_root=as_root,
        create_user=False, workdir_owner=user if new_workdir else None, user=parent_user if as_root else None,
        owner=user if values["copy"] else None, **values,
    )


# ImageSpec fields that only a lock or RUN --mount sets: left out of the hash while unset, so adding them kept
# every other image's tag.
_LOCK_ONLY = ("locked", "heavy", "cache_mounts", "secrets")


def _fields(o: Any) -> dict[str, Any]:
    return {k: v for k, v in o.__dict__.items() if v or k not in _LOCK_ONLY}


def _hash(*parts: Any) -> str:
    # Specs are flat records of strings, tuples and booleans: their __dict__ is what asdict would give.
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=_fields)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _marker(platforms: tuple[str, ...]) -> str:
    return " or ".join(f'platform_machine == "{_MACHINE[p]}"' for p in platforms)


def pin_line(pkg: Package, image_platforms: tuple[str, ...]) -> str:
    """One requirements.txt line: `name==version`, a platform marker when locked for some platforms only,
    and the hash of every file of every locked platform."""
    marker = f" ; {_marker(pkg.platforms)}" if pkg.platforms and pkg.platforms != image_platforms else ""
    return f"{pkg.name}=={pkg.version}{marker}{pkg.hash_options}"


def is_heavy(pkg: Package) -> bool:
    return any(f.size is not None and f.size >= HEAVY_BYTES for f in pkg.files)


def _pinned(spec: ImageSpec, env: Environment, entry: LockedImage | None, parent: LockedImage | None,
            external: bool) -> tuple[ImageSpec, bool]:
    """spec with the lock's pins and parent digest; and whether an external parent stays unpinned."""
    if entry is None:
        return spec, False  # not locked yet: compile reports it stale
    from_ref, unpinned = spec.from_ref, False
    if external and "@" not in from_ref:
        if entry.parent is not None and entry.parent.digest:
            from_ref = f"{from_ref}@{entry.parent.digest}"
        else:
            unpinned = True
    lines, heavy = _pin_lines(env, entry, parent) if spec.requirements or spec.local_packages else ([], [])
    return replace(spec, from_ref=from_ref, locked=True, requirements=tuple(lines), heavy=tuple(heavy)), unpinned


def _pin_lines(env: Environment, entry: LockedImage, parent: LockedImage | None) -> tuple[list[str], list[str]]:
    """The image's pin lines, and its heavy ones: what its parent image has installed already left out."""
    lines: list[str] = []
    heavy: list[str] = []
    inherited = parent.installed if parent is not None else frozenset()
    chosen = set(env.heavy_packages.value) if env.heavy_packages is not None else None
    for pkg in entry.ordered:
        if (pkg.name, pkg.version, pkg.platforms or entry.platforms) in inherited:
            continue  # installed in the parent image already
        big = pkg.name in chosen if chosen is not None else is_heavy(pkg)
        (heavy if big else lines).append(pin_line(pkg, entry.platforms))
    return lines, heavy


def _repository(project: Project, image: str) -> str:
    return f"{project.name}-{image}"


def _push_tag(project: Project, tag: str) -> str | None:
    return f"{project.registry}/{tag}" if project.registry else None


def plan(project: Project, order: list[str], step_graphs: Mapping[str, Any], inputs: Inputs, sink: Collector, *,
         salt: str, lock: Lock | None = None, locked_salt: str = "", mounts_salt: str = "",
         locked_mounts_salt: str = "") -> Plan:
    """The image plan: which environment is which image, built FROM what, with which spec.

    With a lock, each spec carries its pins and parent digest (and is hashed with locked_salt, which covers
    the templates' lock-only parts); which environments share an image is decided before, as without one.
    An image with RUN --mount is hashed with mounts_salt (locked_mounts_salt), which covers the templates'
    mount-only parts; every other image's hash is as before they existed.
    """
    envs = effective(project, order, inputs, sink)
    if not sink.errors:  # "unused" is noise while the project does not compile
        _usage(project, envs, sink)
    planner = _Planner(project, envs, inputs, sink, salt=salt, lock=lock, locked_salt=locked_salt,
                       mounts_salts=(mounts_salt or salt, locked_mounts_salt or locked_salt))
    derived = sorted(n for n, e in envs.items() if e.kind != "environment")
    for name in [n for n in order if n in envs] + derived:
        planner.place(envs[name])
    _attach(planner.images, planner.attached)
    return Plan(project=project, environments=envs, env_image=planner.env_image, images=planner.images,
                steps=dict(step_graphs), lock=lock)


@dataclass(frozen=True)
class _Choice:
    """How an environment's image is made: its spec, the project image it is built FROM (if any), why."""

    spec: ImageSpec
    parent: str | None
    layering: str
    parent_user: str | None  # the user the image it starts FROM runs as, when known


class _Planner:
    """The images made so far, as plan() places each environment in order (parents first)."""

    def __init__(self, project: Project, envs: dict[str, Environment], inputs: Inputs, sink: Collector, *,
                 salt: str, lock: Lock | None, locked_salt: str, mounts_salts: tuple[str, str]) -> None:
        self.project, self.envs, self.inputs, self.sink = project, envs, inputs, sink
        self.salt, self.lock, self.locked_salt = salt, lock, locked_salt
        self.mounts_salts = mounts_salts
        self.images: dict[str, Image] = {}
        self.env_image: dict[str, str] = {}  # environment name -> image name
        self.by_hash: dict[str, str] = {}
        self.custom: dict[tuple[str, str], str] = {}
        self.attached: dict[str, list[Environment]] = {}  # applied once at the end: linear in the number served

    def place(self, env: Environment) -> None:
        """env's image: its parent's, an equal one already made, or a new one."""
        if env.base is None:
            return
        choice = self.choose(env, env.base)
        if choice is not None:
            self.add(env, choice)

    def serve(self, image: str, env: Environment) -> None:
        self.env_image[env.name] = image
        self.attached.setdefault(image, []).append(env)

    def choose(self, env: Environment, base: Sourced[Base]) -> _Choice | None:
        """Layered on the parent environment's image when it can be, else whole; None: the parent's image."""
        parent = self.envs.get(env.parent) if env.parent else None
        parent_image = self.env_image.get(env.parent) if env.parent else None
        why_not = _layering(env, parent) if parent is not None else None
        if parent is None or parent_image is None or why_not is not None:
            return self.whole(env, base, why_not)
        parent_user = self.images[parent_image].runs_as
        spec = _layered_spec(env, parent, self.images[parent_image].tag, self.inputs, parent_user)
        if spec is None:  # adds nothing: it is its parent's image
            self.serve(parent_image, env)
            return None
        return _Choice(spec, parent_image, f"built FROM image '{parent_image}', adding only its own layers",
                       parent_user)

    def whole(self, env: Environment, base: Sourced[Base], why_not: str | None) -> _Choice:
        _warn_not_debian(env, base, self.sink)
        image_parent = None
        if base.value.dockerfile is not None:
            image_parent = _custom_parent(self.project, env, base.value.dockerfile, base.value.context, self.inputs,
                                          self.images, self.custom, taken=set(self.envs))
            from_ref = self.images[image_parent].tag
        else:
            from_ref = base.value.image or ""
        parent_user = base_user(env, self.inputs)
        return _Choice(_whole_spec(env, from_ref, self.inputs, parent_user), image_parent,
                       f"rendered whole ({why_not})" if why_not else "rendered whole", parent_user)

    def add(self, env: Environment, choice: _Choice) -> None:
        """A new image for env, unless an equal one (by spec hash) is made already: then that one serves it."""
        spec, name, image_parent = _used_mounts(choice.spec), env.name, choice.parent
        salt, locked_salt = self.mounts_salts if spec.mounts else (self.salt, self.locked_salt)
        spec_hash = _hash(spec, salt)
        if spec_hash in self.by_hash:
            self.serve(self.by_hash[spec_hash], env)
            return
        self.by_hash[spec_hash] = name
        declared, base_ref, unpinned = spec.requirements, spec.from_ref, False
        if self.lock is not None:
            parent_entry = self.lock.images.get(image_parent) if image_parent and spec.layered else None
            spec, unpinned = _pinned(spec, env, self.lock.images.get(name), parent_entry,
                                     external=image_parent is None)
            spec_hash = _hash(spec, locked_salt)
        repo = _repository(self.project, name)
        dockerfile, inputs_list = _image_inputs(self.project.output.rstrip("/"), name, spec)
        self.images[name] = Image(
            name=name, generated=True, repository=repo, tag=f"{repo}:{spec_hash[:12]}",
            push_tag=_push_tag(self.project, f"{repo}:{spec_hash[:12]}"), spec_hash=spec_hash,
            parent=image_parent, from_ref=spec.from_ref, environments=(name,), files=(env.file,),
            dockerfile=dockerfile, context=".", inputs=inputs_list,
            checks=tuple(c.value for c in env.checks), spec=spec,
            user=env.user.value if env.user is not None else None, layering=choice.layering,
            runs_as=_ends_as(env, choice.parent_user, spec.as_root), requirements=declared,
            base_ref=base_ref if image_parent is None else "", unpinned=unpinned,
        )
        self.env_image[name] = name


def _used_mounts(spec: ImageSpec) -> ImageSpec:
    """spec with cache_mounts only where a RUN gets one (an apt or install step): `mounts` says what the
    Dockerfile has."""
    if spec.cache_mounts and not (spec.apt or spec.requirements or spec.local_packages):
        return replace(spec, cache_mounts=None)
    return spec if spec.cache_mounts else replace(spec, cache_mounts=None)


def _image_inputs(out: str, name: str, spec: ImageSpec) -> tuple[str, tuple[str, ...]]:
    """An image's Dockerfile, and every file its build reads (the Dockerfile first)."""
    dockerfile = f"{out}/images/{name}/Dockerfile"
    inputs_list = [dockerfile]
    if spec.heavy:
        inputs_list.append(f"{out}/images/{name}/requirements-heavy.txt")
    if spec.requirements:
        inputs_list.append(f"{out}/images/{name}/requirements.txt")
    inputs_list += [src for src, _ in spec.certificates]
    inputs_list += [src for src, _ in spec.local_packages]
    inputs_list += [src for src, _ in spec.copy]
    return dockerfile, tuple(inputs_list)


def _warn_not_debian(env: Environment, base: Sourced[Base], sink: Collector) -> None:
    image = base.value.image
    if image and not _looks_debian(image) and (env.apt or env.requirements or
                                               (env.user and not env.user.value.isdigit())):
        sink.warn(base.origin.location,
                  f"parent image '{image}' does not look Debian-based, but environment '{env.name}' "
                  "needs apt, Python packages or a new user",
                  "dockwright's install steps need a Debian or Ubuntu parent image")


def _attach(images: dict[str, Image], attached: Mapping[str, list[Environment]]) -> None:
    """Each image also serves the environments attached to it: record them and add their checks."""
    for name, envs in attached.items():
        img = images[name]
        checks = dict.fromkeys(img.checks)
        for env in envs:
            checks.update(dict.fromkeys(c.value for c in env.checks if c.value not in checks))
        images[name] = Image(**{**img.__dict__,
                                "environments": tuple(sorted({*img.environments, *(e.name for e in envs)})),
                                "files": tuple(sorted({*img.files, *(e.file for e in envs)})),
                                "checks": tuple(checks)})


def _custom_parent(project: Project, env: Environment, dockerfile: str, context: str, inputs: Inputs,
                   images: dict[str, Image], custom: dict[tuple[str, str], str], *, taken: set[str]) -> str:
    key = (dockerfile, posixpath.normpath(context))
    if key in custom:
        return custom[key]
    # `<env>.parent` unless a step image (pipeline `<env>`, step `parent`) already has that name.
    name, n = f"{env.name}.parent", 1
    while name in taken or name in images:
        n += 1
        name = f"{env.name}.parent-{n}"
    spec_hash = _hash({"dockerfile": dockerfile, "context": key[1], "digest": inputs.digests.get(dockerfile, "")})
    repo = _repository(project, name)
    images[name] = Image(
        name=name, generated=False, repository=repo, tag=f"{repo}:{spec_hash[:12]}",
        push_tag=_push_tag(project, f"{repo}:{spec_hash[:12]}"), spec_hash=spec_hash,
        parent=None, from_ref="", environments=(), files=(env.file,), dockerfile=dockerfile, context=key[1],
        inputs=(dockerfile, key[1]), checks=(),
    )
    custom[key] = name
    return name


# -- manifest ------------------------------------------------------------------------------------


__all__ = ["Image", "ImageSpec", "Plan", "plan", "effective", "requirement_name", "UV_VERSION", "VENV",
           "REQUIREMENTS_IN_IMAGE", "HEAVY_REQUIREMENTS_IN_IMAGE", "HEAVY_BYTES", "pin_line", "is_heavy", "CERTS_IN_IMAGE", "CA_BUNDLE", "SYSTEM_CA_BUNDLE", "LOCAL_IN_IMAGE"]
