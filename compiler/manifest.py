"""manifest.json: the record of a compile that `build`, `graph`, `explain` and `export bake` read.

`build(plan, files, inputs)` makes it (the one place), `Manifest.to_json()` writes it, `Manifest.parse(text)` /
`Manifest.read(path)` read it back as frozen records, and `names(manifest)` says what every name a user may
type (image, environment, pipeline, PIPELINE.STEP, runner, server, runner.settings, server.settings) means.
A manifest that is not what dockwright writes (edited by hand, cut short, another file) is one ManifestError.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring as _json_string  # the C one, when there is one
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from . import graph
from .errors import DockwrightError, UsageError, read_regular, shown_path, suggest

if TYPE_CHECKING:
    from .inputs import Inputs
    from .plan import Image, Plan

FORMAT = 1
GENERATOR = "dockwright"
FILE = "manifest.json"

T = TypeVar("T")


class ManifestError(DockwrightError):
    """manifest.json is not a manifest dockwright wrote (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class ImageRecord:
    name: str
    generated: bool  # False: a custom parent built from the user's own Dockerfile
    repository: str
    tag: str  # the local tag every FROM line uses: project-image:spec12
    push_tag: str | None
    spec_hash: str  # sha256:...
    parent: str | None  # another image of the manifest
    from_ref: str | None  # the image its Dockerfile starts FROM ("from")
    dockerfile: str  # relative to the project root
    context: str
    inputs: tuple[str, ...]
    environments: tuple[str, ...]
    checks: tuple[str, ...]
    sources: tuple[str, ...]  # the YAML files its environments are written in
    requirements: tuple[str, ...] | None = None  # generated images only (None: not written)
    user: str | None = None  # written beside requirements
    needs_root_parent: bool = False  # right only on a parent that runs as root (written when true)
    mounts: bool = False  # its Dockerfile has RUN --mount: BuildKit or buildah only (written when true)
    secrets: tuple[tuple[str, str, str], ...] = ()  # (id, "env" | "file", where the builder reads it), by id


@dataclass(frozen=True)
class EnvironmentRecord:
    image: str | None
    kind: str  # environment | step | runner | server
    parent: str | None
    source: str | None


@dataclass(frozen=True)
class StepRecord:
    after: tuple[str, ...]
    environment: str | None
    image: str | None


@dataclass(frozen=True)
class PipelineRecord:
    environment: str | None
    image: str | None
    source: str | None
    steps: Mapping[str, StepRecord]
    edges: tuple[tuple[str, str], ...]
    order: tuple[str, ...]


@dataclass(frozen=True)
class TargetRecord:
    """The runner or the server: the environment it runs in (its settings' own, when it has settings)."""

    environment: str
    image: str | None


@dataclass(frozen=True)
class BuilderRecord:
    type: str
    url: str | None
    tls: Mapping[str, str | bool]
    proxy: Mapping[str, str]
    network: str | None = None
    members: tuple[str, ...] = ()  # a pool's builders


@dataclass(frozen=True)
class Manifest:
    format: int
    project: str
    registry: str | None
    output: str
    source: str  # the project file, relative to the root
    images: Mapping[str, ImageRecord]
    environments: Mapping[str, EnvironmentRecord]
    build_order: tuple[str, ...]  # parents first
    pipelines: Mapping[str, PipelineRecord]
    runner: TargetRecord | None
    server: TargetRecord | None
    builders: Mapping[str, BuilderRecord]
    default_builder: str
    files: tuple[str, ...]  # every generated file, relative to the output directory
    inputs: tuple[str, ...]  # every file compile read

    # -- writing ---------------------------------------------------------------------------------

    def as_data(self) -> dict[str, Any]:
        """The JSON object manifest.json holds."""
        return {
            "format": self.format, "generator": GENERATOR, "project": self.project, "registry": self.registry,
            "output": self.output, "source": self.source,
            "images": {name: _image_data(img) for name, img in self.images.items()},
            "environments": {name: {"image": e.image, "kind": e.kind, "parent": e.parent, "source": e.source}
                             for name, e in self.environments.items()},
            "build_order": list(self.build_order),
            "pipelines": {name: _pipeline_data(p) for name, p in self.pipelines.items()},
            "runner": _target_data(self.runner), "server": _target_data(self.server),
            "builders": {name: _builder_data(b) for name, b in self.builders.items()},
            "default_builder": self.default_builder, "files": list(self.files), "inputs": list(self.inputs),
        }

    def to_json(self) -> str:
        """manifest.json's text: sorted keys, no timestamps, no host paths."""
        return pretty_json(self.as_data()) + "\n"

    # -- reading ---------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str | bytes, where: str = FILE) -> Manifest:
        """The manifest text holds; ManifestError saying what is wrong, never another exception."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested deeper than Python's stack
            raise _bad(where, "it is not JSON") from None
        return _Reader(where).manifest(data)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        where = shown_path(path)
        try:
            data = read_regular(path)
        except OSError as exc:
            raise ManifestError(f"cannot read {where}: {exc.strerror or exc} (run 'dockwright compile')") from None
        return cls.parse(data, where)


def _image_data(img: ImageRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": img.name, "generated": img.generated, "repository": img.repository, "tag": img.tag,
        "push_tag": img.push_tag, "spec_hash": img.spec_hash, "parent": img.parent, "from": img.from_ref,
        "dockerfile": img.dockerfile, "context": img.context, "inputs": list(img.inputs),
        "environments": list(img.environments), "checks": list(img.checks), "sources": list(img.sources),
    }
    if img.requirements is not None:
        entry["requirements"] = list(img.requirements)
        entry["user"] = img.user
    if img.needs_root_parent:
        entry["needs_root_parent"] = True
    if img.mounts:
        entry["mounts"] = True
    if img.secrets:
        entry["secrets"] = {secret_id: {kind: where} for secret_id, kind, where in img.secrets}
    return entry


def _pipeline_data(p: PipelineRecord) -> dict[str, Any]:
    return {"environment": p.environment, "image": p.image, "source": p.source,
            "steps": {name: {"after": list(s.after), "environment": s.environment, "image": s.image}
                      for name, s in p.steps.items()},
            "edges": [list(e) for e in p.edges], "order": list(p.order)}


def _target_data(t: TargetRecord | None) -> dict[str, Any] | None:
    return None if t is None else {"environment": t.environment, "image": t.image}


def _builder_data(b: BuilderRecord) -> dict[str, Any]:
    return {"type": b.type, "url": b.url, "tls": dict(b.tls), "proxy": dict(b.proxy),
            **({"network": b.network} if b.network else {}), **({"members": list(b.members)} if b.members else {})}


def pretty_json(value: Any) -> str:
    """Exactly json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) for what a manifest holds
    (mappings with string keys, lists, strings, whole numbers, booleans, null); faster, since the standard
    library's C encoder does not indent (its pure Python one takes longer than the rest of render)."""
    out: list[str] = []
    _pretty(value, "\n", out)
    return "".join(out)


