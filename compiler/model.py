"""Frozen typed records built from validated data in one place, and the pure merge rules. No I/O.

Raw dicts stop here: `build_model` is the only function that indexes the validated document.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generic, Mapping, TypeVar

from packaging.utils import canonicalize_name

from . import engine_url
from .errors import Collector, Location, suggest
from .fields import FIELDS, Field, Merge, Read
from .load import Located, NodePath, Source

T = TypeVar("T")

DEFAULT_OUTPUT = "generated"
DEFAULT_INSTALLER = "pip"
DEFAULT_BUILDER = "local"


@dataclass(frozen=True)
class Origin:
    """Where a value was written, and the chain it arrived through (`extends base`, `integration x`)."""

    location: Location | None
    via: tuple[str, ...] = ()

    def through(self, step: str) -> Origin:
        return Origin(self.location, (step, *self.via))


DEFAULT_ORIGIN = Origin(None, ("default",))


@dataclass(frozen=True)
class Sourced(Generic[T]):
    value: T
    origin: Origin

    def through(self, step: str) -> Sourced[T]:
        return Sourced(self.value, self.origin.through(step))


@dataclass(frozen=True)
class Base:
    """What an image starts FROM: a named image, or a custom Dockerfile built first."""

    image: str | None = None
    dockerfile: str | None = None
    context: str = "."
    context_at: Location | None = field(default=None, compare=False)  # where `context:` is written, if it is
    python: str | None = None  # its Python version (X.Y): `python:`, or stated beside parent_image/dockerfile


@dataclass(frozen=True)
class Copy:
    source: str
    dest: str | None  # None: same relative path under the workdir


@dataclass(frozen=True)
class Removal:
    """A key of a merged-by-key field (env, build_args, labels) that a child removed with null."""

    field: str
    key: str

    def __str__(self) -> str:
        return f"{self.field} {self.key}"


@dataclass(frozen=True)
class Fragment:
    """What one declaration (environment, integration or settings) says, with origins."""

    kind: str  # environment | integration | settings
    name: str
    location: Location | None
    file: str  # project-relative YAML file it is written in
    extends: Sourced[str] | None = None
    base: Sourced[Base] | None = None
    installer: Sourced[str] | None = None
    installer_args: Sourced[tuple[str, ...]] | None = None
    index_url: Sourced[str] | None = None
    user: Sourced[str] | None = None
    workdir: Sourced[str] | None = None
    entrypoint: Sourced[tuple[str, ...]] | None = None
    cmd: Sourced[tuple[str, ...]] | None = None
    extra_index_urls: tuple[Sourced[str], ...] = ()
    certificates: tuple[Sourced[str], ...] = ()  # project-relative, normalised
    apt: tuple[Sourced[str], ...] = ()
    requirements: tuple[Sourced[str], ...] = ()
    requirements_files: tuple[Sourced[str], ...] = ()
    integrations: tuple[Sourced[str], ...] = ()
    env: tuple[tuple[str, Sourced[str | None]], ...] = ()
    build_args: tuple[tuple[str, Sourced[str | None]], ...] = ()
    labels: tuple[tuple[str, Sourced[str | None]], ...] = ()
    copy: tuple[Sourced[Copy], ...] = ()
    run: tuple[Sourced[str], ...] = ()
    checks: tuple[Sourced[str], ...] = ()
    local_packages: tuple[Sourced[str], ...] = ()  # project-relative directories, normalised
    heavy_packages: Sourced[tuple[str, ...]] | None = None  # normalised names; None: the size rule decides
    cache_mounts: Sourced[bool] | None = None
    secrets: tuple[tuple[str, Sourced[str | None]], ...] = ()  # id -> "env NAME" | "file path" (never a value)


@dataclass(frozen=True)
class Step:
    name: str
    pipeline: str
    location: Location | None
    after: tuple[Sourced[str], ...]
    environment: Sourced[str] | None  # own, else the pipeline's
    settings: Fragment | None


@dataclass(frozen=True)
class Pipeline:
    name: str
    location: Location | None
    file: str
    environment: Sourced[str] | None
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Target:
    """The runner or the server."""

    role: str
    location: Location | None
    environment: Sourced[str]
    settings: Fragment | None


@dataclass(frozen=True)
class BuilderConfig:
    """A builder as the project configures it (`builders:`); the backends that build are compiler/builders."""

    name: str
    location: Location | None
    type: str
    url: str | None
    tls: tuple[tuple[str, str | bool], ...]
    proxy: tuple[tuple[str, str], ...] = ()  # http / https / no_proxy, ${NAME} unexpanded (the builder expands it)
    network: str | None = None  # `host`: build containers on the host's network
    members: tuple[Sourced[str], ...] = ()  # a pool's builders


@dataclass(frozen=True)
class ZenML:
    """The `zenml:` section: the ZenML version the project runs, and whether step images must contain it."""

    version: Sourced[str]
    in_images: bool
    location: Location | None


@dataclass(frozen=True)
class Project:
    name: str
    file: str  # the project file, relative to the root
    output: str
    registry: str | None
    environments: Mapping[str, Fragment]
    integrations: Mapping[str, Fragment]
    pipelines: Mapping[str, Pipeline]
    runner: Target | None
    server: Target | None
    builders: Mapping[str, BuilderConfig]
    default_builder: Sourced[str] | None
    broken: frozenset[tuple[str, str]] = frozenset()  # entries with schema errors, kept as empty stand-ins
    platforms: tuple[str, ...] = ("linux/amd64",)  # what `dockwright lock` locks for, sorted
    zenml: ZenML | None = None  # the `zenml:` section, when there is one


@dataclass(frozen=True)
class Environment:
    """An effective environment: every merge applied; each value knows where it came from."""

    name: str
    kind: str  # environment | step | runner | server
    location: Location | None
    file: str
    parent: str | None  # the environment it derives from (extends, or the step's environment)
    base: Sourced[Base] | None
    installer: Sourced[str]
    installer_args: Sourced[tuple[str, ...]]
    user: Sourced[str] | None
    workdir: Sourced[str] | None
    entrypoint: Sourced[tuple[str, ...]] | None
    cmd: Sourced[tuple[str, ...]] | None
    apt: Mapping[str, Sourced[str]]  # package name -> full spec (name[=version])
    requirements: Mapping[str, Sourced[str]]  # normalised name -> requirement string
    requirements_files: tuple[Sourced[str], ...]
    integrations: tuple[Sourced[str], ...]
    env: Mapping[str, Sourced[str]]
    build_args: Mapping[str, Sourced[str]]
    labels: Mapping[str, Sourced[str]]
    removed: frozenset[Removal] = frozenset()  # keys a child removed with null
    copy: tuple[Sourced[Copy], ...] = ()
    run: tuple[Sourced[str], ...] = ()
    checks: tuple[Sourced[str], ...] = ()
    index_url: Sourced[str] | None = None
    extra_index_urls: tuple[Sourced[str], ...] = ()
    certificates: Mapping[str, Sourced[str]] = field(default_factory=dict)  # normalised path -> where listed
    local_packages: tuple[Sourced[str], ...] = ()  # the project's own packages, installed after the requirements
    heavy_packages: Sourced[tuple[str, ...]] | None = None  # installed in their own layer (None: the size rule)
    cache_mounts: Sourced[bool] | None = None  # RUN --mount=type=cache on the apt and install steps
    secrets: Mapping[str, Sourced[str]] = field(default_factory=dict)  # id -> "env NAME" | "file path"


EMPTY = Environment(
    name="", kind="environment", location=None, file="", parent=None, base=None,
    installer=Sourced(DEFAULT_INSTALLER, DEFAULT_ORIGIN), installer_args=Sourced((), DEFAULT_ORIGIN),
    user=None, workdir=None, entrypoint=None, cmd=None, apt={}, requirements={}, requirements_files=(),
    integrations=(), env={}, build_args={}, labels={},
)


# ---------------------------------------------------------------------------------------------
# Merge rules (docs/language.md, "Merging"), one per row of fields.FIELDS; pure and pinned by
# tests/test_merge.py.


def _minor(version: str) -> str:
    """3.11 of 3.11, 3.11.4 or 3.11-slim (the schema checked it is a Python version)."""
    return ".".join(version.split("-", 1)[0].split(".")[:2])


def _through(f: Field, value: Any, step: str) -> Any:
    if f.merge is Merge.CHILD_WINS:
        return value.through(step) if value is not None else None
    if f.mapping:
        return {k: v.through(step) for k, v in value.items()}
    return tuple(item.through(step) for item in value)


def inherit(parent: Environment, *, step: str) -> Environment:
    """The parent's values, each marked as arriving through `step`."""
    return replace(parent, removed=frozenset(), **{f.name: _through(f, getattr(parent, f.name), step) for f in FIELDS})


