"""Builder backends behind one Protocol, listed in an explicit registry; the only place with side effects on
an engine. Backends are imported when chosen, so compiling never loads an engine's SDK."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import UsageError, suggest
from .base import Builder, Endpoint, Job, Outcome, Progress

# type in dockwright.yaml -> "module:class" of the backend
BACKENDS: dict[str, str] = {
    "buildah": "compiler.builders.buildah:BuildahBuilder",
    "docker": "compiler.builders.docker_engine:DockerBuilder",
    "podman": "compiler.builders.docker_engine:PodmanBuilder",
}


def endpoint(manifest: Mapping[str, Any], root: Path, name: str | None) -> Endpoint:
    """The builder --builder names, else default_builder, from manifest.json."""
    builders: Mapping[str, Any] = manifest.get("builders") or {}
    chosen = name or manifest.get("default_builder") or "local"
    if chosen not in builders:
        if name is None and not builders:
            return Endpoint("local", "docker", None, {}, {}, root)
        hint = suggest(chosen, builders) or f"the builders are: {', '.join(sorted(builders)) or 'none'}"
        raise UsageError(f"no builder named '{chosen}' in {manifest.get('source', 'dockwright.yaml')}\nhint: {hint}")
    spec = builders[chosen]
    return Endpoint(chosen, spec.get("type") or "docker", spec.get("url"), spec.get("tls") or {},
                    spec.get("proxy") or {}, root, spec.get("network"))


def locked_parents(lock_path: Path) -> dict[str, tuple[str, ...]]:
    """Parent image reference -> the digests dockwright.lock pins for it (the index first, then each platform's
    manifest): what build keys use for that parent, on every engine, when the engine's image carries one of
    them. No lock, or one that does not read: none (compile reports a bad lock; keys then use engine IDs)."""
    from ..errors import DockwrightError
    from ..lockfile import read

    try:
        lock = read(lock_path)
    except (DockwrightError, OSError):
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for image in (lock.images.values() if lock else ()):
        if image.parent is not None:
            found[image.parent.ref] = (image.parent.digest, *(d for _, d in image.parent.platforms))
    return found


def open_builder(where: Endpoint) -> Builder:
    target = BACKENDS.get(where.type)
    if target is None:
        raise UsageError(f"builder '{where.name}' has type '{where.type}', which has no backend; "
                         f"known types: {', '.join(sorted(BACKENDS))}")
    module, _, cls = target.partition(":")
    backend: Builder = getattr(importlib.import_module(module), cls)(where)
    return backend


def jobs(manifest: Mapping[str, Any]) -> list[Job]:
    """manifest.json's images, parents first."""
    images = manifest["images"]
    return [Job.from_manifest(manifest["project"], images[name]) for name in manifest["build_order"]]


def select(jobs: list[Job], wanted: Sequence[str], manifest: Mapping[str, Any]) -> list[Job]:
    """The chosen images and the images they are built on, in build order."""
    if not wanted:
        return jobs
    by_name = {j.name: j for j in jobs}
    # An image, an environment, a pipeline (every image it runs), PIPELINE.STEP, runner or server.
    means: dict[str, list[str]] = {name: [name] for name in by_name}
    for name, env in (manifest.get("environments") or {}).items():
        means.setdefault(name, [env["image"]] if env.get("image") else [])
    for pname, pipe in (manifest.get("pipelines") or {}).items():
        steps = pipe.get("steps") or {}
        images = [pipe.get("image"), *(s.get("image") for s in steps.values())]
        means.setdefault(pname, [i for i in images if i])
        for sname, step in steps.items():
            means.setdefault(f"{pname}.{sname}", [step["image"]] if step.get("image") else [])
    for target in ("runner", "server"):
        if manifest.get(target) and manifest[target].get("image"):
            means.setdefault(target, [manifest[target]["image"]])
    keep: set[str] = set()
    for item in wanted:
        if item not in means:
            hint = suggest(item, means) or f"the images are: {', '.join(sorted(by_name))}"
            raise UsageError(f"no image, environment, pipeline or step named '{item}'\nhint: {hint}")
        for name in means[item]:
            while name and name not in keep:
                keep.add(name)
                name = by_name[name].parent
    return [j for j in jobs if j.name in keep]


__all__ = ["BACKENDS", "Builder", "Endpoint", "Job", "Outcome", "Progress", "endpoint", "jobs", "locked_parents", "open_builder",
           "select"]
