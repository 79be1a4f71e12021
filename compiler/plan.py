"""Effective environments, layering, dedupe and the image plan: the intermediate representation.

Pure: takes the model, the graphs' orders and what inputs read; returns records (manifest.py writes the manifest from them).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from .errors import Collector
from .inputs import Inputs
from .schema import indentation_hint
from .lockfile import Lock, LockedImage, Package
from .model import EMPTY, Environment, Fragment, Project, Sourced, apply, inherit, requirement_name

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

    @property
    def has_requirements(self) -> bool:
        return self.spec is not None and bool(self.spec.requirements)


@dataclass
class Plan:
    project: Project
    environments: dict[str, Environment]
    env_image: dict[str, str]  # environment name -> image name
    images: dict[str, Image]
    steps: dict[str, Any]  # pipeline -> step DAG
    warnings: list[Any] = field(default_factory=list)
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
        frag = project.environments[name]
        parent_name = frag.extends.value if frag.extends is not None else None
        parent = out.get(parent_name) if parent_name else None
        if parent_name and parent is None:
            continue  # unknown parent: already reported
        env = _env_of_fragment(frag, name=name, kind="environment", parent=parent, parent_name=parent_name,
                               project=project, inputs=inputs, via=f"extends {parent_name}")
        if env.base is None and parent_name is None and ("environments", name) not in project.broken:
            hint = indentation_hint(name) or (
                "set python: \"3.11\", parent_image: <image:tag>, dockerfile: <path>, or extends: <environment>")
            sink.error(frag.location, f"environment '{name}' has no base image", hint)
        out[name] = env
    for pipe in project.pipelines.values():
        for step in pipe.steps:
            if step.settings is None or step.environment is None or step.environment.value not in out:
                continue
            base = step.environment.value
            out[step.settings.name] = _env_of_fragment(
                step.settings, name=step.settings.name, kind="step", parent=out[base], parent_name=base,
                project=project, inputs=inputs, via=f"environment {base}")
    for target in (project.runner, project.server):
        if target is None or target.settings is None or target.environment.value not in out:
            continue
        if target.settings.name in out:
            pipe_name, step_name = target.settings.name.split(".", 1)
            sink.error(target.settings.location,
                       f"the {target.role}'s settings image '{target.settings.name}' has the same name as "
                       f"step '{step_name}' of pipeline '{pipe_name}'", "rename that step or pipeline")
            continue
        base = target.environment.value
        out[target.settings.name] = _env_of_fragment(
            target.settings, name=target.settings.name, kind=target.role, parent=out[base], parent_name=base,
            project=project, inputs=inputs, via=f"environment {base}")
    return out


def _usage(project: Project, envs: Mapping[str, Environment], sink: Collector) -> None:
    used: set[str] = set()
    for pipe in project.pipelines.values():
        if pipe.environment is not None:
            used.add(pipe.environment.value)
        for step in pipe.steps:
            if step.environment is not None:
                used.add(step.environment.value)
    for target in (project.runner, project.server):
        if target is not None:
            used.add(target.environment.value)
    frontier = list(used)
    while frontier:
        env = envs.get(frontier.pop())
        if env is not None and env.parent and env.parent not in used:
            used.add(env.parent)
            frontier.append(env.parent)
    for name, frag in project.environments.items():
        if name not in used:
            sink.warn(frag.location, f"environment '{name}' is not used by the runner, the server or any pipeline",
                      "use it, or remove it")
    used_integrations = {i.value for env in envs.values() for i in env.integrations}
    used_integrations |= {i.value for f in project.environments.values() for i in f.integrations}
    for name, frag in project.integrations.items():
        if name not in used_integrations:
            sink.warn(frag.location, f"integration '{name}' is not used by any environment", "use it, or remove it")


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


def _layering(env: Environment, parent: Environment) -> str | None:
    """None when env can be built FROM parent's image (docs/language.md, "Layering": same parent image, installer and
    user, the same certificates, and nothing removed that the parent set); else why not."""
    def val(s: Sourced[Any] | None) -> Any:
        return s.value if s is not None else None

    if val(env.base) != val(parent.base):
        return f"another base than '{parent.name}'"
    if env.installer.value != parent.installer.value:
        return f"installer {env.installer.value}, not {parent.installer.value} as in '{parent.name}'"
    if val(env.user) != val(parent.user):
        return f"user {val(env.user)}, not {val(parent.user)} as in '{parent.name}'"
    if sorted(env.certificates) != sorted(parent.certificates):
        # The CA bundle is made before the parent's installs; a new one must come before them, too.
        return f"other certificates than '{parent.name}'"
    if env.removed:
        removed = ", ".join(sorted(r.replace(":", " ") for r in env.removed))
        return f"removes {removed} that '{parent.name}' sets, which an image cannot unset"
    return None


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
    stages: list[tuple[str | None, str, list[str | None]]] = []  # (name, FROM, [USER values])
    for word, rest in _instructions(text):
        if word == "FROM":
            args = [a for a in rest.split() if not a.startswith("--")]
            name = args[2].lower() if len(args) >= 3 and args[1].lower() == "as" else None
            stages.append((name, args[0] if args else "", []))
        elif word == "USER" and stages:
            value = rest.split()[0] if rest.split() else ""
            stages[-1][2].append(value if _USER_VALUE.fullmatch(value) else None)
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


def _whole_spec(env: Environment, from_ref: str, inputs: Inputs, parent_user: str | None) -> ImageSpec:
    reqs = _requirements(env)
    owner = _run_as(env)
    create_user = owner is not None and not owner.isdigit()
    workdir_owner = owner if env.workdir is not None else None
    runs = tuple(r.value for r in env.run)
    needs_root = bool(env.apt or env.certificates or reqs or _has_python(env) or runs or create_user or workdir_owner)
    as_root = needs_root and not is_root(parent_user)
    # The environment's user; else, after a switch to root, the parent's own user (when known).
    user = env.user.value if env.user is not None else (parent_user if as_root else None)
    index_url, extra_index_urls = _index(env, install=_has_python(env))
    return ImageSpec(
        from_ref=from_ref, layered=False, build_args=_sorted_pairs(_values(env.build_args)), apt=_apt(env),
        certificates=_certificates(env), python_setup=_has_python(env), installer=env.installer.value,
        installer_args=env.installer_args.value, index_url=index_url, extra_index_urls=extra_index_urls,
        requirements=reqs, env=_sorted_pairs(_values(env.env)), run=runs,
        as_root=as_root, create_user=create_user, workdir_owner=workdir_owner, user=user,
        workdir=env.workdir.value if env.workdir is not None else None,
        labels=_sorted_pairs(_values(env.labels)), copy=tuple(_copies(env, inputs)),
        owner=owner,
        entrypoint=env.entrypoint.value if env.entrypoint is not None else None,
        cmd=env.cmd.value if env.cmd is not None else None,
        local_packages=tuple(_local_packages(env)),
    )


def _layered_spec(env: Environment, parent: Environment, from_ref: str, inputs: Inputs,
                  parent_user: str | None) -> ImageSpec | None:
    """Only what env adds to parent; None when it adds nothing that a Dockerfile would say."""
    reqs = _requirements(env)
    install = reqs != _requirements(parent)
    apt = tuple(v for k, v in sorted(_values(env.apt).items()) if parent.apt.get(k) is None
                or parent.apt[k].value != v)
    penv, plabels = _values(parent.env), _values(parent.labels)
    env_delta = tuple((k, v) for k, v in _sorted_pairs(_values(env.env)) if penv.get(k) != v)
    labels_delta = tuple((k, v) for k, v in _sorted_pairs(_values(env.labels)) if plabels.get(k) != v)
    parent_runs = {r.value for r in parent.run}
    runs = tuple(r.value for r in env.run if r.value not in parent_runs)
    parent_copies = set(_copies(parent, inputs))
    copies = tuple(c for c in _copies(env, inputs) if c not in parent_copies)
    parent_packages = set(_local_packages(parent))
    packages = tuple(p for p in _local_packages(env) if p not in parent_packages)
    workdir = env.workdir.value if env.workdir is not None else None
    pworkdir = parent.workdir.value if parent.workdir is not None else None
    entry = env.entrypoint.value if env.entrypoint is not None else None
    pentry = parent.entrypoint.value if parent.entrypoint is not None else None
    cmd = env.cmd.value if env.cmd is not None else None
    pcmd = parent.cmd.value if parent.cmd is not None else None
    # Setting ENTRYPOINT resets an inherited CMD, so a new entrypoint repeats the cmd.
    emit_cmd = cmd if (cmd != pcmd or (entry != pentry and cmd is not None)) else None
    user = _run_as(env)
    new_workdir = workdir if workdir != pworkdir else None
    needs_root = bool(apt or install or runs or packages or (new_workdir and user))
    as_root = needs_root and not is_root(parent_user)
    index_url, extra_index_urls = _index(env, install=install or bool(packages))
    spec = ImageSpec(
        from_ref=from_ref, layered=True,
        build_args=_sorted_pairs(_values(env.build_args)) if (apt or install or runs or packages) else (),
        apt=apt, certificates=(),  # the same as the parent's (_layering), which made the bundle
        python_setup=(install or bool(packages)) and not _has_python(parent), installer=env.installer.value,
        installer_args=env.installer_args.value, index_url=index_url, extra_index_urls=extra_index_urls,
        requirements=reqs if install else (), env=env_delta,
        run=runs, as_root=as_root, create_user=False,
        workdir_owner=user if new_workdir else None, user=parent_user if as_root else None,
        workdir=new_workdir, labels=labels_delta, copy=copies, owner=user if copies else None,
        entrypoint=entry if entry != pentry else None, cmd=emit_cmd, local_packages=packages,
    )
    empty = not (spec.apt or spec.requirements or spec.env or spec.run or spec.workdir or spec.labels
                 or spec.copy or spec.local_packages or spec.entrypoint is not None or spec.cmd is not None)
    return None if empty else spec


_LOCK_ONLY = ("locked", "heavy")  # ImageSpec fields that only a lock sets: left out of the hash while unset


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
    hashes = "".join(f" --hash={h}" for h in sorted({f.hash for f in pkg.files}))
    return f"{pkg.name}=={pkg.version}{marker}{hashes}"


def is_heavy(pkg: Package) -> bool:
    return any(f.size is not None and f.size >= HEAVY_BYTES for f in pkg.files)


def _pinned(spec: ImageSpec, env: Environment, entry: LockedImage | None, parent: LockedImage | None,
            external: bool) -> tuple[ImageSpec, bool]:
    """spec with the lock's pins and parent digest; and whether an external parent stays unpinned."""
    from_ref = spec.from_ref
    unpinned = False
    if external and entry is not None and "@" not in from_ref:
        if entry.parent is not None and entry.parent.digest:
            from_ref = f"{from_ref}@{entry.parent.digest}"
        else:
            unpinned = True
    if entry is None:
        return spec, False  # not locked yet: compile reports it stale
    lines: list[str] = []
    heavy: list[str] = []
    inherited: set[tuple[str, str, tuple[str, ...]]] = set()
    if parent is not None:
        inherited = {(p.name, p.version, p.platforms or parent.platforms) for p in parent.packages}
    chosen = set(env.heavy_packages.value) if env.heavy_packages is not None else None
    if spec.requirements:
        for pkg in sorted(entry.packages, key=lambda p: (p.name, p.platforms, p.version)):
            if (pkg.name, pkg.version, pkg.platforms or entry.platforms) in inherited:
                continue  # installed in the parent image already
            big = pkg.name in chosen if chosen is not None else is_heavy(pkg)
            (heavy if big else lines).append(pin_line(pkg, entry.platforms))
    return replace(spec, from_ref=from_ref, locked=True, requirements=tuple(lines), heavy=tuple(heavy)), unpinned


