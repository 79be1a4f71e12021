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

Writing (also for `export zenml`): export replaces only a file an earlier export wrote (`ours` here recognises
a bake file; zenml_config.ours a run configuration by its header), never an input of the project or a file
compile writes (guard), never through a link (emit.export_write), all files checked before any is written.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
from pathlib import Path
from typing import Any, Callable, Mapping

from .builders.base import IMAGE_LABEL, PROJECT_LABEL
from .emit import Export, OutputError, export_check, export_write
from .errors import shown_path

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


_TARGET_KEYS = {"context", "dockerfile", "tags", "labels", "contexts", "secret"}


def ours(data: bytes) -> bool:
    """Whether data is a bake file `export bake` wrote (JSON has no comment to carry a marker): exactly the
    blocks and target attributes render writes, each target labelled with its image and project, formatted
    byte for byte as render formats it (CRLF line ends too: git's autocrlf)."""
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return False
    if not isinstance(parsed, dict) or not {"group", "target"} <= set(parsed) <= {"group", "target", "variable"}:
        return False
    targets, group = parsed["target"], parsed["group"]
    listed = group.get("default") if isinstance(group, dict) and set(group) == {"default"} else None
    if not isinstance(targets, dict) or not isinstance(listed, dict) or set(listed) != {"targets"} or \
            not isinstance(listed["targets"], list) or sorted(map(str, listed["targets"])) != sorted(targets):
        return False
    if parsed.get("variable", {"HOME": {"default": ""}}) != {"HOME": {"default": ""}}:
        return False
    return all(_target(t) for t in targets.values()) and \
        data.replace(b"\r\n", b"\n") == (json.dumps(parsed, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _target(target: Any) -> bool:
    return isinstance(target, dict) and {"context", "dockerfile", "tags", "labels"} <= set(target) <= _TARGET_KEYS \
        and isinstance(target["labels"], dict) and set(target["labels"]) == {IMAGE_LABEL, PROJECT_LABEL}


def destination(path: Path, *, root: Path, cwd: Path) -> tuple[Path, tuple[str, ...]]:
    """Where -o PATH (relative to cwd) is: (the folder trusted as it is, the names below it, each of which
    export opens without following a link). The project root when PATH is in the project, else the current
    directory when it is below it, else the file system's root."""
    target = Path(os.path.normpath(cwd / path))
    for base in (Path(os.path.normpath(root)), Path(os.path.normpath(cwd))):
        if target == base or base in target.parents:
            return base, target.relative_to(base).parts
    return Path(target.anchor), target.relative_to(target.anchor).parts


def guard(target: Path, protected: Mapping[str, str]) -> None:
    """OutputError when target is one of the protected files (normalised absolute path -> what it is), by its
    name or, for a file that exists, by its identity (another name of the same file: a hard link, `..`)."""
    shown = shown_path(target)
    what = protected.get(os.path.normpath(target))
    if what is None:
        try:
            st = os.stat(target, follow_symlinks=False)
        except OSError:
            return
        if not stat.S_ISREG(st.st_mode):
            return
        for name, kind in sorted(protected.items()):
            try:
                other = os.stat(name)
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                what = kind
                break
    if what is not None:
        raise OutputError(f"{shown} is {what}: export never writes over it (give -o another path)")


def write(items: list[tuple[Path, str]], recognise: Callable[[bytes], bool], *, root: Path, cwd: Path,
          protected: Mapping[str, str]) -> list[bool]:
    """Write each (path, text) as export does (emit.export_write), after checking all of them (emit.export_check,
    guard): one that cannot be written leaves every file as it was. For each, True when written."""
    exports = []
    for path, text in items:
        guard(Path(os.path.normpath(cwd / path)), protected)
        base, parts = destination(path, root=root, cwd=cwd)
        exports.append(Export(base, parts, text.encode("utf-8"), recognise))
    needed = export_check(exports)
    return [export_write(item) if need else False for item, need in zip(exports, needed)]
