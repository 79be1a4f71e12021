"""Builder backends behind one Protocol, listed in an explicit registry; the only place with side effects on
an engine. Backends are imported when chosen, so compiling never loads an engine's SDK."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Sequence

from ..errors import UsageError, suggest
from ..manifest import Manifest, images
from .base import Endpoint, Job, Outcome, Progress
from .protocol import Builder

# type in dockwright.yaml -> "module:class" of the backend
BACKENDS: dict[str, str] = {
    "buildah": "compiler.builders.buildah:BuildahBuilder",
    "docker": "compiler.builders.docker_engine:DockerBuilder",
    "podman": "compiler.builders.docker_engine:PodmanBuilder",
}


def endpoint(manifest: Manifest, root: Path, name: str | None) -> Endpoint:
    """The builder --builder names, else default_builder, from manifest.json."""
    chosen = name or manifest.default_builder or "local"
    spec = manifest.builders.get(chosen)
    if spec is None:
        if name is None and not manifest.builders:
            return Endpoint("local", "docker", None, {}, {}, root)
        hint = suggest(chosen, manifest.builders) or \
            f"the builders are: {', '.join(sorted(manifest.builders)) or 'none'}"
        raise UsageError(f"no builder named '{chosen}' in {manifest.source}\nhint: {hint}")
    return Endpoint(chosen, spec.type or "docker", spec.url, spec.tls, spec.proxy, root, spec.network)


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


def jobs(manifest: Manifest, wanted: Sequence[str] = ()) -> list[Job]:
    """The images build builds, parents first: those `wanted` names (an image, an environment, a pipeline,
    PIPELINE.STEP, runner or server: see manifest.names) and the images they are built on; every image
    when nothing is wanted."""
    return [Job.of(manifest.project, manifest.images[name]) for name in images(manifest, wanted)]


__all__ = ["BACKENDS", "Builder", "Endpoint", "Job", "Outcome", "Progress", "endpoint", "jobs", "locked_parents",
           "open_builder"]
