"""The DAGs: environment inheritance, each pipeline's steps, and images. Orders come from the standard
library's graphlib (lexicographically smallest first: deterministic); only a graph with a cycle imports
networkx, to report each cycle as a path with the location of each edge."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Mapping

from .errors import Collector, Location
from .model import Project


@dataclass
class Dag:
    """Nodes and edges (u, v) -> the location of the edge, both in the order they were added."""

    nodes: list[str] = field(default_factory=list)
    edges: dict[tuple[str, str], Location | None] = field(default_factory=dict)

    def reverse(self) -> Dag:
        return Dag(list(self.nodes), {(v, u): at for (u, v), at in self.edges.items()})


def _sorter(dag: Dag) -> TopologicalSorter[str]:
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for node in dag.nodes:
        sorter.add(node)
    for before, after in dag.edges:
        sorter.add(after, before)
    return sorter


def _order(dag: Dag) -> list[str]:
    """The lexicographically smallest topological order (each step takes the smallest node that is ready)."""
    sorter = _sorter(dag)
    sorter.prepare()
    ready = list(sorter.get_ready())
    heapq.heapify(ready)
    out = []
    while ready:
        node = heapq.heappop(ready)
        out.append(node)
        sorter.done(node)
        for nxt in sorter.get_ready():
            heapq.heappush(ready, nxt)
    return out


def _has_cycle(dag: Dag) -> bool:
    try:
        _sorter(dag).prepare()
    except CycleError:
        return True
    return False


def _report_cycles(dag: Dag, sink: Collector, what: str, hint: str) -> bool:
    """One error per strongly connected component that loops; True if any."""
    if not _has_cycle(dag):
        return False
    import networkx as nx  # only a project with a cycle needs it

    graph = nx.DiGraph()
    graph.add_nodes_from(dag.nodes)
    for (u, v), at in dag.edges.items():
        graph.add_edge(u, v, location=at)
    for component in sorted((sorted(c) for c in nx.strongly_connected_components(graph)), key=lambda c: c[0]):
        if len(component) == 1 and not graph.has_edge(component[0], component[0]):
            continue
        sub = graph.subgraph(component)
        edges = nx.find_cycle(sub, source=component[0])
        path = [edges[0][0]] + [v for _, v in edges]
        notes = tuple((f"{u} → {v}", graph.edges[u, v].get("location")) for u, v in edges)
        first = graph.edges[edges[0][0], edges[0][1]].get("location")
        sink.error(first, f"{what} form a cycle: {' → '.join(path)}", hint, notes=notes)
    return True


def inheritance(project: Project, sink: Collector) -> list[str]:
    """Declared environments, parents before children; cycles go to sink."""
    g = Dag(list(project.environments))
    for name, frag in project.environments.items():
        if frag.extends is not None and frag.extends.value in project.environments and frag.extends.value != name:
            # Edge child -> parent reads as the user wrote it ("a extends b").
            g.edges[name, frag.extends.value] = frag.extends.origin.location
    if _report_cycles(g, sink, "environments that extend each other", "remove one 'extends' to break the cycle"):
        return []
    return _order(g.reverse())


def steps(project: Project, sink: Collector) -> dict[str, Dag]:
    """Each pipeline's step DAG (edge: before -> after); cycles go to sink."""
    out: dict[str, Dag] = {}
    for pipe in project.pipelines.values():
        g = Dag(list(dict.fromkeys(s.name for s in pipe.steps)))
        names = set(g.nodes)
        for step in pipe.steps:
            for after in step.after:
                if after.value in names and after.value != step.name:
                    g.edges[after.value, step.name] = after.origin.location
        _report_cycles(g, sink, f"steps of pipeline '{pipe.name}'", "remove one 'after' to break the cycle")
        out[pipe.name] = g
    return out


def step_order(graph: Dag) -> list[str]:
    return _order(graph)


def image_order(parents: Mapping[str, str | None]) -> list[str]:
    """Images, parents before children (an edge parent -> child for every image built FROM another)."""
    g = Dag(list(parents))
    for child, parent in parents.items():
        if parent is not None:
            g.edges[parent, child] = None
    return _order(g)


def edges(graph: Dag) -> list[list[str]]:
    """The DAG's edges (before, after), sorted."""
    return sorted([u, v] for u, v in graph.edges)
