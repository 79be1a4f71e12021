"""Builder backends behind one Protocol, listed in an explicit registry; the only place with side effects on
an engine. Backends are imported when chosen, so compiling never loads an engine's SDK."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError, suggest
from .base import Builder, Endpoint, Job, Outcome, Progress

# type in dockwright.yaml -> "module:class" of the backend
BACKENDS: dict[str, str] = {
    "docker": "compiler.builders.docker_engine:DockerBuilder",
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
                    spec.get("proxy") or {}, root)


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


__all__ = ["BACKENDS", "Builder", "Endpoint", "Job", "Outcome", "Progress", "endpoint", "jobs", "open_builder"]
