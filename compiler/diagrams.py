"""`dockwright graph`: the manifest's pipeline step DAGs and image DAG as Mermaid, DOT or JSON text."""

from __future__ import annotations

import json

from .manifest import Manifest


def _mermaid_id(name: str) -> str:
    """A node id that is unique per name: every character but letters and digits is hex-escaped."""
    return "n_" + "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):x}_" for c in name)


def to_mermaid(manifest: Manifest) -> str:
    lines = ["flowchart LR"]
    for pname, pipe in sorted(manifest.pipelines.items()):
        lines.append(f"  subgraph {_mermaid_id('p_' + pname)}[\"pipeline {pname}\"]")
        for sname, step in sorted(pipe.steps.items()):
            lines.append(f"    {_mermaid_id(pname + '.' + sname)}[\"{sname}<br/>image: {step.image}\"]")
        for a, b in pipe.edges:
            lines.append(f"    {_mermaid_id(pname + '.' + a)} --> {_mermaid_id(pname + '.' + b)}")
        lines.append("  end")
    lines.append("  subgraph images[\"images\"]")
    for name in sorted(manifest.images):
        lines.append(f"    {_mermaid_id('i_' + name)}[\"{name}\"]")
    for name, image in sorted(manifest.images.items()):
        if image.parent:
            lines.append(f"    {_mermaid_id('i_' + image.parent)} --> {_mermaid_id('i_' + name)}")
    lines.append("  end")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def to_dot(manifest: Manifest) -> str:
    lines = ["digraph dockwright {", "  rankdir=LR;"]
    for pname, pipe in sorted(manifest.pipelines.items()):
        lines.append(f"  subgraph {_dot_quote('cluster_' + pname)} {{")
        lines.append(f"    label={_dot_quote('pipeline ' + pname)};")
        for sname, step in sorted(pipe.steps.items()):
            label = f"{sname}\\nimage: {step.image}"
            lines.append(f"    {_dot_quote(pname + '.' + sname)} [label=\"{label}\"];")
        for a, b in pipe.edges:
            lines.append(f"    {_dot_quote(pname + '.' + a)} -> {_dot_quote(pname + '.' + b)};")
        lines.append("  }")
    lines.append(f"  subgraph {_dot_quote('cluster_images')} {{")
    lines.append("    label=\"images\";")
    for name in sorted(manifest.images):
        lines.append(f"    {_dot_quote('image:' + name)} [label={_dot_quote(name)}, shape=box];")
    for name, image in sorted(manifest.images.items()):
        if image.parent:
            lines.append(f"    {_dot_quote('image:' + image.parent)} -> {_dot_quote('image:' + name)};")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(manifest: Manifest) -> str:
    data = {
        "pipelines": {
            name: {"nodes": sorted(p.steps), "edges": [list(e) for e in p.edges], "order": list(p.order),
                   "images": {s: v.image for s, v in sorted(p.steps.items())}}
            for name, p in sorted(manifest.pipelines.items())
        },
        "images": {
            "nodes": sorted(manifest.images),
            "edges": sorted([img.parent, name] for name, img in manifest.images.items() if img.parent),
            "order": list(manifest.build_order),
        },
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


FORMATS = {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}