def _entries(f: Field, frag: Fragment, file_requirements: Mapping[str, tuple[Sourced[str], ...]]) -> Any:
    """What frag says for f; for requirements, its files' entries first: inline wins within one declaration."""
    own = getattr(frag, f.name)
    if f.files is None:
        return own
    from_files = [req for listed in getattr(frag, f.files) for req in file_requirements.get(listed.value, ())]
    return (*from_files, *own)


def apply(env: Environment, frag: Fragment, *, file_requirements: Mapping[str, tuple[Sourced[str], ...]],
          step: str | None = None) -> Environment:
    """env with frag applied on top, each field by its merge rule (fields.Merge)."""

    def mark(item: Sourced[Any]) -> Sourced[Any]:
        return item.through(step) if step else item

    removed = set(env.removed)
    values = {f.name: _merged(f, getattr(env, f.name), _entries(f, frag, file_requirements), mark, removed)
              for f in FIELDS}
    return replace(env, removed=frozenset(removed), **values)


def _merged(f: Field, current: Any, new: Any, mark: Callable[[Sourced[Any]], Sourced[Any]],
            removed: set[Removal]) -> Any:
    if f.merge is Merge.CHILD_WINS:
        return mark(new) if new is not None else current
    if f.merge is Merge.APPEND:
        return _append(current, [mark(item) for item in new])
    out = dict(current)
    if f.merge is Merge.BY_KEY:
        for key, value in new:
            if value.value is None:
                if key in out:
                    removed.add(Removal(f.name, key))
                out.pop(key, None)
            else:
                out[key] = mark(value)
        return out
    assert f.identity is not None  # BY_NAME and UNION rows name their entries
    for item in new:
        out[f.identity(item.value)] = mark(item)
    return out