_JSON_WORDS = {True: "true", False: "false", None: "null"}


def _pretty(value: Any, newline: str, out: list[str]) -> None:
    kind = type(value)
    if kind is str:
        out.append(_json_string(value))
    elif kind is dict and value and all(type(key) is str for key in value):
        _pretty_mapping(value, newline, out)
    elif kind is list and value:
        inner = newline + "  "
        out.append("[")
        for i, item in enumerate(value):
            out.append(("," if i else "") + inner)
            _pretty(item, inner, out)
        out.append(newline + "]")
    elif kind in (bool, type(None)):
        out.append(_JSON_WORDS[value])
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind in (dict, list) and not value:
        out.append("{}" if kind is dict else "[]")
    else:  # anything else (a float, a tuple, a key that is no string): the standard library, as ever
        out.append(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).replace("\n", newline))


def _pretty_mapping(value: dict[str, Any], newline: str, out: list[str]) -> None:
    inner = newline + "  "
    out.append("{")
    for i, key in enumerate(sorted(value)):
        out.append(("," if i else "") + inner + _json_string(key) + ": ")
        _pretty(value[key], inner, out)
    out.append(newline + "}")


# -- making it from the plan -------------------------------------------------------------------------


def build(p: Plan, generated_files: list[str], inputs: Inputs) -> Manifest:
    """The manifest of a plan: sorted, no timestamps, no host paths."""
    project = p.project
    parents = {name: img.parent for name, img in p.images.items()}
    default = project.default_builder.value if project.default_builder else (
        "local" if "local" in project.builders else sorted(project.builders)[0])
    return Manifest(
        format=FORMAT, project=project.name, registry=project.registry, output=project.output, source=project.file,
        images={name: _image_record(img) for name, img in sorted(p.images.items())},
        environments={name: EnvironmentRecord(p.env_image.get(name), env.kind, env.parent, env.file)
                      for name, env in sorted(p.environments.items())},
        build_order=tuple(graph.image_order(parents)),
        pipelines={name: _pipeline_record(p, name) for name in sorted(project.pipelines)},
        runner=_target_record(p, project.runner), server=_target_record(p, project.server),
        builders={name: BuilderRecord(b.type, b.url, dict(b.tls), dict(b.proxy), b.network,
                                      tuple(m.value for m in b.members))
                  for name, b in sorted(project.builders.items())},
        default_builder=default, files=tuple(sorted(generated_files)), inputs=tuple(sorted(inputs.files)),
    )


