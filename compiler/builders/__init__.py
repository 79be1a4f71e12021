"""Builder backends behind one Protocol, listed in an explicit registry; the only place with side effects on
an engine. Backends are imported when chosen, so compiling never loads an engine's SDK."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import UsageError, suggest
from ..manifest import Manifest, images
from .base import Endpoint, Job, Outcome, Progress, read_secret
from .pool import Pool
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
    members = tuple(endpoint(manifest, root, member) for member in spec.members)
    return Endpoint(chosen, spec.type or "docker", spec.url, spec.tls, spec.proxy, root, spec.network, members)


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


def open_builder(where: Endpoint) -> Builder | Pool:
    """The backend of a builder; for a pool, its members' backends."""
    if where.type == "pool":
        return Pool(where, [(member.name, _open(member)) for member in where.members])
    return _open(where)


def _open(where: Endpoint) -> Builder:
    target = BACKENDS.get(where.type)
    if target is None:
        raise UsageError(f"builder '{where.name}' has type '{where.type}', which has no backend; "
                         f"known types: {', '.join(sorted(BACKENDS))}")
    module, _, cls = target.partition(":")
    backend: Builder = getattr(importlib.import_module(module), cls)(where)
    return backend


FEATURE_WORDS = {"mounts": "RUN --mount (cache mounts)", "secrets": "build secrets"}


def features(kind: str) -> frozenset[str]:
    """What a builder type's backend declares it can build beyond plain Dockerfiles (its `features`)."""
    module, _, cls = BACKENDS[kind].partition(":")
    found: frozenset[str] = getattr(getattr(importlib.import_module(module), cls), "features", frozenset())
    return found


def needs(job: Job) -> frozenset[str]:
    return frozenset({"mounts"} if job.mounts else set()) | frozenset({"secrets"} if job.secrets else set())


def require(where: Endpoint, todo: Sequence[Job], environ: Mapping[str, str] | None = None) -> None:
    """Before any engine is contacted: the builder has every feature the images need (else UsageError naming
    the images and the builder types that have them), and every build secret is there to read."""
    _require_features(where, todo)
    for job in todo:
        for secret_id, kind, place in job.secrets:
            _require_secret(where, job, secret_id, kind, place, environ)


def _have(where: Endpoint) -> frozenset[str]:
    """What a builder can build: a pool, what every member can (an image may go to any of them)."""
    if where.type == "pool":
        return frozenset.intersection(*(_have(member) for member in where.members)) if where.members else frozenset()
    return features(where.type) if where.type in BACKENDS else frozenset()


def _require_features(where: Endpoint, todo: Sequence[Job]) -> None:
    have = _have(where)
    lacking = {job.name: needs(job) - have for job in todo if needs(job) - have}
    if not lacking:
        return
    wanted = frozenset().union(*lacking.values())
    able = [kind for kind in sorted(BACKENDS) if wanted <= features(kind)]
    what = " and ".join(FEATURE_WORDS[f] for f in sorted(wanted))
    names = ", ".join(f"'{name}'" for name in sorted(lacking))
    several = len(lacking) > 1
    raise UsageError(
        f"builder '{where.name}' (type {where.type}) cannot build {what}, which image{'s' if several else ''} "
        f"{names} need{'' if several else 's'}\n"
        f"hint: build on a builder of type {' or '.join(able)} (builders: in the project file, then --builder NAME), "
        "or remove cache_mounts and secrets")


def _require_secret(where: Endpoint, job: Job, secret_id: str, kind: str, place: str,
                    environ: Mapping[str, str] | None) -> None:
    try:
        read_secret(where.root, kind, place, environ)
    except KeyError:
        raise UsageError(f"secret '{secret_id}' of image '{job.name}' is read from the environment variable "
                         f"{place}, which is not set\nhint: set it on this machine, or declare the secret "
                         "with {file: path}") from None
    except OSError as exc:
        raise UsageError(f"secret '{secret_id}' of image '{job.name}' is read from the file {place}, which "
                         f"cannot be read: {exc.strerror or exc}\nhint: create it on this machine, or declare "
                         "the secret with {env: NAME}") from None


def jobs(manifest: Manifest, wanted: Sequence[str] = ()) -> list[Job]:
    """The images build builds, parents first: those `wanted` names (an image, an environment, a pipeline,
    PIPELINE.STEP, runner or server: see manifest.names) and the images they are built on; every image
    when nothing is wanted."""
    return [Job.of(manifest.project, manifest.images[name]) for name in images(manifest, wanted)]


__all__ = ["BACKENDS", "Builder", "Endpoint", "Job", "Outcome", "Pool", "Progress", "endpoint", "jobs", "locked_parents",
           "open_builder", "features", "needs", "require"]