def _append(current: tuple[Sourced[T], ...], new: list[Sourced[T]]) -> tuple[Sourced[T], ...]:
    """Parent's entries first, then the child's new ones; an exact repeat is kept once."""
    seen = {item.value for item in current}
    out = list(current)
    for item in new:
        if item.value not in seen:
            seen.add(item.value)
            out.append(item)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Building the model from the validated document.


def _entry_text(value: object) -> str:
    """A list entry as a message shows it: a copy as `from -> to`."""
    if isinstance(value, Copy):
        return value.source if value.dest is None else f"{value.source} -> {value.dest}"
    return str(value)


def secret_source(value: Any) -> str | None:
    """A secret's declaration as the model keeps it: 'env NAME' or 'file path' (None: not one the schema passes)."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    (kind, where), = value.items()
    return f"{kind} {where}" if kind in ("env", "file") and isinstance(where, str) else None


def _copy(item: str | dict[str, Any]) -> Copy:
    return Copy(item, None) if isinstance(item, str) else Copy(item["from"], item.get("to"))


class _ModelReader:
    """Reads the validated document into the model's typed records, reporting what only the model can see."""

    def __init__(self, source: Source, sink: Collector, broken: frozenset[Any] = frozenset()) -> None:
        self.broken = broken
        self.source = source
        self.doc: Located = source.doc
        self.sink = sink

    def origin(self, path: NodePath) -> Origin:
        return Origin(self.doc.at(path))

    def key_origin(self, path: NodePath) -> Origin:
        return Origin(self.doc.key_at(path))

    def file_of(self, section: str, name: str) -> str:
        path = self.source.origin.get((section, name)) or self.source.origin.get((section,)) or self.source.main
        return self.source.rel(path)

    def text(self, value: Any, path: NodePath) -> str:
        """A scalar as the user wrote it: `1` stays "1", `3.10` stays "3.10", `yes` stays "yes"."""
        if isinstance(value, str):
            return value
        return self.doc.raw.get(path, str(value))

    def fragment(self, kind: str, name: str, data: dict[str, Any] | None, path: NodePath, file: str) -> Fragment:
        """What one declaration says: each field of fields.FIELDS read by its `read` rule."""
        data = data or {}
        values = {f.name: read(self, f, data, path, kind, name) for f, read in _READERS}
        return Fragment(kind=kind, name=name, location=self.doc.key_at(path), file=file,
                        extends=self.scalar(data, path, "extends"), **values)

    def scalar(self, data: dict[str, Any], path: NodePath, key: str) -> Sourced[Any] | None:
        if data.get(key) is None:
            return None
        return Sourced(self.text(data[key], path + (key,)) if isinstance(data[key], (str, int, float))
                       else data[key], self.origin(path + (key,)))

    def items(self, data: dict[str, Any], path: NodePath, key: str) -> tuple[Sourced[Any], ...]:
        return tuple(Sourced(item, self.origin(path + (key, i))) for i, item in enumerate(data.get(key) or ()))

    def read_base(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        return self.base(data, path, kind, name)

    def read_text(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        return self.scalar(data, path, f.keys[0])

    def read_words(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        key = f.keys[0]
        return None if data.get(key) is None else Sourced(tuple(data[key]), self.origin(path + (key,)))

    def read_names(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        key = f.keys[0]
        if data.get(key) is None:
            return None
        return Sourced(tuple(sorted({str(canonicalize_name(h)) for h in data[key]})), self.origin(path + (key,)))

    def read_map(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        key = f.keys[0]
        return tuple(
            (k, Sourced(None if v is None else self.text(v, path + (key, k)), self.key_origin(path + (key, k))))
            for k, v in (data.get(key) or {}).items()
        )

    def read_list(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        entries = tuple(Sourced(f.normalise(item.value), item.origin) for item in self.items(data, path, f.keys[0]))
        if f.repeat is None:
            return self.kept_once(entries, f.keys[0], f"{kind} '{name}'")
        return self.unique(entries, f.identity or str, f.repeat, kind, name)

    def read_flag(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        key = f.keys[0]
        value = data.get(key)
        return Sourced(value, self.origin(path + (key,))) if isinstance(value, bool) else None

    def read_secrets(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        key = f.keys[0]
        found = data.get(key)
        return tuple((k, Sourced(secret_source(v), self.key_origin(path + (key, k))))
                     for k, v in (found.items() if isinstance(found, dict) else ())
                     if v is None or secret_source(v) is not None)

    def read_copy(self, f: Field, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Any:
        entries = tuple(Sourced(_copy(item.value), item.origin) for item in self.items(data, path, f.keys[0]))
        return self.kept_once(entries, f.keys[0], f"{kind} '{name}'")

    readers: dict[Read, Callable[..., Any]] = {
        Read.BASE: read_base, Read.TEXT: read_text, Read.WORDS: read_words, Read.NAMES: read_names,
        Read.MAP: read_map, Read.LIST: read_list, Read.COPY: read_copy, Read.FLAG: read_flag,
        Read.SECRETS: read_secrets,
    }

    def kept_once(self, items: tuple[Sourced[T], ...], key: str, where: str) -> tuple[Sourced[T], ...]:
        """An exact repeat in one list (`run`, `copy`, `after`, ...) is kept once, the first, with a warning."""
        seen: dict[T, Sourced[T]] = {}
        for item in items:
            if item.value in seen:
                first = seen[item.value].origin.location
                self.sink.warn(item.origin.location,
                               f"'{_entry_text(item.value)}' is listed twice in '{key}' of {where}; kept once",
                               f"first at line {first.line}; remove one" if first else "remove one")
                continue
            seen[item.value] = item
        return tuple(seen.values())

    def unique(self, items: tuple[Sourced[str], ...], key: Any, what: str, kind: str, name: str) \
            -> tuple[Sourced[str], ...]:
        seen: dict[str, Sourced[str]] = {}
        for item in items:
            k = key(item.value)
            if k in seen:
                first = seen[k].origin.location
                self.sink.error(item.origin.location, f"{what} '{k}' is listed twice in {kind} '{name}'",
                                f"first at line {first.line}; keep one" if first else None)
                continue
            seen[k] = item
        return tuple(seen.values())

    def base(self, data: dict[str, Any], path: NodePath, kind: str, name: str) -> Sourced[Base] | None:
        given = self.base_keys(data, path, kind, name)
        if not given:
            return None
        key = given[0]
        origin = self.origin(path + (key,))
        stated = _minor(self.text(data["python"], path + ("python",))) if data.get("python") is not None else None
        if key == "parent_image":
            self.check_tag(data[key], origin)
            return Sourced(Base(image=data[key], python=stated), origin)
        if key == "python":
            version = self.text(data[key], path + (key,))
            return Sourced(Base(image=f"python:{version}-slim", python=_minor(version)), origin)
        context_at = self.doc.at(path + ("context",)) if data.get("context") is not None else None
        return Sourced(Base(dockerfile=data["dockerfile"], context=data.get("context") or ".", context_at=context_at,
                            python=stated), origin)

    def base_keys(self, data: dict[str, Any], path: NodePath, kind: str, name: str) -> list[str]:
        """The keys that set the base (the first one decides); two that compete, or a stray context, are errors."""
        given = [k for k in ("parent_image", "python", "dockerfile") if data.get(k) is not None]
        if "python" in given and len(given) > 1:
            given.remove("python")  # beside parent_image or dockerfile, python states that parent's Python version
        if len(given) > 1:
            self.sink.error(self.doc.key_at(path + (given[1],)),
                            f"'{given[1]}' and '{given[0]}' both set the base of {kind} '{name}'",
                            "keep one of parent_image and dockerfile (python beside it states its Python version)")
        if data.get("context") is not None and data.get("dockerfile") is None:
            self.sink.error(self.doc.key_at(path + ("context",)), f"'context' in {kind} '{name}' needs 'dockerfile'",
                            "context is the build context of a custom parent Dockerfile")
        return given

    def check_tag(self, image: str, origin: Origin) -> None:
        if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
            self.sink.warn(origin.location, f"parent image '{image}' has no tag",
                           f"pin it, like {image}:<version>, so that builds are reproducible")
        elif image.endswith(":latest"):
            self.sink.warn(origin.location, f"parent image '{image}' follows 'latest'",
                           "pin a version, so that builds are reproducible")

    def build(self) -> Project:
        d = self.doc.data
        main = self.source.rel(self.source.main)
        integrations = {
            n: self.fragment("integration", n, v, ("integrations", n), self.file_of("integrations", n))
            for n, v in sorted((d.get("integrations") or {}).items())
        }
        environments = {
            n: self.fragment("environment", n, v, ("environments", n), self.file_of("environments", n))
            for n, v in sorted((d.get("environments") or {}).items())
        }
        pipelines = {n: self.pipeline(n, v or {}) for n, v in sorted((d.get("pipelines") or {}).items())}
        builders = {n: self.builder(n, v or {}) for n, v in sorted((d.get("builders") or {}).items())}
        if not builders:
            builders = {DEFAULT_BUILDER: BuilderConfig(DEFAULT_BUILDER, None, "docker", None, ())}
        default = d.get("default_builder")
        project = Project(
            name=d["project"], file=main, output=d.get("output") or DEFAULT_OUTPUT,
            registry=d.get("registry"), environments=environments, integrations=integrations,
            pipelines=pipelines, runner=self.target("runner", d.get("runner")),
            server=self.target("server", d.get("server")), builders=builders,
            default_builder=Sourced(default, self.origin(("default_builder",))) if default else None,
            broken=self.broken, platforms=tuple(sorted(set(d.get("platforms") or ("linux/amd64",)))),
            zenml=self.zenml(d.get("zenml")),
        )
        self.check_references(project)
        return project

    def zenml(self, data: dict[str, Any] | None) -> ZenML | None:
        if not data or data.get("version") is None:
            return None
        in_images = data.get("in_images")
        return ZenML(Sourced(self.text(data["version"], ("zenml", "version")), self.origin(("zenml", "version"))),
                     in_images is not False, self.doc.key_at(("zenml",)))

    def pipeline(self, name: str, data: dict[str, Any]) -> Pipeline:
        path: NodePath = ("pipelines", name)
        file = self.file_of("pipelines", name)
        env = Sourced(data["environment"], self.origin(path + ("environment",))) if data.get("environment") else None
        steps = []
        for step_name, step in sorted((data.get("steps") or {}).items()):
            sp = path + ("steps", step_name)
            step = step or {}
            after_raw = step.get("after") or []
            after: tuple[Sourced[str], ...]
            if isinstance(after_raw, str):
                after = (Sourced(after_raw, self.origin(sp + ("after",))),)
            else:
                after = self.kept_once(tuple(Sourced(a, self.origin(sp + ("after", i)))
                                             for i, a in enumerate(after_raw)),
                                       "after", f"step '{step_name}' in pipeline '{name}'")
            own_env = Sourced(step["environment"], self.origin(sp + ("environment",))) \
                if step.get("environment") else None
            settings = None
            if step.get("settings") is not None:
                settings = self.fragment("settings", f"{name}.{step_name}", step["settings"], sp + ("settings",), file)
            steps.append(Step(step_name, name, self.doc.key_at(sp), after, own_env or env, settings))
        return Pipeline(name, self.doc.key_at(path), file, env, tuple(steps))

    def target(self, role: str, data: dict[str, Any] | None) -> Target | None:
        if data is None:
            return None
        path: NodePath = (role,)
        settings = None
        if data.get("settings") is not None:
            settings = self.fragment("settings", f"{role}.settings", data["settings"], path + ("settings",),
                                     self.source.rel(self.source.main))
        return Target(role, self.doc.key_at(path), Sourced(data["environment"], self.origin(path + ("environment",))),
                      settings)

    def builder(self, name: str, data: dict[str, Any]) -> BuilderConfig:
        data = self.pool_keys(name, data)
        if data.get("type") == "buildah":
            for key in ("url", "tls"):
                if data.get(key) is not None:
                    self.sink.error(self.doc.key_at(("builders", name, key)),
                                    f"builder '{name}' has type buildah, which takes no {key}",
                                    "buildah runs on the machine that runs dockwright: remove it, or use type: "
                                    "podman with the url of a `podman system service` socket")
            data = {k: v for k, v in data.items() if k not in ("url", "tls")}
        self.builder_tls(name, data)
        tls = tuple(sorted((data.get("tls") or {}).items()))
        proxy = tuple(sorted((data.get("proxy") or {}).items()))
        members = tuple(Sourced(m, self.origin(("builders", name, "members", i)))
                        for i, m in enumerate(data.get("members") or ()) if isinstance(m, str))
        return BuilderConfig(name, self.doc.key_at(("builders", name)), data.get("type") or "docker", data.get("url"),
                             tls, proxy, data.get("network"), members)

    def pool_keys(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """A pool takes members and nothing an engine connection does (refused, located), and needs the project's
        registry; members on any other type are refused. The data without what was refused."""
        kind = data.get("type") or "docker"
        if kind != "pool":
            if data.get("members") is not None:
                what = f"has type {kind}" if data.get("type") else "has no type, so it is a docker builder"
                self.sink.error(self.doc.key_at(("builders", name, "members")),
                                f"builder '{name}' {what}, which takes no members",
                                "members are for a builder of type pool, which spreads a build over other builders"
                                + ("" if data.get("type") else ": add `type: pool`"))
            return {k: v for k, v in data.items() if k != "members"}
        for key in ("url", "tls", "proxy", "network"):
            if data.get(key) is not None:
                self.sink.error(self.doc.key_at(("builders", name, key)),
                                f"builder '{name}' has type pool, which takes no {key}",
                                f"a pool builds on its members: give the {key} to the member builders")
        if not data.get("members"):
            at = ("builders", name, "members") if "members" in data else ("builders", name)
            self.sink.error(self.doc.key_at(at), f"pool '{name}' has no members",
                            "list the builders it spreads a build over: members: [local, ci]")
        if not self.doc.data.get("registry"):
            self.sink.error(self.doc.at(("builders", name, "type")),
                            f"pool '{name}' needs the project's registry, which carries images between its members",
                            f"add `registry: host:port/path` to {self.source.rel(self.source.main)}")
        return {k: v for k, v in data.items() if k not in ("url", "tls", "proxy", "network")}

    def builder_tls(self, name: str, data: dict[str, Any]) -> None:
        """A tls section that the engine connection would ignore, or could not use, is an error."""
        tls, url = data.get("tls"), data.get("url")
        if not isinstance(tls, dict) or not tls or (url is not None and not isinstance(url, str)):
            return
        at = self.doc.key_at(("builders", name, "tls"))
        if url is None:
            self.sink.error(at, f"builder '{name}' has tls but no url",
                            "tls is for a remote engine: add url: tcp://host:2376, or remove tls; the local engine "
                            "takes DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI does")
            return
        if engine_url.problem(url) is not None:
            return  # reported with the url
        scheme = url.partition("://")[0].lower()
        if scheme not in ("tcp", "https"):
            self.sink.error(at, f"builder '{name}' has tls, but its url is {scheme}://",
                            "tls is for tcp:// engines: ssh:// uses your ssh client's keys, unix:// and npipe:// a "
                            "local socket")
        elif isinstance(tls.get("cert"), str) != isinstance(tls.get("key"), str):
            given, missing = ("cert", "key") if isinstance(tls.get("cert"), str) else ("key", "cert")
            self.sink.error(at, f"builder '{name}' has a tls {given} but no {missing}",
                            "the engine checks the client's certificate with its key: give both, or neither")

    # -- references -----------------------------------------------------------------------------

    def ref(self, ref: Sourced[str] | None, known: Mapping[str, Any], what: str, hint_all: str) -> None:
        if ref is None or ref.value in known:
            return
        hint = suggest(ref.value, known) or (f"defined {what}s: {', '.join(sorted(known))}" if known else hint_all)
        self.sink.error(ref.origin.location, f"unknown {what} '{ref.value}'", hint)

    def check_references(self, p: Project) -> None:
        no_envs = "no environments are defined; add one under 'environments:'"
        for frag in [*p.environments.values(), *self.settings_of(p)]:
            self.ref(frag.extends, p.environments, "environment", no_envs)
            for integ in frag.integrations:
                self.ref(integ, p.integrations, "integration", "no integrations are defined")
        for pipe in p.pipelines.values():
            self.ref(pipe.environment, p.environments, "environment", no_envs)
            for step in pipe.steps:
                self.check_step(p, pipe, step, no_envs)
        for target in (p.runner, p.server):
            if target is not None:
                self.ref(target.environment, p.environments, "environment", no_envs)
        if p.default_builder is not None:
            self.ref(p.default_builder, p.builders, "builder", "no builders are defined")
        for builder in p.builders.values():
            self.check_members(p, builder)
        for name, frag in p.environments.items():
            if frag.extends is not None and frag.extends.value == name:
                self.sink.error(frag.extends.origin.location, f"environment '{name}' extends itself",
                                "name another environment, or remove 'extends'")

    def check_members(self, p: Project, pool: BuilderConfig) -> None:
        """Each member of a pool names another builder, once, which is not a pool."""
        seen: dict[str, Sourced[str]] = {}
        for member in pool.members:
            at = member.origin.location
            if member.value in seen:
                first = seen[member.value].origin.location
                self.sink.error(at, f"builder '{member.value}' is listed twice in the members of pool '{pool.name}'",
                                f"first at line {first.line}; remove one" if first else "remove one")
                continue
            seen[member.value] = member
            if member.value == pool.name:
                self.sink.error(at, f"pool '{pool.name}' lists itself as a member",
                                "members are the builders it spreads a build over: docker, podman or buildah")
            elif member.value not in p.builders:
                others = {n: b for n, b in p.builders.items() if b.type != "pool"}
                self.ref(member, others, "builder", "no builder but pools is defined; define its members under "
                         "'builders:'")
            elif p.builders[member.value].type == "pool":
                self.sink.error(at, f"member '{member.value}' of pool '{pool.name}' is a pool itself",
                                f"list the members of '{member.value}' instead")

    def check_step(self, p: Project, pipe: Pipeline, step: Step, no_envs: str) -> None:
        """A step's environment, and the steps it runs after."""
        if step.environment is None:
            self.sink.error(step.location, f"step '{step.name}' of pipeline '{pipe.name}' has no environment",
                            "set 'environment' on the step or on the pipeline")
        elif step.environment is not pipe.environment:
            self.ref(step.environment, p.environments, "environment", no_envs)
        names = {s.name for s in pipe.steps}
        for after in step.after:
            if after.value == step.name:
                self.sink.error(after.origin.location, f"step '{step.name}' runs after itself",
                                "remove it from 'after'")
            elif after.value not in names:
                self.sink.error(after.origin.location,
                                f"unknown step '{after.value}' in pipeline '{pipe.name}'",
                                suggest(after.value, names) or f"steps: {', '.join(sorted(names))}")

    @staticmethod
    def settings_of(p: Project) -> list[Fragment]:
        out = [s.settings for pipe in p.pipelines.values() for s in pipe.steps if s.settings is not None]
        out += [t.settings for t in (p.runner, p.server) if t is not None and t.settings is not None]
        return out


# Each field with its reader, looked up once (an Enum's hash is Python code, run per field of every fragment).
_READERS = tuple((f, _ModelReader.readers[f.read]) for f in FIELDS)

def build_model(source: Source, sink: Collector, *, broken: frozenset[Any] = frozenset()) -> Project:
    """The validated document as typed records; unknown references go to sink."""
    return _ModelReader(source, sink, broken).build()


def referenced_files(project: Project) -> list[tuple[str, str, Location | None]]:
    """(kind, project-relative path, where it is referenced) for every file the project points at."""
    out: list[tuple[str, str, Location | None]] = []
    frags = [*project.integrations.values(), *project.environments.values(), *_ModelReader.settings_of(project)]
    for frag in frags:
        for r in frag.requirements_files:
            out.append(("requirements", r.value, r.origin.location))
        for c in frag.copy:
            out.append(("copy", c.value.source, c.origin.location))
        for cert in frag.certificates:
            out.append(("certificate", cert.value, cert.origin.location))
        for package in frag.local_packages:
            out.append(("local_package", package.value, package.origin.location))
        if frag.base is not None and frag.base.value.dockerfile is not None:
            out.append(("dockerfile", frag.base.value.dockerfile, frag.base.origin.location))
            out.append(("context", frag.base.value.context, frag.base.value.context_at or frag.base.origin.location))
    return out


__all__ = ["Base", "BuilderConfig", "Copy", "Environment", "Fragment", "Origin", "Pipeline", "Project", "Removal",
           "Sourced", "Step", "Target", "ZenML", "EMPTY", "apply", "inherit", "build_model", "referenced_files"]
