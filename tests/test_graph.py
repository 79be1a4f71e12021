"""compiler/graph.py orders with the standard library's graphlib and imports networkx only for a graph with a
cycle: its orders must be exactly networkx's lexicographical topological sort (the manifest's build_order and
each pipeline's order are made of them), and a cycle must be found exactly when networkx finds one."""

from __future__ import annotations

import subprocess
import sys

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import ROOT

from compiler import graph
from compiler.errors import Collector

NAMES = st.text(alphabet="abcAB_.-0", min_size=1, max_size=3)


@st.composite
def dags(draw: st.DrawFn) -> graph.Dag:
    """A DAG: nodes in a random order, each edge from an earlier node to a later one (duplicates too)."""
    nodes = draw(st.lists(NAMES, unique=True, max_size=12))
    pairs = st.tuples(st.integers(0, max(len(nodes) - 1, 0)), st.integers(0, max(len(nodes) - 1, 0)))
    edges = [(nodes[i], nodes[j]) for i, j in draw(st.lists(pairs, max_size=30)) if i < j] if nodes else []
    return graph.Dag(nodes, dict.fromkeys(draw(st.permutations(edges))))


@st.composite
def digraphs(draw: st.DrawFn) -> graph.Dag:
    """Any directed graph without self-loops (compile never makes one), cycles allowed."""
    nodes = draw(st.lists(NAMES, unique=True, min_size=1, max_size=8))
    pairs = st.tuples(st.sampled_from(nodes), st.sampled_from(nodes))
    return graph.Dag(nodes, {(u, v): None for u, v in draw(st.lists(pairs, max_size=16)) if u != v})


def _nx(dag: graph.Dag) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(dag.nodes)
    g.add_edges_from(dag.edges)
    return g


@settings(max_examples=400)
@given(dags())
def test_the_order_is_networkx_lexicographical_topological_sort(dag: graph.Dag) -> None:
    assert graph.step_order(dag) == list(nx.lexicographical_topological_sort(_nx(dag)))
    parents = {v: u for u, v in dag.edges}  # one parent per image, as images have
    g = nx.DiGraph()
    g.add_nodes_from(parents)
    g.add_edges_from((p, c) for c, p in parents.items())
    assert graph.image_order(parents) == list(nx.lexicographical_topological_sort(g))


@settings(max_examples=400)
@given(digraphs())
def test_a_cycle_is_reported_exactly_when_networkx_finds_one(dag: graph.Dag) -> None:
    sink = Collector()
    found = graph._report_cycles(dag, sink, "things", "break it")
    loops = [c for c in nx.strongly_connected_components(_nx(dag)) if len(c) > 1]
    assert found == bool(loops) == (not nx.is_directed_acyclic_graph(_nx(dag)))
    assert len(sink.errors) == len(loops)


def test_compile_imports_no_networkx() -> None:
    code = ("import sys; from compiler.cli import main\n"
            "try:\n    main(['compile', '--check', '-f', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'networkx'))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "platform")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"