def _image_record(img: Image) -> ImageRecord:
    spec = img.spec
    return ImageRecord(
        name=img.name, generated=img.generated, repository=img.repository, tag=img.tag, push_tag=img.push_tag,
        spec_hash=f"sha256:{img.spec_hash}", parent=img.parent, from_ref=img.from_ref or None,
        dockerfile=img.dockerfile, context=img.context, inputs=tuple(img.inputs),
        environments=tuple(img.environments), checks=tuple(img.checks), sources=tuple(img.files),
        requirements=tuple(img.requirements) if spec is not None else None,
        user=img.user if spec is not None else None,
        needs_root_parent=spec is not None and spec.assumes_root_parent,  # build checks the parent runs as root
        mounts=spec is not None and spec.mounts,
        secrets=tuple((secret_id, *source.split(" ", 1)) for secret_id, source in spec.secrets)  # type: ignore[misc]
        if spec is not None else (),
    )


def _pipeline_record(p: Plan, pname: str) -> PipelineRecord:
    pipe = p.project.pipelines[pname]
    g = p.steps.get(pname)
    steps = {}
    for step in pipe.steps:
        env_name = step.settings.name if step.settings is not None else (
            step.environment.value if step.environment is not None else None)
        steps[step.name] = StepRecord(tuple(sorted(a.value for a in step.after)), env_name,
                                      p.env_image.get(env_name) if env_name else None)
    pipe_env = pipe.environment.value if pipe.environment is not None else None
    return PipelineRecord(
        environment=pipe_env, image=p.env_image.get(pipe_env) if pipe_env else None, source=pipe.file,
        steps=steps, edges=tuple((u, v) for u, v in graph.edges(g)) if g is not None else (),
        order=tuple(graph.step_order(g) if g is not None else sorted(steps)))


def _target_record(p: Plan, t: Any) -> TargetRecord | None:
    if t is None:
        return None
    name = t.settings.name if t.settings is not None else t.environment.value
    return TargetRecord(name, p.env_image.get(name))


# -- reading it back ---------------------------------------------------------------------------------


def _bad(where: str, what: str) -> ManifestError:
    return ManifestError(f"{where} is not a manifest dockwright wrote: {what}\n"
                         "hint: run 'dockwright compile' to write it again")


