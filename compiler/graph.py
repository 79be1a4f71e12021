"""The networkx DAGs: environment inheritance, each pipeline's steps, and images. Cycles are
reported as a path with the location of each edge; every order is deterministic."""

from __future__ import annotations

import json
from typing import Any, Mapping

import networkx as nx

from .errors import Collector
from .model import Project


def _order(graph: nx.DiGraph) -> list[str]:
    return list(nx.lexicographical_topological_sort(graph))


def _report_cycles(graph: nx.DiGraph, sink: Collector, what: str, hint: str) -> bool:
    """One error per strongly connected component that loops; True if any."""
    found = False
    for component in sorted((sorted(c) for c in nx.strongly_connected_components(graph)), key=lambda c: c[0]):
        if len(component) == 1 and not graph.has_edge(component[0], component[0]):
            continue
        found = True
        sub = graph.subgraph(component)
        edges = nx.find_cycle(sub, source=component[0])
        path = [edges[0][0]] + [v for _, v in edges]
        notes = tuple((f"{u} → {v}", graph.edges[u, v].get("location")) for u, v in edges)
        first = graph.edges[edges[0][0], edges[0][1]].get("location")
        sink.error(first, f"{what} form a cycle: {' → '.join(path)}", hint, notes=notes)
    return found


def inheritance(project: Project, sink: Collector) -> list[str]:
    """Declared environments, parents before children; cycles go to sink."""
    g = nx.DiGraph()
    g.add_nodes_from(project.environments)
    for name, frag in project.environments.items():
        if frag.extends is not None and frag.extends.value in project.environments and frag.extends.value != name:
            # Edge child -> parent reads as the user wrote it ("a extends b").
            g.add_edge(name, frag.extends.value, location=frag.extends.origin.location)
    if _report_cycles(g, sink, "environments that extend each other", "remove one 'extends' to break the cycle"):
        return []
    return _order(g.reverse(copy=True))


def steps(project: Project, sink: Collector) -> dict[str, nx.DiGraph]:
    """Each pipeline's step DAG (edge: before -> after); cycles go to sink."""
    out: dict[str, nx.DiGraph] = {}
    for pipe in project.pipelines.values():
        g = nx.DiGraph()
        g.add_nodes_from(s.name for s in pipe.steps)
        names = set(g.nodes)
        for step in pipe.steps:
            for after in step.after:
                if after.value in names and after.value != step.name:
                    g.add_edge(after.value, step.name, location=after.origin.location)
        _report_cycles(g, sink, f"steps of pipeline '{pipe.name}'", "remove one 'after' to break the cycle")
        out[pipe.name] = g
    return out


def step_order(graph: nx.DiGraph) -> list[str]:
    return _order(graph)


def image_dag(parents: Mapping[str, str | None]) -> nx.DiGraph:
    """Images, with an edge parent -> child for every image built FROM another."""
    g = nx.DiGraph()
    g.add_nodes_from(parents)
    for child, parent in parents.items():
        if parent is not None:
            g.add_edge(parent, child)
    return g


def image_order(parents: Mapping[str, str | None]) -> list[str]:
    return _order(image_dag(parents))


def descendants(parents: Mapping[str, str | None], name: str) -> set[str]:
    return set(nx.descendants(image_dag(parents), name))


# -- export ----------------------------------------------------------------------------------------


def _mermaid_id(name: str) -> str:
    """A node id that is unique per name: every character but letters and digits is hex-escaped."""
    return "n_" + "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):x}_" for c in name)


def to_mermaid(manifest: Mapping[str, Any]) -> str:
    lines = ["flowchart LR"]
    for pname, pipe in sorted(manifest["pipelines"].items()):
        lines.append(f"  subgraph {_mermaid_id('p_' + pname)}[\"pipeline {pname}\"]")
        for sname, step in sorted(pipe["steps"].items()):
            lines.append(f"    {_mermaid_id(pname + '.' + sname)}[\"{sname}<br/>image: {step['image']}\"]")
        for a, b in pipe["edges"]:
            lines.append(f"    {_mermaid_id(pname + '.' + a)} --> {_mermaid_id(pname + '.' + b)}")
        lines.append("  end")
    lines.append("  subgraph images[\"images\"]")
    for name in sorted(manifest["images"]):
        lines.append(f"    {_mermaid_id('i_' + name)}[\"{name}\"]")
    for name, image in sorted(manifest["images"].items()):
        if image.get("parent"):
            lines.append(f"    {_mermaid_id('i_' + image['parent'])} --> {_mermaid_id('i_' + name)}")
    lines.append("  end")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def to_dot(manifest: Mapping[str, Any]) -> str:
    lines = ["digraph dockwright {", "  rankdir=LR;"]
    for pname, pipe in sorted(manifest["pipelines"].items()):
        lines.append(f"  subgraph {_dot_quote('cluster_' + pname)} {{")
        lines.append(f"    label={_dot_quote('pipeline ' + pname)};")
        for sname, step in sorted(pipe["steps"].items()):
            label = f"{sname}\\nimage: {step['image']}"
            lines.append(f"    {_dot_quote(pname + '.' + sname)} [label=\"{label}\"];")
        for a, b in pipe["edges"]:
            lines.append(f"    {_dot_quote(pname + '.' + a)} -> {_dot_quote(pname + '.' + b)};")
        lines.append("  }")
    lines.append(f"  subgraph {_dot_quote('cluster_images')} {{")
    lines.append("    label=\"images\";")
    for name in sorted(manifest["images"]):
        lines.append(f"    {_dot_quote('image:' + name)} [label={_dot_quote(name)}, shape=box];")
    for name, image in sorted(manifest["images"].items()):
        if image.get("parent"):
            lines.append(f"    {_dot_quote('image:' + image['parent'])} -> {_dot_quote('image:' + name)};")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(manifest: Mapping[str, Any]) -> str:
    data = {
        "pipelines": {
            name: {"nodes": sorted(p["steps"]), "edges": p["edges"], "order": p["order"],
                   "images": {s: v["image"] for s, v in sorted(p["steps"].items())}}
            for name, p in sorted(manifest["pipelines"].items())
        },
        "images": {
            "nodes": sorted(manifest["images"]),
            "edges": sorted([img["parent"], name] for name, img in manifest["images"].items() if img.get("parent")),
            "order": manifest["build_order"],
        },
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def edges(graph: nx.DiGraph) -> list[list[str]]:
    return sorted([u, v] for u, v in graph.edges)