def _repository(project: Project, image: str) -> str:
    return f"{project.name}-{image}"


def _push_tag(project: Project, tag: str) -> str | None:
    return f"{project.registry}/{tag}" if project.registry else None


def plan(project: Project, order: list[str], step_graphs: Mapping[str, Any], inputs: Inputs, sink: Collector, *,
         salt: str, lock: Lock | None = None, locked_salt: str = "") -> Plan:
    """The image plan: which environment is which image, built FROM what, with which spec.

    With a lock, each spec carries its pins and parent digest (and is hashed with locked_salt, which covers
    the templates' lock-only parts); which environments share an image is decided before, as without one.
    """
    envs = effective(project, order, inputs, sink)
    if not sink.errors:  # "unused" is noise while the project does not compile
        _usage(project, envs, sink)
    images: dict[str, Image] = {}
    env_image: dict[str, str] = {}
    by_hash: dict[str, str] = {}
    custom: dict[tuple[str, str], str] = {}
    attached: dict[str, list[Environment]] = {}  # applied once at the end: linear in the number served
    out = project.output.rstrip("/")

    derived = sorted(n for n, e in envs.items() if e.kind != "environment")
    for name in [n for n in order if n in envs] + derived:
        env = envs[name]
        if env.base is None:
            continue
        parent = envs.get(env.parent) if env.parent else None
        parent_image = env_image.get(env.parent) if env.parent else None
        spec: ImageSpec | None
        why_not = _layering(env, parent) if parent is not None else None
        if parent is not None and parent_image is not None and why_not is None:
            parent_user = images[parent_image].runs_as
            spec = _layered_spec(env, parent, images[parent_image].tag, inputs, parent_user)
            if spec is None:  # adds nothing: it is its parent's image
                env_image[name] = parent_image
                attached.setdefault(parent_image, []).append(env)
                continue
            image_parent: str | None = parent_image
            layering = f"built FROM image '{parent_image}', adding only its own layers"
        else:
            base = env.base.value
            layering = f"rendered whole ({why_not})" if why_not else "rendered whole"
            if base.image and not _looks_debian(base.image) and (env.apt or env.requirements or
                                                                (env.user and not env.user.value.isdigit())):
                sink.warn(env.base.origin.location,
                          f"parent image '{base.image}' does not look Debian-based, but environment '{name}' "
                          "needs apt, Python packages or a new user",
                          "dockwright's install steps need a Debian or Ubuntu parent image")
            image_parent = None
            if base.dockerfile is not None:
                image_parent = _custom_parent(project, env, base.dockerfile, base.context, inputs, images, custom,
                                              taken=set(envs))
                from_ref = images[image_parent].tag
            else:
                from_ref = base.image or ""
            parent_user = base_user(env, inputs)
            spec = _whole_spec(env, from_ref, inputs, parent_user)
        spec_hash = _hash(spec, salt)
        if spec_hash in by_hash:
            env_image[name] = by_hash[spec_hash]
            attached.setdefault(by_hash[spec_hash], []).append(env)
            continue
        by_hash[spec_hash] = name
        declared, base_ref, unpinned = spec.requirements, spec.from_ref, False
        if lock is not None:
            parent_entry = lock.images.get(image_parent) if image_parent and spec.layered else None
            spec, unpinned = _pinned(spec, env, lock.images.get(name), parent_entry, external=image_parent is None)
            spec_hash = _hash(spec, locked_salt)
        repo = _repository(project, name)
        dockerfile = f"{out}/images/{name}/Dockerfile"
        inputs_list = [dockerfile]
        if spec.heavy:
            inputs_list.append(f"{out}/images/{name}/requirements-heavy.txt")
        if spec.requirements:
            inputs_list.append(f"{out}/images/{name}/requirements.txt")
        inputs_list += [src for src, _ in spec.certificates]
        inputs_list += [src for src, _ in spec.local_packages]
        inputs_list += [src for src, _ in spec.copy]
        images[name] = Image(
            name=name, generated=True, repository=repo, tag=f"{repo}:{spec_hash[:12]}",
            push_tag=_push_tag(project, f"{repo}:{spec_hash[:12]}"), spec_hash=spec_hash,
            parent=image_parent, from_ref=spec.from_ref, environments=(name,), files=(env.file,),
            dockerfile=dockerfile, context=".", inputs=tuple(inputs_list),
            checks=tuple(c.value for c in env.checks), spec=spec,
            user=env.user.value if env.user is not None else None, layering=layering,
            runs_as=_ends_as(env, parent_user, spec.as_root), requirements=declared,
            base_ref=base_ref if image_parent is None else "", unpinned=unpinned,
        )
        env_image[name] = name
    _attach(images, attached)
    return Plan(project=project, environments=envs, env_image=env_image, images=images, steps=dict(step_graphs),
                lock=lock)


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