class _Reader:
    """Checks each value's type as it reads it: a wrong one is a ManifestError naming its place."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, at: str, what: str) -> ManifestError:
        return _bad(self.where, f"{at} {what}")

    def obj(self, value: Any, at: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(at, "is not an object")
        return value

    def key(self, data: dict[str, Any], name: str, at: str) -> Any:
        if name not in data:
            raise self.fail(f"{at}.{name}" if at else name, "is missing")
        return data[name]

    def string(self, data: dict[str, Any], name: str, at: str = "") -> str:
        value = self.key(data, name, at)
        if not isinstance(value, str):
            raise self.fail(f"{at}.{name}" if at else name, "is not a string")
        return value

    def optional(self, data: dict[str, Any], name: str, at: str = "") -> str | None:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"{at}.{name}" if at else name, "is not a string or null")
        return value

    def strings(self, data: dict[str, Any], name: str, at: str = "") -> tuple[str, ...]:
        value = self.key(data, name, at)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{at}.{name}" if at else name, "is not a list of strings")
        return tuple(value)

    def table(self, data: dict[str, Any], name: str, read: Callable[[str, dict[str, Any], str], T]) \
            -> dict[str, T]:
        found = self.obj(self.key(data, name, ""), name)
        return {key: read(key, self.obj(value, f"{name}.{key}"), f"{name}.{key}") for key, value in found.items()}

    def manifest(self, value: Any) -> Manifest:
        data = self.obj(value, "the file")
        if data.get("generator") != GENERATOR:
            raise _bad(self.where, "it does not say \"generator\": \"dockwright\"")
        if data.get("format") != FORMAT:
            raise _bad(self.where, f"its format is {json.dumps(data.get('format'))}, not {FORMAT}")
        found = Manifest(
            format=FORMAT, project=self.string(data, "project"), registry=self.optional(data, "registry"),
            output=self.string(data, "output"), source=self.string(data, "source"),
            images=self.table(data, "images", self.image), environments=self.table(data, "environments", self.env),
            build_order=self.strings(data, "build_order"), pipelines=self.table(data, "pipelines", self.pipeline),
            runner=self.target(data, "runner"), server=self.target(data, "server"),
            builders=self.table(data, "builders", self.builder), default_builder=self.string(data, "default_builder"),
            files=self.strings(data, "files"), inputs=self.strings(data, "inputs"))
        _Links(self).check(found)
        return found

    def image(self, name: str, data: dict[str, Any], at: str) -> ImageRecord:
        if data.get("name") != name:
            raise self.fail(f"{at}.name", f"is not '{name}'")
        requirements = self.strings(data, "requirements", at) if "requirements" in data else None
        return ImageRecord(
            name=name, generated=self.flag(data, "generated", at), repository=self.string(data, "repository", at),
            tag=self.string(data, "tag", at), push_tag=self.optional(data, "push_tag", at),
            spec_hash=self.string(data, "spec_hash", at), parent=self.optional(data, "parent", at),
            from_ref=self.optional(data, "from", at), dockerfile=self.string(data, "dockerfile", at),
            context=self.string(data, "context", at), inputs=self.strings(data, "inputs", at),
            environments=self.strings(data, "environments", at), checks=self.strings(data, "checks", at),
            sources=self.strings(data, "sources", at), requirements=requirements,
            user=self.optional(data, "user", at) if requirements is not None else None,
            needs_root_parent=self.flag(data, "needs_root_parent", at, default=False),
            mounts=self.flag(data, "mounts", at, default=False), secrets=self.secrets(data, at))

    def secrets(self, data: dict[str, Any], at: str) -> tuple[tuple[str, str, str], ...]:
        found = self.obj(data.get("secrets", {}), f"{at}.secrets")
        out = []
        for secret_id, source in sorted(found.items()):
            source = self.obj(source, f"{at}.secrets.{secret_id}")
            if len(source) != 1 or not set(source) <= {"env", "file"} or not isinstance(next(iter(source.values())), str):
                raise self.fail(f"{at}.secrets.{secret_id}", "is not {\"env\": NAME} or {\"file\": path}")
            (kind, where), = source.items()
            out.append((secret_id, kind, where))
        return tuple(out)

    def flag(self, data: dict[str, Any], name: str, at: str, default: bool | None = None) -> bool:
        value = data.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(f"{at}.{name}", "is not true or false")
        return value

    def env(self, name: str, data: dict[str, Any], at: str) -> EnvironmentRecord:
        return EnvironmentRecord(self.optional(data, "image", at), self.string(data, "kind", at),
                                 self.optional(data, "parent", at), self.optional(data, "source", at))

    def pipeline(self, name: str, data: dict[str, Any], at: str) -> PipelineRecord:
        steps = {key: self.step(self.obj(value, f"{at}.steps.{key}"), f"{at}.steps.{key}")
                 for key, value in self.obj(self.key(data, "steps", at), f"{at}.steps").items()}
        edges = self.key(data, "edges", at)
        if not isinstance(edges, list) or not all(isinstance(e, list) and len(e) == 2 and all(
                isinstance(n, str) and n in steps for n in e) for e in edges):
            raise self.fail(f"{at}.edges", "is not a list of [step, step] pairs")
        return PipelineRecord(self.optional(data, "environment", at), self.optional(data, "image", at),
                              self.optional(data, "source", at), steps, tuple((u, v) for u, v in edges),
                              self.strings(data, "order", at))

    def step(self, data: dict[str, Any], at: str) -> StepRecord:
        return StepRecord(self.strings(data, "after", at), self.optional(data, "environment", at),
                          self.optional(data, "image", at))

    def target(self, data: dict[str, Any], name: str) -> TargetRecord | None:
        value = data.get(name)
        if value is None:
            return None
        found = self.obj(value, name)
        return TargetRecord(self.string(found, "environment", name), self.optional(found, "image", name))

    def builder(self, name: str, data: dict[str, Any], at: str) -> BuilderRecord:
        tls = self.obj(self.key(data, "tls", at), f"{at}.tls")
        if not all(isinstance(v, (str, bool)) for v in tls.values()):
            raise self.fail(f"{at}.tls", "has a value that is not a string or true/false")
        proxy = self.obj(self.key(data, "proxy", at), f"{at}.proxy")
        if not all(isinstance(v, str) for v in proxy.values()):
            raise self.fail(f"{at}.proxy", "has a value that is not a string")
        members = self.strings(data, "members", at) if "members" in data else ()
        return BuilderRecord(self.string(data, "type", at), self.optional(data, "url", at), tls, proxy,
                             self.optional(data, "network", at), members)


class _Links:
    """Every name one record gives for another names one that is there; parents are built first."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def image(self, m: Manifest, name: str | None, at: str) -> None:
        if name is not None and name not in m.images:
            raise self.reader.fail(at, f"names image '{name}', which is not in images")

    def check(self, m: Manifest) -> None:
        if sorted(m.build_order) != sorted(m.images):
            raise self.reader.fail("build_order", "does not list each image once")
        position = {name: i for i, name in enumerate(m.build_order)}
        for name, img in m.images.items():
            self.image(m, img.parent, f"images.{name}.parent")
            if img.parent is not None and position[img.parent] > position[name]:
                raise self.reader.fail("build_order", f"has image '{name}' before its parent '{img.parent}'")
        for name, env in m.environments.items():
            self.image(m, env.image, f"environments.{name}.image")
        for pname, pipe in m.pipelines.items():
            self.image(m, pipe.image, f"pipelines.{pname}.image")
            for sname, step in pipe.steps.items():
                self.image(m, step.image, f"pipelines.{pname}.steps.{sname}.image")
        for role, target in (("runner", m.runner), ("server", m.server)):
            if target is not None:
                self.image(m, target.image, f"{role}.image")
        self.members(m)
        if m.builders and m.default_builder not in m.builders:
            raise self.reader.fail("default_builder", f"names builder '{m.default_builder}', which is not in builders")

    def members(self, m: Manifest) -> None:
        for name, builder in m.builders.items():
            for member in builder.members:
                if member not in m.builders or m.builders[member].members:
                    raise self.reader.fail(f"builders.{name}.members", f"names '{member}', which is not a builder "
                                           "other than a pool")


