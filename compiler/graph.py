"""The networkx DAGs: environment inheritance, each pipeline's steps, and images. Cycles are
reported as a path with the location of each edge; every order is deterministic."""

from __future__ import annotations

from typing import Mapping

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


def _image_dag(parents: Mapping[str, str | None]) -> nx.DiGraph:
    """Images, with an edge parent -> child for every image built FROM another."""
    g = nx.DiGraph()
    g.add_nodes_from(parents)
    for child, parent in parents.items():
        if parent is not None:
            g.add_edge(parent, child)
    return g


def image_order(parents: Mapping[str, str | None]) -> list[str]:
    return _order(_image_dag(parents))


def edges(graph: nx.DiGraph) -> list[list[str]]:
    """The DAG's edges (before, after), sorted."""
    return sorted([u, v] for u, v in graph.edges)
