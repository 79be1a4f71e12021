"""`dockwright export bake`: a docker-bake.json from manifest.json, so that `docker buildx bake` builds the
whole DAG on any BuildKit builder without dockwright. Pure (render) plus one atomic write.

Each image is one target: its Dockerfile and context (paths relative to the project root: run bake there),
tags (the local tag every FROM line uses, and the push tag when there is a registry), labels, and, for an
image built on another image of the project, `contexts: {"<parent's local tag>": "target:<parent>"}`, which
makes BuildKit build the parent target and use its result where the FROM line names that tag. A `default`
group lists every target. An image with build secrets gets `secret: ["id=X,env=NAME" | "id=X,src=FILE"]`:
where bake reads each one, never its value.

Labels carry the image and project, never the build key: the key says "these exact inputs, on this parent,
passed these checks", and a bake build runs no checks and knows no parent IDs. Without it `dockwright build`
never mistakes a bake-built image for one of its own; it builds its own (reusing BuildKit's cache on the
same engine is BuildKit's business). The tag's 12 hex digits already name the spec it was compiled from.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from .builders.base import IMAGE_LABEL, PROJECT_LABEL
from .emit import OutputError
from .errors import read_regular, shown_path

BAKE_FILE = "docker-bake.json"
# bake's target names: letters, digits, '_' and '-' (its reference: "[a-zA-Z0-9_-]+").
TARGET_NAME = re.compile(r"[A-Za-z0-9_-]+")


def target_name(image: str) -> str:
    return image if TARGET_NAME.fullmatch(image) else re.sub(r"[^A-Za-z0-9_-]", "_", image)


def _secret(secret_id: str, source: Mapping[str, str]) -> str:
    """bake's `id=X,env=NAME` or `id=X,src=FILE`; a file under ~ is written under ${HOME}, which bake fills in from
    the environment (it does not expand ~)."""
    if "env" in source:
        return f"id={secret_id},env={source['env']}"
    where = source["file"]
    if where == "~" or where.startswith("~/"):
        where = "${HOME}" + where[1:]
    return f"id={secret_id},src={where}"


def render(manifest: Mapping[str, Any]) -> str:
    """The bake file's text: deterministic (sorted keys, images in build order), ending in a newline."""
    images: Mapping[str, Any] = manifest["images"]
    order: list[str] = list(manifest["build_order"])
    names: dict[str, str] = {}
    for name in sorted(order):  # `a.b` and `a_b` would meet as `a_b`: the later one (sorted) gets a suffix
        candidate, n = target_name(name), 1
        while candidate in names.values():
            n += 1
            candidate = f"{target_name(name)}-{n}"
        names[name] = candidate
    targets: dict[str, Any] = {}
    for name in order:
        entry = images[name]
        context = entry["context"]
        dockerfile = posixpath.relpath(entry["dockerfile"], context)  # bake reads it relative to the context
        tags = [entry["tag"], *([entry["push_tag"]] if entry.get("push_tag") else [])]
        target: dict[str, Any] = {
            "context": context,
            "dockerfile": dockerfile,
            "tags": tags,
            "labels": {IMAGE_LABEL: name, PROJECT_LABEL: manifest["project"]},
        }
        parent = entry.get("parent")
        if parent:
            target["contexts"] = {images[parent]["tag"]: f"target:{names[parent]}"}
        if entry.get("secrets"):
            target["secret"] = [_secret(secret_id, source) for secret_id, source in sorted(entry["secrets"].items())]
        targets[names[name]] = target
    data: dict[str, Any] = {"group": {"default": {"targets": [names[n] for n in order]}}, "target": targets}
    if any("${HOME}" in s for t in targets.values() for s in t.get("secret", ())):
        data["variable"] = {"HOME": {"default": ""}}  # bake reads a declared variable from the environment
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write(path: Path, text: str, *, root: Path) -> bool:
    """Write text to path atomically, only when its bytes change; never through a symlink. True if written."""
    data = text.encode("utf-8")
    if path.is_symlink():
        raise OutputError(f"{shown_path(path)} is a symbolic link: dockwright writes no file through one")
    try:
        if read_regular(path) == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OutputError(f"cannot read {shown_path(path)}: {exc.strerror or exc}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {shown_path(path)}: {exc.strerror or exc}") from None
    return True