# -- what a name means --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meaning:
    """What a name on the command line stands for."""

    images: tuple[str, ...]  # the images it runs in (build builds them and their parents)
    environment: str | None = None  # the one environment it runs in (explain shows it); None: not one
    note: str | None = None  # how a step or target led to its environment


def names(m: Manifest) -> dict[str, Meaning]:
    """Every name a user may give build or explain: an image, an environment, a pipeline (every image it runs),
    PIPELINE.STEP, runner or server, and runner.settings / server.settings."""
    found: dict[str, Meaning] = {name: Meaning((name,)) for name in m.images}
    for name, env in m.environments.items():
        found[name] = Meaning(found[name].images if name in found else _some(env.image), name)
    for pname, pipe in m.pipelines.items():
        images = [i for i in (pipe.image, *(s.image for s in pipe.steps.values())) if i]
        found.setdefault(pname, Meaning(tuple(images)))
        for sname, step in pipe.steps.items():
            found.setdefault(f"{pname}.{sname}", _step(m, pname, sname, step))
    for role, target in (("runner", m.runner), ("server", m.server)):
        if target is not None and target.image:
            found.setdefault(role, Meaning((target.image,)))
        if target is not None and target.environment in m.environments:
            found.setdefault(f"{role}.settings", Meaning(
                _some(target.image), target.environment,
                f"the {role} has no settings; it runs in environment '{target.environment}'"))
    return found


