"""`dockwright explain ENV`: the effective environment, each value with the file:line it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .credentials import mask_credentials
from .fields import FIELDS, Field, Show
from .manifest import environment
from .model import Base, Copy, Environment, Origin
from .driver import Compiled


def _where(origin: Origin, root: Path) -> str:
    if origin.location is None:
        return "(default)"
    place = origin.location.short(root)
    chain = [v for v in origin.via if v != "default"]
    return place + (f"  via {' → '.join(chain)}" if chain else "")


def _base(b: Base) -> str:
    return b.image if b.image else f"dockerfile {b.dockerfile} (context {b.context})"


def _entry(value: Any) -> str:
    if isinstance(value, Copy):
        return value.source + (f" -> {value.dest}" if value.dest else "")
    return str(value)


# How each fields.Show kind shows a scalar (Sourced) value; None: not shown.
_SCALAR: dict[Show, Callable[[Any], str | None]] = {
    Show.VALUE: lambda value: ("true" if value else "false") if isinstance(value, bool) else str(value),
    Show.BASE: _base,
    Show.WORDS: lambda words: " ".join(words) if words else None,
    Show.JSON: lambda words: json.dumps(list(words)),
}


def _field_rows(f: Field, value: Any) -> list[tuple[str, str, Origin | None]]:
    """One field's rows: a scalar on one line; a collection under a heading, one entry a line."""
    if f.show is Show.HIDDEN or not value:
        return []
    if f.show in _SCALAR:
        shown = _SCALAR[f.show](value.value)
        return [] if shown is None else [(f.label, shown, value.origin)]
    if f.show is Show.PAIRS:
        entries = [(f"  {key}", value[key].value, value[key].origin) for key in sorted(value)]
    else:
        items = [value[key] for key in sorted(value)] if f.mapping else list(value)
        entries = [(f"  {_entry(item.value)}", "", item.origin) for item in items]
    return [(f.label, "", None), *entries]


def _rows(env: Environment) -> list[tuple[str, str, Origin | None]]:
    """Every field of the effective environment, in the order and the way fields.FIELDS says."""
    rows = [row for f in FIELDS for row in _field_rows(f, getattr(env, f.name))]
    # validate refuses URL credentials in every value written into a generated file; explain masks them anyway.
    return [(mask_credentials(label)[0], mask_credentials(value)[0], origin) for label, value, origin in rows]


def find(compiled: Compiled, name: str) -> tuple[Environment, str | None]:
    """The environment `name` means (manifest.names), and a note when it was reached through a step or target."""
    env_name, note = environment(compiled.manifest, name)
    return compiled.plan.environments[env_name], note


def explain(compiled: Compiled, name: str) -> str:
    env, note = find(compiled, name)
    root = compiled.source.root
    image_name = compiled.plan.env_image.get(env.name)
    lines = [note] if note else []
    lines += _head(compiled, env, image_name)
    lines.append("")
    lines += _table(_rows(env), root)
    locked = _locked(compiled, env, image_name)
    if locked:
        lines.append("locked packages (dockwright.lock)")
        label_w = min(max(len(label) for label, _, _ in locked), 40)
        for label, req, o in locked:
            lines.append(f"{label.ljust(label_w)}  via {req}" + (f"  {_where(o, root)}" if o is not None else ""))
    return "\n".join(lines) + "\n"


def _head(compiled: Compiled, env: Environment, image_name: str | None) -> list[str]:
    """What the environment is, and the image it runs in."""
    name = env.name
    head = {"step": "step environment", "runner": "runner environment", "server": "server environment"}.get(
        env.kind, "environment")
    where = env.location.short(compiled.source.root) if env.location else ""
    lines = [f"{head} '{name}'  ({where})" + (f", derived from '{env.parent}'" if env.parent else "")]
    if image_name:
        image = compiled.plan.images[image_name]
        parent = f", FROM image '{image.parent}'" if image.parent else f", FROM {image.from_ref}"
        lines.append(f"image '{image_name}': {image.tag}{parent}")
        if image_name != name:
            lines.append(f"  (the same image as '{image_name}': nothing it adds changes the Dockerfile)")
        elif image.layering:
            lines.append(f"  {image.layering}")
    return lines


def _table(rows: list[tuple[str, str, Origin | None]], root: Path) -> list[str]:
    """The rows aligned: key, value, where it comes from (a title row has no origin)."""
    valued = [(k, v) for k, v, o in rows if o is not None and v]
    key_w = min(max((len(k) for k, _ in valued), default=0), 32)
    val_w = min(max((len(v) for _, v in valued), default=0), 40)
    item_w = min(max((len(k) for k, v, o in rows if o is not None and not v), default=0), 48)
    width = max(key_w + 2 + val_w, item_w)
    lines = []
    for key, value, origin in rows:
        if origin is None:
            lines.append(key)
        elif value:
            lines.append(f"{key.ljust(key_w)}  {value}".ljust(width) + f"  {_where(origin, root)}")
        else:
            lines.append(f"{key.ljust(width)}  {_where(origin, root)}")
    return lines


def _requirement_origins(env: Environment) -> dict[str, Origin]:
    """Where each `via` of a locked package was written: a requirement, or a local package (whose
    dependencies the lock says came `via local_packages: PATH`)."""
    origins = {r.value: r.origin for r in env.requirements.values()}
    origins.update((f"local_packages: {item.value}", item.origin) for item in env.local_packages)
    return origins


def _locked(compiled: Compiled, env: Environment, image_name: str | None) -> list[tuple[str, str, Origin | None]]:
    """(package==version, a direct requirement that pulls it in, where that requirement comes from), one row
    per requirement; the package shown on its first row only."""
    lock = compiled.plan.lock
    entry = lock.images.get(image_name) if lock is not None and image_name else None
    if entry is None:
        return []
    by_text = _requirement_origins(env)
    rows: list[tuple[str, str, Origin | None]] = []
    for pkg in sorted(entry.packages, key=lambda p: (p.name, p.platforms, p.version)):
        label = f"  {pkg.name}=={pkg.version}" + (f" ({', '.join(pkg.platforms)})" if pkg.platforms else "")
        for i, req in enumerate(pkg.via):
            rows.append((label if i == 0 else "", req, by_text.get(req)))
    return rows


def explain_json(compiled: Compiled, name: str) -> str:
    env, _ = find(compiled, name)
    name = env.name
    root = compiled.source.root

    def origin(o: Origin | None) -> Any:
        if o is None:
            return None
        loc = o.location
        return {"file": loc.display_path(root) if loc else None, "line": loc.line if loc else None,
                "via": [v for v in o.via if v != "default"]}

    rows = [{"key": label.strip(), "value": value, "origin": origin(o)} for label, value, o in _rows(env)]
    data: dict[str, Any] = {"environment": name, "kind": env.kind, "parent": env.parent,
                            "image": compiled.plan.env_image.get(name), "values": rows}
    lock = compiled.plan.lock
    entry = lock.images.get(data["image"]) if lock is not None and data["image"] else None
    if entry is not None:
        by_text = _requirement_origins(env)
        data["locked"] = [{"name": p.name, "version": p.version, "platforms": list(p.platforms or entry.platforms),
                           "via": [{"requirement": r, "origin": origin(by_text.get(r))} for r in p.via]}
                          for p in sorted(entry.packages, key=lambda p: (p.name, p.platforms, p.version))]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