def _step(m: Manifest, pname: str, sname: str, step: StepRecord) -> Meaning:
    """A step without settings of its own runs in an environment: explain shows that one, with a note."""
    env_name = step.environment if step.environment in m.environments else None
    note = (f"step '{sname}' of pipeline '{pname}' has no settings; it runs in environment '{env_name}'"
            if env_name is not None and env_name != f"{pname}.{sname}" else None)
    return Meaning(_some(step.image), env_name, note)


def _some(image: str | None) -> tuple[str, ...]:
    return (image,) if image else ()


def environment(m: Manifest, name: str) -> tuple[str, str | None]:
    """The environment `name` means for explain (an environment, PIPELINE.STEP, runner.settings or
    server.settings), and a note when a step or target led to it; UsageError otherwise."""
    meaning = names(m).get(name)
    if meaning is None or meaning.environment is None:
        steps = {f"{p}.{s}" for p, pipe in m.pipelines.items() for s in pipe.steps}
        hint = suggest(name, set(m.environments) | steps) or f"environments: {', '.join(sorted(m.environments))}"
        raise UsageError(f"unknown environment '{name}'\nhint: {hint}")
    return meaning.environment, meaning.note


def images(m: Manifest, wanted: Sequence[str]) -> list[str]:
    """The images build builds for `wanted` (each a name `names` knows), with the images they are built on,
    in build order; every image when nothing is wanted. UsageError for a name that means nothing."""
    if not wanted:
        return list(m.build_order)
    table = names(m)
    keep: set[str] = set()
    for item in wanted:
        if item not in table:
            hint = suggest(item, table) or f"the images are: {', '.join(sorted(m.images))}"
            raise UsageError(f"no image, environment, pipeline or step named '{item}'\nhint: {hint}")
        for name in table[item].images:
            parent: str | None = name
            while parent and parent not in keep:
                keep.add(parent)
                parent = m.images[parent].parent
    return [name for name in m.build_order if name in keep]
